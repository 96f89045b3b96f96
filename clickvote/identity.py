"""Who a vote belongs to: the three kinds of voter identity and an environment's choice of them.

- `signed`: a user id with an HMAC-SHA256 signature made with the environment's secret key (the
  site's own accounts, signed on its server).
- `token`: a server-issued anonymous voter token (`/api/voter-token`, what the embed uses).
- `unsigned`: a plain user id that any page can send (what @clickvote/react 0.0.8 sends).

Each kind is stored in its own namespace ("s:", "t:", "u:" + the id), so no identity of one kind
can name a voter of another: an unsigned "alice" is not signed user alice, and a token voter's
id sent as a plain userId is refused. The `anon_` prefix belongs to voter tokens: a userId that
starts with it is refused. Which kinds an environment accepts is its `identities` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from clickvote.security import Box, CryptoError, check_user_signature
from clickvote.votes import MAX_USER_ID, VoteError

SIGNED, TOKEN, UNSIGNED = "signed", "token", "unsigned"
KINDS = (SIGNED, TOKEN, UNSIGNED)
PREFIX = {SIGNED: "s:", TOKEN: "t:", UNSIGNED: "u:"}
LEGACY_PREFIX = "l:"  # votes stored before the kinds were told apart (see Voter.legacy)
RESERVED_PREFIX = "anon_"  # the ids of voter tokens (security.Box.voter_token)
# New environments' default: every kind, so pages of @clickvote/react 0.0.8 (unsigned only)
# and the embed (voter tokens) keep working.
DEFAULT = KINDS
NAMES = {SIGNED: "a signed userId", TOKEN: "a voterToken", UNSIGNED: "a plain userId"}
# The dashboard's label for each kind, and what accepting only the kinds chosen protects against.
LABELS = {SIGNED: "Signed user ids", TOKEN: "Anonymous voter tokens", UNSIGNED: "Plain user ids"}
PROTECTS = {
    SIGNED: "Only your server, which holds the secret key, can vote as one of your users.",
    TOKEN: "A visitor's vote can be changed only by the browser holding its server-issued "
    "token (one visitor can still fetch many tokens).",
    UNSIGNED: "No protection: anyone who knows or guesses a plain id can change its votes. "
    "Only for clients that cannot sign (@clickvote/react 0.0.8).",
}


class IdentityError(VoteError):
    """An identity the server refuses (codes: bad_user, reserved_user_id, bad_signature,
    bad_voter_token, signature_required, identity_refused; statuses: clickvote/errors.py)."""


@dataclass(frozen=True)
class Voter:
    kind: str
    id: str  # as the client knows it

    @property
    def key(self) -> str:
        """The stored voter: the id in its kind's namespace."""
        return PREFIX[self.kind] + self.id

    @property
    def legacy(self) -> str | None:
        """Where a vote this voter cast before the kinds were told apart may be stored: an id
        that was not a token's, in an environment that accepted unsigned ids (migration 0004
        could not tell whether it had been signed). The first signed or plain voter of that id
        to vote on the item takes it over, so the person counts once (anyone could already
        change such a vote before, so this grants nobody more)."""
        return None if self.kind == TOKEN else LEGACY_PREFIX + self.id


def parse(value: str | Iterable[str]) -> tuple[str, ...]:
    """A set of kinds (a comma-separated string or a list) in canonical order; ValueError
    unless it is a non-empty set of known kinds."""
    items = value.split(",") if isinstance(value, str) else list(value)
    kinds = {str(k).strip() for k in items if str(k).strip()}
    unknown = kinds - set(KINDS)
    if unknown or not kinds:
        raise ValueError(
            f"identities must be a non-empty list of {', '.join(KINDS)}"
            + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else "")
        )
    return tuple(k for k in KINDS if k in kinds)


def configured(value: str) -> tuple[str, ...]:
    """New environments' identities from the CLICKVOTE_IDENTITIES setting (empty: DEFAULT)."""
    try:
        return parse(value) if value.strip() else DEFAULT
    except ValueError as exc:
        raise ValueError(f"CLICKVOTE_IDENTITIES: {exc}") from exc


def signed_only(kinds: Iterable[str]) -> bool:
    return tuple(kinds) == (SIGNED,)


def accepts(kinds: Iterable[str], kind: str) -> None:
    """Refuse `kind` unless the environment accepts it."""
    kinds = tuple(kinds)
    if kind in kinds:
        return
    allowed = " or ".join(NAMES[k] for k in kinds)
    if kind == UNSIGNED:
        raise IdentityError("signature_required", f"this environment accepts only {allowed}")
    what = "voter tokens" if kind == TOKEN else "signed user ids"
    raise IdentityError(
        "identity_refused", f"this environment does not accept {what} (it accepts {allowed})"
    )


def check_voter_token(kinds: Iterable[str]) -> None:
    """Refuse to issue voter tokens where the environment doesn't accept them."""
    accepts(kinds, TOKEN)


def resolve(
    env_id: str,
    kinds: Iterable[str],
    box: Box,
    secret_key: Callable[[], str],
    user_id: object,
    signature: object = None,
    voter_token: object = None,
    required: bool = True,
) -> Voter | None:
    """The voter a request speaks for, or None if it names none and none is `required`."""
    if voter_token is not None:
        if not isinstance(voter_token, str) or len(voter_token) > 512:
            raise IdentityError("bad_voter_token", "voterToken must be a string")
        accepts(kinds, TOKEN)
        try:
            voter = box.read_voter_token(env_id, voter_token)
        except CryptoError as exc:
            raise IdentityError("bad_voter_token", f"invalid voter token ({exc})") from exc
        if user_id not in (None, "", voter):
            raise IdentityError("bad_voter_token", "userId does not match the voter token")
        return Voter(TOKEN, voter)
    if user_id is None or user_id == "":
        if required:
            raise IdentityError("bad_user", "userId is required")
        return None
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise IdentityError("bad_user", "userId must be a string")
    uid = str(user_id)
    if len(uid) > MAX_USER_ID:
        raise IdentityError("bad_user", f"userId is longer than {MAX_USER_ID} characters")
    if uid.startswith(RESERVED_PREFIX):
        raise IdentityError(
            "reserved_user_id",
            f"userIds starting with {RESERVED_PREFIX!r} belong to voter tokens: send the "
            "voterToken instead",
        )
    if signature is not None:
        if not isinstance(signature, str) or not check_user_signature(secret_key(), uid, signature):
            raise IdentityError("bad_signature", "the userId signature is invalid")
        accepts(kinds, SIGNED)
        return Voter(SIGNED, uid)
    accepts(kinds, UNSIGNED)
    return Voter(UNSIGNED, uid)

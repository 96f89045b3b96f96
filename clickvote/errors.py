"""Every refusal with a stable code, for the JSON API and the socket protocol alike: `CODES`,
one table of code -> (HTTP status, default message). The JSON API answers a ClickVoteError
with its status and `{message, statusCode, code}`; the socket with `clickvote:error
{message, code}`. A code not in the table can't be raised."""

from __future__ import annotations

STORAGE_RETRY = 1.0  # seconds a client waits before sending again what met storage_unavailable

CODES: dict[str, tuple[int, str]] = {
    # the request itself
    "bad_payload": (400, "the payload is not what the event expects"),
    "payload_too_large": (400, "the payload is too large"),
    "unknown_event": (400, "unknown event"),
    "bad_group": (400, "id (the vote group name) must be a string"),
    "bad_vote_to": (400, "voteTo must be a string"),
    "bad_msg_id": (400, "msgId must be a string"),
    "bad_value": (400, "value must be an integer"),
    "too_many_subscriptions": (400, "this connection watches too many items"),
    "too_many_reactions": (400, "this voter holds as many reactions as the group allows"),
    # the login token (socket)
    "unauthorized": (400, "a login token is required (emit login first)"),
    "bad_token": (400, "invalid login token"),
    "token_expired": (400, "invalid login token (expired)"),
    # what it names
    "unknown_key": (404, "unknown public key"),
    "unknown_group": (404, "no such vote group"),
    # the voter (clickvote/identity.py): malformed 400, not allowed to act as this voter 403
    "bad_user": (400, "userId must be a string"),
    "reserved_user_id": (400, "this userId belongs to voter tokens"),
    "bad_signature": (403, "the userId signature is invalid"),
    "bad_voter_token": (403, "invalid voter token"),
    "signature_required": (403, "this environment accepts only signed user ids"),
    "identity_refused": (403, "this environment does not accept this kind of voter"),
    # abuse layers (clickvote/abuse.py)
    "too_many_voters": (429, "this address voted as too many voters on this item lately"),
    "proof_of_work_required": (
        403,
        "solve a proof-of-work challenge first (emit `challenge`, send the solution as `pow`)",
    ),
    # the server
    "rate_limited": (429, "too many requests, slow down"),
    "storage_unavailable": (503, "the database is not answering just now, try again shortly"),
    "internal": (500, "internal error"),
}


class ClickVoteError(ValueError):
    """A vote or query the server refuses: `code` (stable, machine-readable, a key of CODES),
    its HTTP `status`, and `message` (the table's default unless given)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in CODES:
            raise KeyError(f"no error code {code!r} in clickvote.errors.CODES")
        self.status, default = CODES[code]
        self.code, self.message = code, message or default
        super().__init__(self.message)

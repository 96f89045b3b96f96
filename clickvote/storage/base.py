"""The storage interface: records and the async Storage protocol."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol


class Conflict(Exception):
    """A uniqueness rule was violated (duplicate email, duplicate live group name...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


STOP_GRACE = 2.0  # seconds a stop gives the storage calls under way (uvicorn then cancels at 3)


class StorageUnavailable(OSError):
    """The database could not be reached, or another process kept it locked, for longer than a
    caller may wait. Transient: the same request may be sent again (a vote with its msgId
    counts once)."""


class Outage:
    """A background loop's storage outage, logged as one warning when it begins and one when
    it ends (not a traceback every turn)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log, self.what = log, what
        self.down = False

    def began(self, exc: StorageUnavailable) -> None:
        if not self.down:
            self.log.warning("%s waits for the database: %s", self.what, exc)
        self.down = True

    def ended(self) -> None:
        if self.down:
            self.log.warning("%s resumed: the database answers again", self.what)
        self.down = False


class NotFound(Exception):
    """The record does not exist (or is not visible to the caller)."""


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    created_at: int


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class AbuseSettings:
    """An environment's abuse layers after the voter token (clickvote/abuse.py): the IP +
    user-agent window and the proof of work. Stored as JSON (envs.abuse); a key missing there
    has its default here."""

    ip_window: int = 3600  # seconds
    ip_voters: int = 20  # distinct voters one (IP, user agent) may be on one item; 0: off
    pow_difficulty: int = 0  # leading zero bits of the work asked before a first vote; 0: off
    # votes per voter: at most these (0: the server's rate_voter_burst / _per_sec)
    rate_burst: float = 0
    rate_per_sec: float = 0

    @classmethod
    def from_json(cls, text: object) -> AbuseSettings:
        try:
            saved = json.loads(str(text or "{}"))
        except ValueError:
            saved = {}
        kinds = {f.name: float if f.type == "float" else int for f in fields(cls)}
        values = saved.items() if isinstance(saved, dict) else ()
        chosen: dict[str, Any] = {
            k: kinds[k](v) for k, v in values if k in kinds and isinstance(v, int | float)
        }
        return cls(**chosen)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Env:
    id: str
    org_id: str
    name: str
    position: int
    public_key: str
    secret_key_sealed: str
    identities: tuple[str, ...]  # the voter identities it accepts (clickvote.identity.KINDS)
    created_at: int
    abuse: AbuseSettings = AbuseSettings()


@dataclass(frozen=True)
class Reaction:
    id: str  # the owner's stable id (an emoji or a short name): counts are kept per id
    label: str


@dataclass(frozen=True)
class Reactions:
    """A `reactions` group's definition (clickvote/reactions.py)."""

    items: tuple[Reaction, ...]  # in the owner's order
    max_per_voter: int
    # every id the group ever had -> its bit in a voter's stored value; never reused
    bits: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Group:
    id: str
    env_id: str
    name: str
    type: str  # "single" | "range" | "reactions"
    start: int | None
    end: int | None
    created_at: int
    deleted_at: int | None = None
    reactions: Reactions | None = None


@dataclass(frozen=True)
class Tally:
    voters: int  # users holding a non-zero value
    total: int  # sum of the values


@dataclass(frozen=True)
class VoteOutcome:
    previous: int  # the voter's value before
    value: int  # the voter's value now (0 = no vote)
    before: Tally
    after: Tally
    seq: int = 0  # the item's vote counter after this vote (orders its broadcasts)
    bit_counts: tuple[int, ...] = ()  # a reactions group: voters holding each bit, after


@dataclass(frozen=True)
class NewEnv:
    name: str
    position: int
    public_key: str
    secret_key_sealed: str
    identities: tuple[str, ...]
    abuse: AbuseSettings = AbuseSettings()


@dataclass(frozen=True)
class Webhook:
    """An environment's webhook: where its events go and the (sealed) secret that signs them."""

    env_id: str
    url: str
    secret_sealed: str
    created_at: int
    updated_at: int
    max_pending: int | None = None  # events kept waiting at most; None: the installation's
    batch_size: int = 1  # events per POST at most (above 1: always as a batch)


@dataclass(frozen=True)
class WebhookEvent:
    """One outbox row, as claimed for delivery (clickvote/webhooks.py builds its body)."""

    id: str  # the vote's event id: stable across retries (the receiver's idempotency id)
    type: str  # "vote" | "test"
    env_id: str
    env_name: str
    group: Group | None  # None for a test event
    vote_to: str | None
    value: int
    previous: int
    after: Tally
    bit_counts: tuple[int, ...]
    created_at: int
    attempt: int  # 1 for the first delivery attempt
    url: str
    secret_sealed: str
    batch_size: int = 1  # the webhook's: events per POST at most


@dataclass(frozen=True)
class WebhookAttempt:
    """One delivery attempt, as the delivery log keeps it."""

    id: str
    event_id: str
    type: str
    attempt: int
    status: int | None  # the HTTP status, None when no answer came
    error: str | None
    delivered: bool
    at: int
    duration_ms: int
    dropped: int = 0  # a discard pass (type "discarded"): the oldest waiting events it dropped


# An event's delivery attempt and when to try again (None: delivered, it leaves the outbox).
Attempted = tuple[WebhookEvent, WebhookAttempt, int | None]

# Builds the JSON response stored for idempotent replays, inside the vote's transaction.
Responder = Callable[[VoteOutcome], dict[str, Any]]


class Storage(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def stopping(self) -> None: ...
    async def migrate(self, upto: int | None = None) -> list[int]: ...
    async def schema_version(self) -> int: ...

    # users, organisations, environments
    async def create_user(self, email: str, password_hash: str) -> User: ...
    async def get_user_by_email(self, email: str) -> User | None: ...
    async def set_password_hash(self, user_id: str, password_hash: str) -> bool: ...
    async def create_org(self, user_id: str, name: str, envs: list[NewEnv]) -> Org: ...
    async def list_orgs(self, user_id: str) -> list[Org]: ...
    async def rename_org(self, org_id: str, name: str) -> Org: ...
    async def list_envs(self, org_id: str) -> list[Env]: ...
    async def get_env(self, env_id: str) -> Env | None: ...
    async def get_env_by_public_key(self, public_key: str) -> Env | None: ...
    async def set_env_keys(self, env_id: str, public_key: str, secret_sealed: str) -> Env: ...
    async def set_env_identities(self, env_id: str, identities: tuple[str, ...]) -> Env: ...
    async def set_env_abuse(self, env_id: str, abuse: AbuseSettings) -> Env: ...

    # dashboard sessions (token hashes only)
    async def create_session(self, token_hash: str, user_id: str, expires_at: int) -> None: ...
    async def get_session_user(self, token_hash: str, now: int) -> User | None: ...
    async def delete_session(self, token_hash: str) -> None: ...
    async def purge(self, now: int, idempotency_before: int) -> None: ...

    # vote groups
    async def create_group(
        self,
        env_id: str,
        name: str,
        type: str,
        start: int | None,
        end: int | None,
        reactions: Reactions | None = None,
    ) -> Group: ...
    async def list_groups(
        self, env_id: str, offset: int, limit: int
    ) -> tuple[list[Group], int]: ...
    async def get_group(self, env_id: str, group_id: str) -> Group | None: ...
    async def get_group_by_name(self, env_id: str, name: str) -> Group | None: ...
    async def update_group(self, env_id: str, group_id: str, changes: dict[str, Any]) -> Group: ...
    async def delete_group(self, env_id: str, group_id: str) -> bool: ...
    async def group_has_votes(self, group_id: str) -> bool: ...

    # votes
    # `adopt`: a stored voter whose vote on the item `voter` takes over when `voter` has none
    # there (identity.Voter.legacy: votes stored before voter kinds were told apart).
    async def get_vote(
        self, group_id: str, vote_to: str, voter: str, adopt: str | None = None
    ) -> tuple[int, Tally]: ...
    async def apply_vote(
        self,
        env_id: str,
        group_id: str,
        vote_to: str,
        voter: str,
        value: int,
        msg_id: str | None,
        meta: dict[str, str | None],
        respond: Responder,
        adopt: str | None = None,
        combine: Callable[[int], int] | None = None,
    ) -> tuple[dict[str, Any], bool]: ...
    # `combine` (a reactions group): the new value from the voter's previous one, worked out
    # inside the vote's transaction; the outcome then carries the item's bit_counts.
    async def bit_counts(self, group_id: str, vote_to: str) -> tuple[int, ...]: ...
    async def bit_holders(self, group_id: str) -> dict[int, int]: ...  # over all its items

    # analytics
    async def group_stats(self, group_ids: list[str]) -> dict[str, dict[str, int]]: ...
    async def item_tallies(self, group_id: str, limit: int) -> list[tuple[str, Tally]]: ...
    # a reactions group's leading items by reactions held on `bits` (or voters holding `rank`)
    async def reaction_top(
        self, group_id: str, bits: list[int], rank: int | None, limit: int
    ) -> list[tuple[str, Tally, tuple[int, ...]]]: ...
    async def distinct_vote_to(self, group_id: str) -> list[str]: ...
    async def analytics(
        self, env_id: str, group_id: str | None, vote_to: str | None, since: int
    ) -> list[tuple[int, int]]: ...

    # votes refused per abuse layer: rows (env_id, day (ms of its 00:00 UTC), layer, count)
    async def add_refusals(self, rows: list[tuple[str, int, str, int]]) -> None: ...
    async def refusals(self, env_id: str, since_day: int) -> list[tuple[int, str, int]]: ...

    # webhooks (clickvote/webhooks.py): configuration, the outbox, the delivery log
    async def get_webhook(self, env_id: str) -> Webhook | None: ...
    async def set_webhook(
        self,
        env_id: str,
        url: str,
        secret_sealed: str,
        max_pending: int | None = None,
        batch_size: int = 1,
    ) -> Webhook: ...
    async def clear_webhook(self, env_id: str) -> bool: ...
    async def queue_test_event(self, env_id: str) -> str | None: ...
    async def claim_webhook_events(
        self, now: int, lease_until: int, limit: int
    ) -> list[WebhookEvent]: ...
    async def webhook_attempted(self, attempts: list[Attempted], keep: int) -> None: ...
    async def release_webhook_events(self, ids: list[str]) -> None: ...
    async def trim_webhook_outboxes(self, default: int, keep: int) -> list[WebhookAttempt]: ...
    async def webhook_log(self, env_id: str, limit: int) -> tuple[list[WebhookAttempt], int]: ...

    # export / import
    async def export_data(self, include_sessions: bool) -> dict[str, Any]: ...
    async def import_data(self, data: dict[str, Any]) -> None: ...
    async def count_rows(self) -> dict[str, int]: ...

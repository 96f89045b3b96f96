"""Storage logic in portable SQL, shared by the SQLite and PostgreSQL back ends.

Statements use `?` placeholders; a back end whose driver wants `%s` sets PARAMSTYLE = "format"
and Tx translates. A back end only provides `_run(fn, write)`: run fn(Tx) in one transaction
(serialised for writes), plus the exception class it raises on a uniqueness violation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from clickvote import jsonfast
from clickvote import reactions as defs
from clickvote.fields import text_problem
from clickvote.security import new_id, time_ordered_id
from clickvote.storage.base import (
    AbuseSettings,
    Conflict,
    Env,
    Group,
    NewEnv,
    NotFound,
    Org,
    Reactions,
    Responder,
    Tally,
    User,
    VoteOutcome,
)

T = TypeVar("T")

# export order respects foreign keys
TABLES: tuple[str, ...] = (
    "users",
    "orgs",
    "memberships",
    "envs",
    "sessions",
    "vote_groups",
    "votes",
    "tallies",
    "reaction_counts",
    "events",
    "idempotency",
    "refusals",
    "webhooks",
    "webhook_outbox",
    "webhook_log",
)
ORDER_BY: dict[str, str] = {
    "users": "id",
    "orgs": "id",
    "memberships": "user_id, org_id",
    "envs": "id",
    "sessions": "token_hash",
    "vote_groups": "id",
    "votes": "group_id, vote_to, voter",
    "tallies": "group_id, vote_to",
    "reaction_counts": "group_id, vote_to, bit_no",
    "events": "created_at, id",
    "idempotency": "env_id, voter, group_id, vote_to, msg_id",
    "refusals": "env_id, day, layer",
    "webhooks": "env_id",
    "webhook_outbox": "id",
    "webhook_log": "id",
}

GROUP_COLS = "id, env_id, name, type, range_start, range_end, created_at, deleted_at, reactions"
ENV_COLS = (
    "id, org_id, name, position, public_key, secret_key_sealed, identities, created_at, abuse"
)
# Per (group, item, bit) of the reactions groups' stored values, the voters holding it: the
# truth reaction_counts is checked against (migration 0008 computes it the same way; bit b of
# a value without `%`, a placeholder mark to the PostgreSQL driver).
RECOUNT = (
    "WITH RECURSIVE slots (bit_no, weight) AS (SELECT 0, 1 UNION ALL "
    f"SELECT bit_no + 1, weight * 2 FROM slots WHERE bit_no < {defs.MAX_BITS - 1}) "
    "SELECT v.group_id, v.vote_to, s.bit_no, COUNT(*) FROM votes v "
    "JOIN vote_groups g ON g.id = v.group_id AND g.type = 'reactions' "
    "JOIN slots s ON v.value / s.weight - v.value / s.weight / 2 * 2 = 1 "
    "GROUP BY v.group_id, v.vote_to, s.bit_no"
)
REACTION_COUNTS_FROM = 8  # the schema version that has reaction_counts
# A voter's vote on an item (group, item, voter), and with it the one stored under the legacy
# id it may take over (identity.Voter.legacy): (group, item, voter, group, item, legacy id)
OWN = "SELECT voter, value FROM votes WHERE group_id = ? AND vote_to = ? AND voter = ?"
OWN_AND_LEGACY = f"{OWN} UNION ALL {OWN}"


class ImportRefused(ValueError):
    """An export that can't be imported as it is; `problems` names each row (table, key)."""

    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} row(s) can't be imported: {shown}{more}")
        self.problems = problems


def now_ms() -> int:
    return int(time.time() * 1000)


def load_migrations() -> list[tuple[int, str]]:
    """[(version, sql)] from clickvote/storage/migrations/NNNN_name.sql, sorted."""
    found: list[tuple[int, str]] = []
    folder = Path(__file__).with_name("migrations")  # a directory: never a zipped package
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside literals in our files)."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class Tx:
    """A transaction handle: execute portable SQL with `?` placeholders."""

    def __init__(self, cursor: Any, paramstyle: str = "qmark") -> None:
        self.cur = cursor
        self.paramstyle = paramstyle

    def _sql(self, sql: str) -> str:
        return sql if self.paramstyle == "qmark" else sql.replace("?", "%s")

    def exec(self, sql: str, *params: Any) -> int:
        self.cur.execute(self._sql(sql), params)
        return int(self.cur.rowcount or 0)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        listed = list(rows)
        if listed:
            self.cur.executemany(self._sql(sql), listed)

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        self.cur.execute(self._sql(sql), params)
        row = self.cur.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        self.cur.execute(self._sql(sql), params)
        return [tuple(r) for r in self.cur.fetchall()]

    def columns(self) -> list[str]:
        return [d[0] for d in self.cur.description]


def _group(row: Sequence[Any]) -> Group:
    return Group(
        id=row[0],
        env_id=row[1],
        name=row[2],
        type=row[3],
        start=row[4],
        end=row[5],
        created_at=int(row[6]),
        deleted_at=row[7],
        reactions=defs.decode(row[8]),
    )


def _env(row: Sequence[Any]) -> Env:
    return Env(
        id=row[0],
        org_id=row[1],
        name=row[2],
        position=int(row[3]),
        public_key=row[4],
        secret_key_sealed=row[5],
        identities=tuple(str(row[6]).split(",")),
        created_at=int(row[7]),
        abuse=AbuseSettings.from_json(row[8]),
    )


def _user(row: Sequence[Any]) -> User:
    return User(id=row[0], email=row[1], password_hash=row[2], created_at=int(row[3]))


def _text_problems(table: str, cols: list[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The rows of an export that hold text no back end can store (clickvote.fields), each
    named by its table and key."""
    keys = [cols.index(k) for k in ORDER_BY[table].split(", ") if k in cols]
    out = []
    for row in rows:
        for col, value in zip(cols, row, strict=True):
            problem = text_problem(value) if isinstance(value, str) else None
            if problem is not None:
                key = ", ".join(f"{cols[i]}={row[i]!r}" for i in keys)
                out.append(f"{table} ({key}): {col} {problem}")
    return out


class SQLStorage:
    """Everything but connections and transactions. Subclasses implement `_run`."""

    integrity_error: type[Exception] = Exception

    async def _run(self, fn: Callable[[Tx], T], write: bool = True) -> T:
        raise NotImplementedError

    def _tx_lock(self, tx: Tx, *key: str) -> None:
        """Serialise transactions on `key` until commit. SQLite's BEGIN IMMEDIATE already
        serialises every write, so this is a no-op there; PostgreSQL takes an advisory lock."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # --- schema -----------------------------------------------------------------------------
    async def schema_version(self) -> int:
        def fn(tx: Tx) -> int:
            self._tx_lock(tx, "clickvote:migrate")
            tx.exec(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            row = tx.one("SELECT MAX(version) FROM schema_version")
            return int(row[0]) if row and row[0] is not None else 0

        return await self._run(fn)

    async def migrate(self, upto: int | None = None) -> list[int]:
        """Apply every migration not applied yet (those up to version `upto` only, if given);
        returns their versions. A missing version is no obstacle: one added later runs then."""
        migrations = [(v, s) for v, s in load_migrations() if upto is None or v <= upto]

        def fn(tx: Tx) -> list[int]:
            self._tx_lock(tx, "clickvote:migrate")
            tx.exec(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            done = {int(r[0]) for r in tx.all("SELECT version FROM schema_version")}
            applied = []
            for version, script in migrations:
                if version in done:
                    continue
                for statement in split_sql(script):
                    tx.exec(statement)
                tx.exec(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    version,
                    now_ms(),
                )
                applied.append(version)
            return applied

        return await self._run(fn)

    # --- users, orgs, envs --------------------------------------------------------------
    async def create_user(self, email: str, password_hash: str) -> User:
        def fn(tx: Tx) -> User:
            if tx.one("SELECT 1 FROM users WHERE email = ?", email):
                raise Conflict("Email already exists", "email")
            user = User(new_id(), email, password_hash, now_ms())
            tx.exec(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
                user.id,
                user.email,
                user.password_hash,
                user.created_at,
            )
            return user

        return await self._guard(fn, "Email already exists", "email")

    async def _guard(self, fn: Callable[[Tx], T], message: str, field: str | None) -> T:
        try:
            return await self._run(fn)
        except self.integrity_error as exc:  # a race the pre-check did not see
            raise Conflict(message, field) from exc

    async def get_user_by_email(self, email: str) -> User | None:
        row = await self._run(
            lambda tx: tx.one(
                "SELECT id, email, password_hash, created_at FROM users WHERE email = ?", email
            ),
            write=False,
        )
        return _user(row) if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        return bool(
            await self._run(
                lambda tx: tx.exec(
                    "UPDATE users SET password_hash = ? WHERE id = ?", password_hash, user_id
                )
            )
        )

    async def create_org(self, user_id: str, name: str, envs: list[NewEnv]) -> Org:
        def fn(tx: Tx) -> Org:
            ts = now_ms()
            org = Org(new_id(), name, ts)
            tx.exec("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)", org.id, name, ts)
            tx.exec(
                "INSERT INTO memberships (user_id, org_id, role, created_at) "
                "VALUES (?, ?, 'owner', ?)",
                user_id,
                org.id,
                ts,
            )
            for env in envs:
                tx.exec(
                    f"INSERT INTO envs ({ENV_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    new_id(),
                    org.id,
                    env.name,
                    env.position,
                    env.public_key,
                    env.secret_key_sealed,
                    ",".join(env.identities),
                    ts,
                    env.abuse.to_json(),
                )
            return org

        return await self._run(fn)

    async def list_orgs(self, user_id: str) -> list[Org]:
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT o.id, o.name, o.created_at FROM orgs o "
                "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = ? "
                "ORDER BY o.created_at, o.id",
                user_id,
            ),
            write=False,
        )
        return [Org(r[0], r[1], int(r[2])) for r in rows]

    async def rename_org(self, org_id: str, name: str) -> Org:
        def fn(tx: Tx) -> Org:
            tx.exec("UPDATE orgs SET name = ? WHERE id = ?", name, org_id)
            row = tx.one("SELECT id, name, created_at FROM orgs WHERE id = ?", org_id)
            if not row:
                raise NotFound("organisation")
            return Org(row[0], row[1], int(row[2]))

        return await self._run(fn)

    async def list_envs(self, org_id: str) -> list[Env]:
        rows = await self._run(
            lambda tx: tx.all(
                f"SELECT {ENV_COLS} FROM envs WHERE org_id = ? ORDER BY position, id", org_id
            ),
            write=False,
        )
        return [_env(r) for r in rows]

    async def get_env(self, env_id: str) -> Env | None:
        row = await self._run(
            lambda tx: tx.one(f"SELECT {ENV_COLS} FROM envs WHERE id = ?", env_id), write=False
        )
        return _env(row) if row else None

    async def get_env_by_public_key(self, public_key: str) -> Env | None:
        row = await self._run(
            lambda tx: tx.one(f"SELECT {ENV_COLS} FROM envs WHERE public_key = ?", public_key),
            write=False,
        )
        return _env(row) if row else None

    async def set_env_keys(self, env_id: str, public_key: str, secret_sealed: str) -> Env:
        def fn(tx: Tx) -> Env:
            tx.exec(
                "UPDATE envs SET public_key = ?, secret_key_sealed = ? WHERE id = ?",
                public_key,
                secret_sealed,
                env_id,
            )
            row = tx.one(f"SELECT {ENV_COLS} FROM envs WHERE id = ?", env_id)
            if not row:
                raise NotFound("environment")
            return _env(row)

        return await self._run(fn)

    async def set_env_identities(self, env_id: str, identities: tuple[str, ...]) -> Env:
        def fn(tx: Tx) -> Env:
            tx.exec("UPDATE envs SET identities = ? WHERE id = ?", ",".join(identities), env_id)
            row = tx.one(f"SELECT {ENV_COLS} FROM envs WHERE id = ?", env_id)
            if not row:
                raise NotFound("environment")
            return _env(row)

        return await self._run(fn)

    async def set_env_abuse(self, env_id: str, abuse: AbuseSettings) -> Env:
        def fn(tx: Tx) -> Env:
            tx.exec("UPDATE envs SET abuse = ? WHERE id = ?", abuse.to_json(), env_id)
            row = tx.one(f"SELECT {ENV_COLS} FROM envs WHERE id = ?", env_id)
            if not row:
                raise NotFound("environment")
            return _env(row)

        return await self._run(fn)

    # --- votes refused per abuse layer ------------------------------------------------------
    async def add_refusals(self, rows: list[tuple[str, int, str, int]]) -> None:
        """Add counts, one transaction for the whole batch (environments gone are skipped)."""

        def fn(tx: Tx) -> None:
            tx.many(
                "INSERT INTO refusals (env_id, day, layer, count) "
                "SELECT id, ?, ?, ? FROM envs WHERE id = ? "
                "ON CONFLICT (env_id, day, layer) DO UPDATE SET "
                "count = refusals.count + excluded.count",
                [(day, layer, n, env_id) for env_id, day, layer, n in rows],
            )

        if rows:
            await self._run(fn)

    async def refusals(self, env_id: str, since_day: int) -> list[tuple[int, str, int]]:
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT day, layer, count FROM refusals WHERE env_id = ? AND day >= ? "
                "ORDER BY day, layer",
                env_id,
                since_day,
            ),
            write=False,
        )
        return [(int(d), str(layer), int(n)) for d, layer, n in rows]

    # --- sessions -------------------------------------------------------------------------
    async def create_session(self, token_hash: str, user_id: str, expires_at: int) -> None:
        await self._run(
            lambda tx: tx.exec(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                token_hash,
                user_id,
                now_ms(),
                expires_at,
            )
        )

    async def get_session_user(self, token_hash: str, now: int) -> User | None:
        row = await self._run(
            lambda tx: tx.one(
                "SELECT u.id, u.email, u.password_hash, u.created_at FROM sessions s "
                "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
                token_hash,
                now,
            ),
            write=False,
        )
        return _user(row) if row else None

    async def delete_session(self, token_hash: str) -> None:
        await self._run(lambda tx: tx.exec("DELETE FROM sessions WHERE token_hash = ?", token_hash))

    async def purge(self, now: int, idempotency_before: int) -> None:
        def fn(tx: Tx) -> None:
            tx.exec("DELETE FROM sessions WHERE expires_at <= ?", now)
            tx.exec("DELETE FROM idempotency WHERE created_at < ?", idempotency_before)

        await self._run(fn)

    # --- groups ---------------------------------------------------------------------------
    async def create_group(
        self,
        env_id: str,
        name: str,
        type: str,
        start: int | None,
        end: int | None,
        reactions: Reactions | None = None,
    ) -> Group:
        def fn(tx: Tx) -> Group:
            if tx.one(
                "SELECT 1 FROM vote_groups WHERE env_id = ? AND name = ? AND deleted_at IS NULL",
                env_id,
                name,
            ):
                raise Conflict("A vote group with this name already exists", "name")
            group = Group(new_id(), env_id, name, type, start, end, now_ms(), None, reactions)
            tx.exec(
                f"INSERT INTO vote_groups ({GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                group.id,
                env_id,
                name,
                type,
                start,
                end,
                group.created_at,
                None,
                defs.encode(group.reactions),
            )
            return group

        return await self._guard(fn, "A vote group with this name already exists", "name")

    async def list_groups(self, env_id: str, offset: int, limit: int) -> tuple[list[Group], int]:
        def fn(tx: Tx) -> tuple[list[Group], int]:
            total = tx.one(
                "SELECT COUNT(*) FROM vote_groups WHERE env_id = ? AND deleted_at IS NULL", env_id
            )
            rows = tx.all(
                f"SELECT {GROUP_COLS} FROM vote_groups WHERE env_id = ? AND "
                "deleted_at IS NULL ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                env_id,
                limit,
                offset,
            )
            return [_group(r) for r in rows], int(total[0]) if total else 0

        return await self._run(fn, write=False)

    async def get_group(self, env_id: str, group_id: str) -> Group | None:
        row = await self._run(
            lambda tx: tx.one(
                f"SELECT {GROUP_COLS} FROM vote_groups WHERE env_id = ? AND id = ? "
                "AND deleted_at IS NULL",
                env_id,
                group_id,
            ),
            write=False,
        )
        return _group(row) if row else None

    async def get_group_by_name(self, env_id: str, name: str) -> Group | None:
        row = await self._run(
            lambda tx: tx.one(
                f"SELECT {GROUP_COLS} FROM vote_groups WHERE env_id = ? AND name = ? "
                "AND deleted_at IS NULL",
                env_id,
                name,
            ),
            write=False,
        )
        return _group(row) if row else None

    async def update_group(self, env_id: str, group_id: str, changes: dict[str, Any]) -> Group:
        columns = {
            "name": "name",
            "type": "type",
            "start": "range_start",
            "end": "range_end",
            "reactions": "reactions",
        }

        def fn(tx: Tx) -> Group:
            row = tx.one(
                f"SELECT {GROUP_COLS} FROM vote_groups WHERE env_id = ? AND id = ? "
                "AND deleted_at IS NULL",
                env_id,
                group_id,
            )
            if not row:
                raise NotFound("vote group")
            if "name" in changes and tx.one(
                "SELECT 1 FROM vote_groups WHERE env_id = ? AND name = ? AND id <> ? "
                "AND deleted_at IS NULL",
                env_id,
                changes["name"],
                group_id,
            ):
                raise Conflict("A vote group with this name already exists", "name")
            for key, value in changes.items():
                if key == "reactions":
                    value = defs.encode(value)
                tx.exec(f"UPDATE vote_groups SET {columns[key]} = ? WHERE id = ?", value, group_id)
            updated = tx.one(f"SELECT {GROUP_COLS} FROM vote_groups WHERE id = ?", group_id)
            assert updated is not None
            return _group(updated)

        return await self._guard(fn, "A vote group with this name already exists", "name")

    async def delete_group(self, env_id: str, group_id: str) -> bool:
        n = await self._run(
            lambda tx: tx.exec(
                "UPDATE vote_groups SET deleted_at = ? WHERE env_id = ? AND id = ? "
                "AND deleted_at IS NULL",
                now_ms(),
                env_id,
                group_id,
            )
        )
        return n > 0

    async def group_has_votes(self, group_id: str) -> bool:
        row = await self._run(
            lambda tx: tx.one("SELECT 1 FROM events WHERE group_id = ? LIMIT 1", group_id),
            write=False,
        )
        return row is not None

    # --- votes ------------------------------------------------------------------------------
    @staticmethod
    def _tally(tx: Tx, group_id: str, vote_to: str) -> Tally:
        row = tx.one(
            "SELECT voters, total FROM tallies WHERE group_id = ? AND vote_to = ?",
            group_id,
            vote_to,
        )
        return Tally(int(row[0]), int(row[1])) if row else Tally(0, 0)

    async def get_vote(
        self, group_id: str, vote_to: str, voter: str, adopt: str | None = None
    ) -> tuple[int, Tally]:
        def fn(tx: Tx) -> tuple[int, Tally]:
            rows = self._own_and_legacy(tx, (group_id, vote_to, voter), adopt)
            value = rows.get(voter) or (rows.get(adopt) if adopt is not None else None) or 0
            return int(value), self._tally(tx, group_id, vote_to)

        return await self._run(fn, write=False)

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
    ) -> tuple[dict[str, Any], bool]:
        """One transaction: idempotency check, upsert value, adjust tally, event, record."""
        key = (group_id, vote_to, voter)
        remembered = (env_id, voter, group_id, vote_to, msg_id)
        given = value

        def fn(tx: Tx) -> tuple[dict[str, Any], bool]:
            # one writer per item at a time (across instances): `previous` and the tally
            # delta below are then exact, and a retried msgId sees the first one's record
            self._tx_lock(tx, group_id, vote_to)
            if msg_id is not None:
                row = tx.one(
                    "SELECT response FROM idempotency WHERE env_id = ? AND voter = ? "
                    "AND group_id = ? AND vote_to = ? AND msg_id = ?",
                    *remembered,
                )
                if row:
                    return json.loads(row[0]), True
            ts = now_ms()
            previous, value = self._store_vote(tx, key, given, combine, ts, adopt)
            d_voters = int(value != 0) - int(previous != 0)
            d_total = value - previous
            after, seq = self._bump_tally(tx, group_id, vote_to, (d_voters, d_total), ts)
            before = Tally(after.voters - d_voters, after.total - d_total)
            event_id = self._record_event(tx, env_id, key, (value, previous), ts, meta)
            counted = (
                self._bump_reactions(tx, group_id, vote_to, previous ^ value, value)
                if combine is not None
                else ()
            )
            self._queue_webhook(tx, event_id, env_id, key, (value, previous), after, counted, ts)
            response = respond(VoteOutcome(previous, value, before, after, seq, counted))
            if msg_id is not None:
                tx.exec(
                    "INSERT INTO idempotency (env_id, voter, group_id, vote_to, msg_id, "
                    "response, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    *remembered,
                    jsonfast.dumps(response),
                    ts,
                )
            return response, False

        return await self._run(fn)

    @staticmethod
    def _own_and_legacy(tx: Tx, key: tuple[str, str, str], adopt: str | None) -> dict[str, int]:
        """voter -> value on the item, of the voter in `key` and of `adopt`, where stored: two
        seeks of the primary key in one statement (`voter IN (?, ?)` would have SQLite build
        a temporary index for the list at each run)."""
        if adopt is None:
            return dict(tx.all(OWN, *key))
        return dict(tx.all(OWN_AND_LEGACY, *key, *key[:2], adopt))

    # apply_vote's steps, in the order it runs them (all inside its one transaction)
    @classmethod
    def _previous(cls, tx: Tx, key: tuple[str, str, str], adopt: str | None) -> int:
        """The value the voter has on the item; where it has none but a vote stored under
        ``adopt`` (Storage.get_vote), that one, taken over: stored under ``voter`` from now on.
        Both rows in one read, so a vote adopting nothing costs no UPDATE."""
        group_id, vote_to, voter = key
        rows = cls._own_and_legacy(tx, key, adopt)
        if voter in rows or adopt is None or adopt not in rows:
            return int(rows.get(voter) or 0)
        tx.exec(
            "UPDATE votes SET voter = ? WHERE group_id = ? AND vote_to = ? AND voter = ?",
            voter,
            group_id,
            vote_to,
            adopt,
        )
        return int(rows[adopt])

    @classmethod
    def _store_vote(
        cls,
        tx: Tx,
        key: tuple[str, str, str],
        given: int,
        combine: Callable[[int], int] | None,
        ts: int,
        adopt: str | None = None,
    ) -> tuple[int, int]:
        """Set the voter's value on the item (0 deletes it): `given`, or what `combine` makes of
        the value it had (a reactions toggle); returns (the value it had, the value set)."""
        previous = cls._previous(tx, key, adopt)
        value = combine(previous) if combine is not None else given
        if value == 0:
            tx.exec("DELETE FROM votes WHERE group_id = ? AND vote_to = ? AND voter = ?", *key)
        else:
            tx.exec(
                "INSERT INTO votes (group_id, vote_to, voter, value, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, vote_to, voter) "
                "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                *key,
                value,
                ts,
            )
        return previous, value

    @staticmethod
    def _bump_tally(
        tx: Tx, group_id: str, vote_to: str, deltas: tuple[int, int], ts: int
    ) -> tuple[Tally, int]:
        """Add (voters, total) deltas to the item's tally; the tally after it and its seq."""
        (voters, total, seq), *_ = tx.all(
            "INSERT INTO tallies (group_id, vote_to, voters, total, updated_at, seq) "
            "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (group_id, vote_to) DO UPDATE SET "
            "voters = tallies.voters + excluded.voters, "
            "total = tallies.total + excluded.total, updated_at = excluded.updated_at, "
            "seq = tallies.seq + 1 "
            "RETURNING voters, total, seq",
            group_id,
            vote_to,
            *deltas,
            ts,
        )
        return Tally(int(voters), int(total)), int(seq)

    @staticmethod
    def _record_event(
        tx: Tx,
        env_id: str,
        key: tuple[str, str, str],
        values: tuple[int, int],
        ts: int,
        meta: dict[str, str | None],
    ) -> str:
        """The vote's event: (value, previous) on (group, item, voter) at ``ts``; its id."""
        event_id = time_ordered_id(ts)
        tx.exec(
            "INSERT INTO events (id, env_id, group_id, vote_to, voter, value, previous, "
            "created_at, user_agent, referrer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            event_id,
            env_id,
            *key,
            *values,
            ts,
            meta.get("user_agent"),
            meta.get("referrer"),
        )
        return event_id

    @staticmethod
    def _queue_webhook(
        tx: Tx,
        event_id: str,
        env_id: str,
        key: tuple[str, str, str],
        values: tuple[int, int],
        after: Tally,
        counted: tuple[int, ...],
        ts: int,
    ) -> None:
        """The vote's webhook event, in the outbox (clickvote/storage/outbox.py), where the
        environment has a webhook: committed with the vote or not at all."""
        tx.exec(
            "INSERT INTO webhook_outbox (id, env_id, type, group_id, vote_to, value, previous, "
            "voters, total, bit_counts, created_at, next_at) "
            "SELECT ?, env_id, 'vote', ?, ?, ?, ?, ?, ?, ?, ?, ? FROM webhooks WHERE env_id = ?",
            event_id,
            key[0],
            key[1],
            *values,
            after.voters,
            after.total,
            ",".join(map(str, counted)) if counted else None,
            ts,
            ts,
            env_id,
        )

    @classmethod
    def _bump_reactions(
        cls, tx: Tx, group_id: str, vote_to: str, changed: int, value: int
    ) -> tuple[int, ...]:
        """A reactions vote: each bit it `changed` counts one voter more (set in `value`) or
        less; the item's voters per bit after it (one row per reaction read and written)."""
        rows = [
            (group_id, vote_to, b, 1 if value >> b & 1 else -1)
            for b in range(defs.MAX_BITS)
            if changed >> b & 1
        ]
        tx.many(
            "INSERT INTO reaction_counts (group_id, vote_to, bit_no, voters) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, vote_to, bit_no) DO UPDATE SET "
            "voters = reaction_counts.voters + excluded.voters",
            rows,
        )
        return cls._bit_counts(tx, group_id, vote_to)

    @staticmethod
    def _bit_counts(tx: Tx, group_id: str, vote_to: str) -> tuple[int, ...]:
        """Per bit of the stored values (a reactions group): the item's voters holding it."""
        counted = [0] * defs.MAX_BITS
        for b, n in tx.all(
            "SELECT bit_no, voters FROM reaction_counts WHERE group_id = ? AND vote_to = ?",
            group_id,
            vote_to,
        ):
            counted[int(b)] = int(n)
        return tuple(counted)

    async def bit_holders(self, group_id: str) -> dict[int, int]:
        """A reactions group's voters per bit over all its items (0 for none)."""
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT bit_no, SUM(voters) FROM reaction_counts WHERE group_id = ? "
                "GROUP BY bit_no",
                group_id,
            ),
            write=False,
        )
        return {int(b): int(n) for b, n in rows}

    async def bit_counts(self, group_id: str, vote_to: str) -> tuple[int, ...]:
        return await self._run(lambda tx: self._bit_counts(tx, group_id, vote_to), write=False)

    # --- analytics --------------------------------------------------------------------------
    async def group_stats(self, group_ids: list[str]) -> dict[str, dict[str, int]]:
        if not group_ids:
            return {}
        marks = ", ".join("?" for _ in group_ids)

        def fn(tx: Tx) -> dict[str, dict[str, int]]:
            out = {g: {"voters": 0, "score": 0, "items": 0, "clicks": 0} for g in group_ids}
            for gid, voters, score, items in tx.all(
                f"SELECT group_id, SUM(voters), SUM(total), COUNT(*) FROM tallies "
                f"WHERE group_id IN ({marks}) GROUP BY group_id",
                *group_ids,
            ):
                out[gid].update(voters=int(voters), score=int(score), items=int(items))
            for gid, clicks in tx.all(
                f"SELECT group_id, COUNT(*) FROM events WHERE group_id IN ({marks}) "
                "GROUP BY group_id",
                *group_ids,
            ):
                out[gid]["clicks"] = int(clicks)
            self._reaction_scores(tx, marks, group_ids, out)
            return out

        return await self._run(fn, write=False)

    @staticmethod
    def _reaction_scores(
        tx: Tx, marks: str, group_ids: list[str], out: dict[str, dict[str, int]]
    ) -> None:
        """A reactions group's score: the reactions held on the ids it offers (its tallies'
        totals are sums of bit sets)."""
        offered = {}
        for gid, text in tx.all(
            f"SELECT id, reactions FROM vote_groups WHERE id IN ({marks}) "
            "AND reactions IS NOT NULL",
            *group_ids,
        ):
            r = defs.decode(text)
            if r is not None:
                offered[gid] = {dict(r.bits)[x.id] for x in r.items}
                out[gid]["score"] = 0
        if not offered:
            return
        held = ", ".join("?" for _ in offered)
        for gid, b, n in tx.all(
            f"SELECT group_id, bit_no, SUM(voters) FROM reaction_counts "
            f"WHERE group_id IN ({held}) GROUP BY group_id, bit_no",
            *offered,
        ):
            if int(b) in offered[gid]:
                out[gid]["score"] += int(n)

    async def item_tallies(self, group_id: str, limit: int) -> list[tuple[str, Tally]]:
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT vote_to, voters, total FROM tallies WHERE group_id = ? "
                "ORDER BY total DESC, vote_to LIMIT ?",
                group_id,
                limit,
            ),
            write=False,
        )
        return [(r[0], Tally(int(r[1]), int(r[2]))) for r in rows]

    async def reaction_top(
        self, group_id: str, bits: list[int], rank: int | None, limit: int
    ) -> list[tuple[str, Tally, tuple[int, ...]]]:
        """A reactions group's leading items: the most reactions held on the given bits (the
        ids it offers) first, or the most voters holding bit `rank` (then the most reactions);
        each with its tally and its voters per bit."""
        marks = ", ".join("?" for _ in bits) or "NULL"
        ranked = "SUM(CASE WHEN bit_no = ? THEN voters ELSE 0 END)" if rank is not None else "0"

        def fn(tx: Tx) -> list[tuple[str, Tally, tuple[int, ...]]]:
            rows = tx.all(
                f"SELECT vote_to, {ranked} AS ranked, "
                f"SUM(CASE WHEN bit_no IN ({marks}) THEN voters ELSE 0 END) AS held "
                "FROM reaction_counts WHERE group_id = ? "
                "GROUP BY vote_to ORDER BY ranked DESC, held DESC, vote_to LIMIT ?",
                *([] if rank is None else [rank]),
                *bits,
                group_id,
                limit,
            )
            return [
                (r[0], self._tally(tx, group_id, r[0]), self._bit_counts(tx, group_id, r[0]))
                for r in rows
            ]

        return await self._run(fn, write=False)

    async def distinct_vote_to(self, group_id: str) -> list[str]:
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT DISTINCT vote_to FROM events WHERE group_id = ? ORDER BY vote_to", group_id
            ),
            write=False,
        )
        return [r[0] for r in rows]

    async def analytics(
        self, env_id: str, group_id: str | None, vote_to: str | None, since: int
    ) -> list[tuple[int, int]]:
        sql = (
            "SELECT (created_at / 3600000) * 3600000 AS hour, COUNT(*) FROM events "
            "WHERE env_id = ? AND created_at >= ?"
        )
        params: list[Any] = [env_id, since]
        if group_id is not None:
            sql += " AND group_id = ?"
            params.append(group_id)
        if vote_to is not None:
            sql += " AND vote_to = ?"
            params.append(vote_to)
        sql += " GROUP BY (created_at / 3600000) * 3600000 ORDER BY hour"
        rows = await self._run(lambda tx: tx.all(sql, *params), write=False)
        return [(int(r[0]), int(r[1])) for r in rows]

    # --- export / import --------------------------------------------------------------------
    async def export_data(self, include_sessions: bool) -> dict[str, Any]:
        def fn(tx: Tx) -> dict[str, Any]:
            tables: dict[str, Any] = {}
            for table in TABLES:
                if table == "sessions" and not include_sessions:
                    continue
                rows = tx.all(f"SELECT * FROM {table} ORDER BY {ORDER_BY[table]}")
                tables[table] = {"columns": tx.columns(), "rows": [list(r) for r in rows]}
            row = tx.one("SELECT MAX(version) FROM schema_version")
            return {
                "schema_version": int(row[0]) if row and row[0] is not None else 0,
                "tables": tables,
            }

        return await self._run(fn, write=False)

    async def count_rows(self) -> dict[str, int]:
        """Rows per table (checks after an import)."""

        def fn(tx: Tx) -> dict[str, int]:
            counts = {}
            for table in TABLES:
                row = tx.one(f"SELECT COUNT(*) FROM {table}")
                counts[table] = int(row[0]) if row else 0
            return counts

        return await self._run(fn, write=False)

    @staticmethod
    def _tally_problems(tx: Tx) -> list[str]:
        """Every item whose tally differs from its votes (voters, total), as text."""
        truth = (
            "SELECT group_id, vote_to, COUNT(*) AS n, SUM(value) AS s FROM votes "
            "WHERE value <> 0 GROUP BY group_id, vote_to"
        )
        rows = tx.all(
            f"SELECT t.group_id, t.vote_to, t.voters, t.total, COALESCE(v.n, 0), "
            f"COALESCE(v.s, 0) FROM tallies t LEFT JOIN ({truth}) v "
            "ON v.group_id = t.group_id AND v.vote_to = t.vote_to "
            "WHERE t.voters <> COALESCE(v.n, 0) OR t.total <> COALESCE(v.s, 0) "
            f"UNION ALL SELECT v.group_id, v.vote_to, 0, 0, v.n, v.s FROM ({truth}) v "
            "WHERE NOT EXISTS (SELECT 1 FROM tallies t WHERE t.group_id = v.group_id "
            "AND t.vote_to = v.vote_to) ORDER BY 1, 2"
        )
        return [
            f"tallies ({g!r}, {item!r}): {int(voters)} voters / total {int(total)}, "
            f"but its votes make {int(n)} / {int(s)}"
            for g, item, voters, total, n, s in rows
        ]

    @staticmethod
    def _reaction_problems(tx: Tx, carried: bool) -> list[str]:
        """Every (item, reaction bit) whose stored count differs from its votes, as text; an
        export without the counts (`carried` False) gets them computed from its votes."""
        row = tx.one("SELECT MAX(version) FROM schema_version")
        if not row or row[0] is None or int(row[0]) < REACTION_COUNTS_FROM:
            return []  # migration 0008 computes them once the import is in
        truth = {(g, item, int(b)): int(n) for g, item, b, n in tx.all(RECOUNT)}
        if not carried:
            tx.many(
                "INSERT INTO reaction_counts (group_id, vote_to, bit_no, voters) "
                "VALUES (?, ?, ?, ?)",
                [(*key, n) for key, n in sorted(truth.items())],
            )
            return []
        stored = {
            (g, item, int(b)): int(n)
            for g, item, b, n in tx.all(
                "SELECT group_id, vote_to, bit_no, voters FROM reaction_counts"
            )
        }
        return [
            f"reaction_counts ({g!r}, {item!r}, bit {b}): {stored.get((g, item, b), 0)} voters, "
            f"but its votes make {truth.get((g, item, b), 0)}"
            for g, item, b in sorted(truth.keys() | stored.keys())
            if stored.get((g, item, b), 0) != truth.get((g, item, b), 0)
        ]

    async def import_data(self, data: dict[str, Any]) -> None:
        """Insert an export into an empty database, in one transaction. Raises ImportRefused
        (nothing stored) naming every row that holds text no back end can store, else every
        tally or reaction count that disagrees with its votes (an export without reaction
        counts gets them computed from its votes)."""
        tables = data.get("tables")
        if not isinstance(tables, dict):
            raise ValueError("not a ClickVote export: 'tables' missing")

        def fn(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM users LIMIT 1") or tx.one("SELECT 1 FROM envs LIMIT 1"):
                raise Conflict("the target database is not empty")
            problems: list[str] = []
            for table in TABLES:
                block = tables.get(table)
                if block is None:
                    continue
                cols = block["columns"]
                tx.all(f"SELECT * FROM {table} LIMIT 0")
                known = set(tx.columns())
                if not isinstance(cols, list) or not cols or not set(cols) <= known:
                    raise ValueError(f"bad column list for table {table}")
                problems += _text_problems(table, cols, block["rows"])
                marks = ", ".join("?" for _ in cols)
                if not problems:  # else only the checks go on, to report every row
                    tx.many(
                        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                        [tuple(r) for r in block["rows"]],
                    )
            problems = problems or self._tally_problems(tx)
            carried = tables.get("reaction_counts") is not None
            problems = problems or self._reaction_problems(tx, carried)
            if problems:
                raise ImportRefused(problems)

        await self._run(fn)

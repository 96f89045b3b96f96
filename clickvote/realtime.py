"""Socket.IO protocol, compatible with @clickvote/react 0.0.8 (socket.io-client 4).

Client -> server events (each also answers through a Socket.IO acknowledgement if requested):
  login      {apiKey}                          -> emits `login` {token, expiration, proofOfWork}
             (proofOfWork: the bits of work a first vote needs, 0: none, no `challenge` needed)
  get-votes  {id, voteTo, userId?, type?, token, signature?, voterToken?}
             -> emits to the caller `get-votes-{id}-{voteTo}` {voted, voteValue, total, startEnd}
  vote       {id, voteTo, userId, type?, value, token, msgId?, signature?, voterToken?, pow?}
             -> other pages watching env+group+voteTo get `get-votes-{id}-{voteTo}`
                {total: {initial, count, avg, ...}, poster: {value}} (never the voter's id);
                the voter's own pages get {voted, voteValue, total, startEnd}: this one in
                its acknowledgement if it asked for one, else as that event too;
             a retried msgId counts once and answers with the item's state now
  challenge  {key or token} -> emits `challenge` {challenge, difficulty, expires}: a proof of
             work to solve before a first vote where the environment asks for one
             (difficulty 0, challenge null: none asked); the vote then carries `pow`
             {challenge, counter} (clickvote/proof.py)
A vote meets the abuse layers of clickvote/abuse.py after its voter is known.
Instead of `token`, new clients may pass `key` (the public key). Any other event, and any
event with binary attachments, is answered with an error (codes unknown_event, bad_payload).
Errors: the event `clickvote:error` {message, code, event, id?, voteTo?, msgId?, retryAfter?};
acknowledgements get {ok: false, error: {...}}; successes {ok: true, ...}.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from clickvote import jsonfast, proof, voters
from clickvote.abuse import admit_and_take, tightened
from clickvote.coalesce import Coalescer
from clickvote.context import Context
from clickvote.engineio import Peer
from clickvote.errors import STORAGE_RETRY
from clickvote.fanout import EMIT, Message
from clickvote.fields import (
    MAX_MSG_ID,
    MAX_NAME,
    MAX_VOTE_TO,
    FieldError,
    check_tree,
    text_problem,
)
from clickvote.ratelimit import retry_after
from clickvote.sio import SocketServer
from clickvote.storage import Env, Group, StorageUnavailable
from clickvote.votes import VoteError, cast_vote, current_state, own_message
from clickvote.votes import poster_message as make_poster_message

log = logging.getLogger("clickvote.realtime")
ERROR_EVENT = "clickvote:error"
NO_PROOF = (
    "this site asks a proof of work before a first vote: emit `challenge`, find its counter "
    "and send it as `pow` {challenge, counter} with the vote"
)
ROOM_SEQ_MAX = 100_000  # rooms whose newest broadcast is remembered (see Realtime._stale)


def room_key(kind: str, *parts: str) -> str:
    """`kind` and the parts, each length-prefixed: no two different lists give one name
    (a voteTo or voter holding "|" can't reach another item's or voter's room)."""
    return kind + "".join(f"|{len(p)}:{p}" for p in parts)


def item_room(env_id: str, group_id: str, vote_to: str) -> str:
    return room_key("i", env_id, group_id, vote_to)


ITEM_ROOM = "i|"  # what every item room's name starts with (room_key("i", ...))


def user_room(env_id: str, group_id: str, vote_to: str, voter: str) -> str:
    """The voter's pages on the item; `voter` is the stored key (identity.Voter.key)."""
    return room_key("u", env_id, group_id, vote_to, voter)


class _ItemLock:
    """`async with`: the asyncio.Lock of one key, dropped once no task holds or awaits it.
    (A plain class: @contextlib.asynccontextmanager costs a generator per use.)"""

    __slots__ = ("entry", "key", "locks")

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, list[int]]], key: str) -> None:
        self.locks, self.key = locks, key
        entry = locks.get(key)
        if entry is None:
            entry = locks[key] = (asyncio.Lock(), [0])
        self.entry = entry

    async def __aenter__(self) -> None:
        lock, users = self.entry
        users[0] += 1
        try:
            await lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.entry[0].release()
        self._leave()

    def _leave(self) -> None:
        users = self.entry[1]
        users[0] -= 1
        if users[0] == 0 and self.locks.get(self.key) is self.entry:
            del self.locks[self.key]


class Realtime:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sio = SocketServer()
        self.conns: dict[str, dict[str, Any]] = {}
        # Per-item locks: one vote of an item at a time on this instance (a retried msgId
        # reads the item's state under it); broadcasts are ordered by their seq instead.
        self._item_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        # room -> seq of the newest vote broadcast delivered here (oldest rooms forgotten first)
        self._room_seq: dict[str, int] = {}
        # item broadcasts: at most one per item per window (clickvote/coalesce.py)
        self.coalescer = Coalescer(ctx.settings.broadcast_window, self._emit)
        self.sio.on_connect = self.on_connect
        self.sio.on_disconnect = self.on_disconnect
        self.sio.on("login", self._wrap("login", self.login))
        self.sio.on("get-votes", self._wrap("get-votes", self.get_votes))
        self.sio.on("vote", self._wrap("vote", self.vote))
        self.sio.on("challenge", self._wrap("challenge", self.challenge))
        self.sio.fallback = self.other_event

    async def start(self) -> None:
        self.ctx.fanout.subscribe(EMIT, self.deliver)
        await self.ctx.fanout.start()

    async def close(self) -> None:
        self.coalescer.close()
        await self.sio.close()

    async def deliver(self, msg: Message, local_origin: bool) -> None:
        """An EMIT message of the fan-out, for this instance's sockets."""
        if msg.seq and self.coalescer.window > 0 and msg.room.startswith(ITEM_ROOM):
            # an item's totals for its watchers: coalesced (a voter's own update never is)
            if msg.seq > max(self._room_seq.get(msg.room, 0), self.coalescer.newest(msg.room)):
                self.coalescer.offer(msg, local_origin)
            return
        self._emit(msg, local_origin)

    def _emit(self, msg: Message, local_origin: bool) -> None:
        if msg.seq and self._stale(msg.room, msg.seq):
            return  # an older vote's broadcast, late (another instance's slow path to Redis)
        skip = list(msg.skip_sid) if local_origin else []
        if msg.exclude_room:
            skip += self.sio.participants(msg.exclude_room)
        # an item's totals: a newer one replaces the older still waiting for a slow page
        replace = bool(msg.seq) and msg.room.startswith(ITEM_ROOM)
        self.sio.emit(msg.event, msg.payload, msg.room, skip, replace)

    def _stale(self, room: str, seq: int) -> bool:
        """Whether a newer broadcast already went to `room`; else remember `seq` as newest."""
        last = self._room_seq.pop(room, 0)
        if seq <= last:
            self._room_seq[room] = last
            return True
        self._room_seq[room] = seq
        if len(self._room_seq) > ROOM_SEQ_MAX:
            del self._room_seq[next(iter(self._room_seq))]
        return False

    # --- connection -----------------------------------------------------------------------
    def on_connect(self, sid: str, peer: Peer, auth: Any = None) -> bool:
        info: dict[str, Any] = {
            "ip": peer.ip,
            "ua": peer.user_agent,
            "referrer": peer.referrer,
            "key": None,
        }
        # handshake auth {token: "<publicKey>:<userId>"}: its key is the page's environment;
        # the user id in it is informational (like the original) and not kept
        token = auth.get("token") if isinstance(auth, dict) else None
        if isinstance(token, str) and text_problem(token) is None:  # else: as if not given
            info["key"] = token[:600].partition(":")[0] or None
        self.conns[sid] = info
        return True

    def on_disconnect(self, sid: str) -> None:
        self.conns.pop(sid, None)

    # --- plumbing ---------------------------------------------------------------------------
    def _item_lock(self, key: str) -> _ItemLock:
        return _ItemLock(self._item_locks, key)

    def _wrap(self, event: str, handler: Any) -> Any:
        async def wrapped(sid: str, args: list[Any], wants_ack: bool) -> dict[str, Any]:
            data = args[0] if args else None
            ref: dict[str, Any] = {}
            try:
                info = self._info(sid)
                wait = await self._ip_wait(info)
                if wait:
                    raise RateLimited(wait)
                if not isinstance(data, dict):
                    raise VoteError("bad_payload", f"{event} expects a JSON object")
                try:
                    size = len(jsonfast.COMPACT.encode(data))  # as before: \u escapes count
                except RecursionError as exc:  # nested past the interpreter's stack
                    raise VoteError("bad_payload", "payload is nested too deeply") from exc
                except (TypeError, ValueError) as exc:
                    raise VoteError("bad_payload", "payload is not valid JSON") from exc
                if size > self.ctx.settings.max_event_bytes:
                    raise VoteError(
                        "payload_too_large",
                        f"payload over {self.ctx.settings.max_event_bytes} bytes",
                    )
                for k in ("id", "voteTo", "msgId"):
                    if isinstance(data.get(k), str | int) and not isinstance(data.get(k), bool):
                        ref[k] = data[k]
                check_fields(data)  # every event's fields, by the shared rules
                result = await handler(sid, data, info, wants_ack)
                return {"ok": True, **result}
            except RateLimited as exc:
                err = {
                    "message": "too many requests, slow down",
                    "code": "rate_limited",
                    "retryAfter": retry_after(exc.wait),
                }
            except VoteError as exc:
                err = {"message": exc.message, "code": exc.code}
            except StorageUnavailable as exc:  # transient: the page sends it again
                log.warning("%s: %s", event, exc)
                busy = VoteError("storage_unavailable")
                err = {"message": busy.message, "code": busy.code, "retryAfter": STORAGE_RETRY}
            except Exception:  # never let a bad message take the connection down
                log.exception("error handling %s", event)
                err = {"message": "internal error", "code": "internal"}
            err.update(event=event, **ref)
            return self._refuse(sid, err)

        return wrapped

    def _subscribe(self, info: dict[str, Any], item: tuple[str, str, str]) -> None:
        """Count `item` among the socket's watched items, refusing one past the cap."""
        watched: set[tuple[str, str, str]] = info.setdefault("watched", set())
        cap = self.ctx.settings.max_subscriptions
        if item not in watched and len(watched) >= cap:
            raise VoteError("too_many_subscriptions", f"a connection may watch at most {cap} items")
        watched.add(item)

    def _info(self, sid: str) -> dict[str, Any]:
        return self.conns.get(sid) or {"ip": "unknown"}

    async def _ip_wait(self, info: dict[str, Any]) -> float:
        """Seconds the socket's IP must wait before its next event (0: go ahead)."""
        return await self.ctx.ip_limiter.acquire("ip|" + info["ip"])

    def _refuse(self, sid: str, err: dict[str, Any]) -> dict[str, Any]:
        """The error as the `clickvote:error` event, and the acknowledgement carrying it."""
        self.sio.send(sid, ERROR_EVENT, err)
        return {"ok": False, "error": err}

    async def other_event(
        self, sid: str, event: str, binary: bool, wants_ack: bool
    ) -> dict[str, Any] | None:
        """An event this server has no handler for, or one with binary attachments."""
        if await self._ip_wait(self._info(sid)):
            return None  # a flood of junk gets no answers
        if binary:
            err = {"message": "binary payloads are not supported", "code": "bad_payload"}
        else:
            err = {"message": f"unknown event {event[:64]!r}", "code": "unknown_event"}
        err["event"] = event[:64]
        return self._refuse(sid, err)

    async def _env(self, data: dict[str, Any], info: dict[str, Any]) -> Env:
        token = data.get("token")
        if isinstance(token, dict):  # @clickvote/react re-sends the whole login answer
            token = token.get("token")
        if token is not None:
            try:
                return await voters.env_from_token(self.ctx, token, info)
            except voters.AccessError as exc:
                # A page that gave its public key in the handshake stays usable when its
                # login token expires (the React client never renews it).
                if exc.code != "token_expired" or not info.get("key"):
                    raise
                return await voters.env_from_key(self.ctx, info["key"])
        if data.get("key") is not None:
            return await voters.env_from_key(self.ctx, data.get("key"))
        if info.get("key"):
            return await voters.env_from_key(self.ctx, info["key"])
        raise voters.AccessError("unauthorized", "a login token is required (emit login first)")

    async def _group(self, env: Env, data: dict[str, Any]) -> tuple[Group, str]:
        name, vote_to = data.get("id"), data.get("voteTo")
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise VoteError("bad_group", "id (the vote group name) must be a string")
        if isinstance(vote_to, int) and not isinstance(vote_to, bool):
            vote_to = str(vote_to)
        if not isinstance(vote_to, str) or not vote_to or len(vote_to) > MAX_VOTE_TO:
            raise VoteError("bad_vote_to", f"voteTo must be a string of 1..{MAX_VOTE_TO} chars")
        group = await self.ctx.get_group_by_name(env.id, name)
        if group is None:
            raise VoteError("unknown_group", f"no vote group named {name!r}")
        return group, vote_to

    # --- events -----------------------------------------------------------------------------
    async def login(self, sid: str, data: dict[str, Any], info: dict[str, Any], ack: bool) -> dict:
        env = await voters.env_from_key(self.ctx, data.get("apiKey"))
        token, expiration = self.ctx.box.login_token(
            env.id, env.public_key, self.ctx.settings.login_token_ttl
        )
        # Seconds since the epoch, as the original server sent it (the React client reads it
        # with dayjs.unix).
        payload = {
            "token": token,
            "expiration": expiration // 1000,
            "proofOfWork": env.abuse.pow_difficulty,  # 0: no `challenge` needed
        }
        self.sio.send(sid, "login", payload)
        return payload

    async def get_votes(
        self, sid: str, data: dict[str, Any], info: dict[str, Any], ack: bool
    ) -> dict:
        env = await self._env(data, info)
        group, vote_to = await self._group(env, data)
        voter = voters.voter(
            self.ctx,
            env,
            data.get("userId"),
            data.get("signature"),
            data.get("voterToken"),
            required=False,
        )
        self._subscribe(info, (env.id, group.id, vote_to))
        state = await current_state(
            self.ctx.storage,
            group,
            vote_to,
            voter.key if voter else None,
            voter.legacy if voter else None,
        )
        self.sio.enter_room(sid, item_room(env.id, group.id, vote_to))
        if voter is not None:
            self.sio.enter_room(sid, user_room(env.id, group.id, vote_to, voter.key))
        self.sio.send(sid, f"get-votes-{group.name}-{vote_to}", state)
        return state

    async def vote(self, sid: str, data: dict[str, Any], info: dict[str, Any], ack: bool) -> dict:
        env = await self._env(data, info)
        group, vote_to = await self._group(env, data)
        try:
            voter = voters.voter(
                self.ctx, env, data.get("userId"), data.get("signature"), data.get("voterToken")
            )
        except VoteError:
            self.ctx.refusals.count(env.id, "token")
            raise
        assert voter is not None
        key = voter.key
        msg_id = data.get("msgId")
        if msg_id is not None:
            if isinstance(msg_id, bool) or not isinstance(msg_id, str | int):
                raise VoteError("bad_msg_id", "msgId must be a string")
            msg_id = str(msg_id)
            if not 1 <= len(msg_id) <= MAX_MSG_ID:
                raise VoteError("bad_msg_id", f"msgId must be 1..{MAX_MSG_ID} characters")
        if "value" not in data:
            raise VoteError("bad_value", "value is required")
        await self._layers(env, (group.id, vote_to), key, data, info)
        meta = {"user_agent": info.get("ua"), "referrer": info.get("referrer")}
        event = f"get-votes-{group.name}-{vote_to}"
        iroom, uroom = (
            item_room(env.id, group.id, vote_to),
            user_room(env.id, group.id, vote_to, key),
        )
        async with self._item_lock(iroom):
            response, replayed = await cast_vote(
                self.ctx.storage,
                group,
                vote_to,
                key,
                data.get("value"),
                msg_id,
                meta,
                voter.legacy,
            )
            self.sio.enter_room(sid, iroom)
            self.sio.enter_room(sid, uroom)
            if replayed:
                # The stored answer carries the totals of the first delivery, which newer votes
                # may have overtaken: a retry gets the item's state now (read under the lock,
                # so no later broadcast to this page can be older).
                own = await current_state(self.ctx.storage, group, vote_to, key, voter.legacy)
                if not ack:
                    self.sio.send(sid, event, own)
            else:
                own = own_message(response)
        if not replayed:
            # Outside the lock: the next vote on this item need not wait for these. Pages
            # still end on the newest totals: each broadcast carries its vote's seq and
            # `deliver` drops one older than what a room already got.
            seq = int(response.get("seq") or 0)
            await self.ctx.fanout.publish(
                iroom, event, make_poster_message(response), exclude_room=uroom, seq=seq
            )
            # A page that asked for an acknowledgement gets this in it: not twice.
            skip = [sid] if ack else None
            await self.ctx.fanout.publish(uroom, event, own, skip_sid=skip, seq=seq)
        return {**own, "replayed": replayed, "userId": voter.id}

    async def _layers(
        self,
        env: Env,
        item: tuple[str, str],
        key: str,
        data: dict[str, Any],
        info: dict[str, Any],
    ) -> None:
        """The abuse layers after the voter token (clickvote/abuse.py), in their order; a
        refusal is counted for its layer (in memory: a vote let through costs no count)."""
        ctx, abuse, limiter = self.ctx, env.abuse, self.ctx.voter_limiter
        pair = (env.id, *item, str(info.get("ip")), str(info.get("ua")))
        burst, rate = limiter.burst, limiter.rate
        if abuse.rate_burst or abuse.rate_per_sec:  # only ever stricter than the server's
            burst, rate = tightened(abuse.rate_burst, burst), tightened(abuse.rate_per_sec, rate)
        # the window, then the bucket: across instances or workers (Redis or the hub), in one
        # question where both apply
        admitted, wait = await admit_and_take(
            ctx.ip_window,
            limiter,
            (pair, key, abuse.ip_window, abuse.ip_voters),
            (f"v|{env.id}|{key}", burst, rate),
        )
        if not admitted:
            ctx.refusals.count(env.id, "ipWindow")
            raise VoteError(
                "too_many_voters",
                f"this address and browser voted as {abuse.ip_voters} voters on this item "
                "lately, the most this site allows",
            )
        if wait:
            ctx.refusals.count(env.id, "rateLimit")
            raise RateLimited(wait)
        if abuse.pow_difficulty:
            problem = await self._unproven(env, key, data, info)
            if problem is not None:
                ctx.refusals.count(env.id, "proofOfWork")
                raise VoteError("proof_of_work_required", problem)

    async def _unproven(
        self, env: Env, key: str, data: dict[str, Any], info: dict[str, Any]
    ) -> str | None:
        """None if the socket or the voter solved a challenge lately, or `data` brings a
        solution now (then both are trusted for proof.TRUST seconds); else what is missing."""
        ledger, now = self.ctx.pow_ledger, time.time()
        trusted: dict[str, float] = info.setdefault("pow_trusted", {})
        if trusted.get(env.id, 0) > now or ledger.trusted(env.id, key, now):
            return None
        if data.get("pow") is None:
            return NO_PROOF
        try:
            challenge, expires = proof.check(
                self.ctx.box, env.id, env.abuse.pow_difficulty, data["pow"], now
            )
            ledger.use(challenge, expires, now)
            shared = self.ctx.voter_limiter.shared  # with Redis: used once on any instance
            if shared and await shared.first_use(challenge, expires - now) is False:
                raise proof.ProofError(proof.USED)
        except proof.ProofError as exc:
            return f"{exc} (emit `challenge`, send its solution as `pow`)"
        trusted[env.id] = now + proof.TRUST
        ledger.trust(env.id, key, now)
        return None

    async def challenge(
        self, sid: str, data: dict[str, Any], info: dict[str, Any], ack: bool
    ) -> dict:
        """A proof-of-work challenge for the environment (difficulty 0: none asked)."""
        env = await self._env(data, info)
        difficulty = env.abuse.pow_difficulty
        if not difficulty:
            payload: dict[str, Any] = {"challenge": None, "difficulty": 0, "expires": None}
        else:
            payload = proof.issue(self.ctx.box, env.id, difficulty)
        self.sio.send(sid, "challenge", payload)
        return payload


def check_fields(data: dict[str, Any]) -> None:
    """The shared field rules (clickvote.fields), answered as `bad_payload`."""
    try:
        check_tree(data)
    except FieldError as exc:
        raise VoteError("bad_payload", exc.message) from exc


class RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__("rate limited")
        self.wait = wait

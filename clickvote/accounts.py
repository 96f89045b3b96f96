"""Account rules, the same for the JSON API and the command line: credentials, names,
registering (a user, an organisation, its default environments), logging in, passwords."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from clickvote.fields import MAX_NAME
from clickvote.security import LegacyHashError, check_password, hash_password, needs_rehash
from clickvote.storage import Conflict, Org, User

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
EMAIL_MAX = 254
PASSWORD_MIN = 8
PASSWORD_MAX = 200
LEGACY_HASH_MESSAGE = (
    "This account's password was saved by an earlier ClickVote with bcrypt, which this "
    "installation does not have: ask the administrator to set a new one with "
    "`clickvote setpassword --email EMAIL --password NEW`"
)
_dummy_hashes: dict[int, str] = {}


class Refused(ValueError):
    """A value breaking an account rule; `message` starts with the field's name."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.message = field, f"{field}: {problem}"
        super().__init__(self.message)


class LoginFailed(Exception):
    """Wrong email or password, or a password hash this installation can't check."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_credentials(email: str, password: str) -> tuple[str, str]:
    """The normalised email and the password, or Refused naming the field."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email) or len(email) > EMAIL_MAX:
        raise Refused("email", "must be a valid email address")
    if len(password) < PASSWORD_MIN:
        raise Refused("password", f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise Refused("password", f"must be at most {PASSWORD_MAX} characters")
    return email, password


def check_name(name: str, field: str = "name", minimum: int = 2, maximum: int = MAX_NAME) -> str:
    """An organisation's or vote group's name, stripped: minimum..maximum characters."""
    name = name.strip()
    if len(name) < minimum:
        raise Refused(field, f"must be at least {minimum} characters")
    if len(name) > maximum:
        raise Refused(field, f"must be at most {maximum} characters")
    return name


async def register(ctx: Any, email: str, password: str, org: str | None = None) -> tuple[User, Org]:
    """A new user with an organisation (named `org`, or the email's local part) holding the
    default environments. Refused for bad credentials, Conflict for a known email."""
    email, password = check_credentials(email, password)
    org_name = check_name(org or email.split("@")[0], "org", minimum=1)
    if await ctx.storage.get_user_by_email(email):
        raise Conflict("Email already exists", "email")
    hashed = await asyncio.to_thread(hash_password, password, ctx.settings.bcrypt_rounds)
    user = await ctx.storage.create_user(email, hashed)
    made = await ctx.storage.create_org(user.id, org_name, ctx.default_envs())
    return user, made


async def set_password(ctx: Any, email: str, password: str) -> User | None:
    """Give the user of `email` a new password; None when there is no such user."""
    email, password = check_credentials(email, password)
    user: User | None = await ctx.storage.get_user_by_email(email)
    if user is None:
        return None
    hashed = await asyncio.to_thread(hash_password, password, ctx.settings.bcrypt_rounds)
    await ctx.storage.set_password_hash(user.id, hashed)
    return user


def dummy_hash(rounds: int) -> str:
    """A real hash to check when the email is unknown, so timing doesn't reveal accounts."""
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = hash_password(secrets.token_hex(8), rounds)
    return _dummy_hashes[rounds]


async def authenticate(ctx: Any, email: str, password: str) -> User:
    """The user whose email and password these are (a hash of an older kind is replaced),
    or LoginFailed."""
    rounds = ctx.settings.bcrypt_rounds
    password = password[:PASSWORD_MAX]
    user: User | None = await ctx.storage.get_user_by_email(email)
    hashed = user.password_hash if user else dummy_hash(rounds)
    try:
        ok = await asyncio.to_thread(check_password, password, hashed)
    except LegacyHashError as exc:
        raise LoginFailed(LEGACY_HASH_MESSAGE) from exc
    if user is None or not ok:
        raise LoginFailed("Wrong email or password")
    if needs_rehash(hashed, rounds):
        rehashed = await asyncio.to_thread(hash_password, password, rounds)
        await ctx.storage.set_password_hash(user.id, rehashed)
    return user

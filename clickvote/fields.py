"""The rules for text fields, in one place: the JSON API, the real-time events and
`clickvote import` all check with these.

Any text refuses what some back end can't store, so SQLite and PostgreSQL accept exactly the
same strings: NUL (PostgreSQL's text can't hold it) and lone UTF-16 surrogates (no UTF-8
form; JSON can spell them as "\\ud800"). Fields that clients send by these names have one
length limit wherever they arrive (a Socket.IO event or a query string).
"""

from __future__ import annotations

from typing import Any

MAX_VOTE_TO = 256
MAX_USER_ID = 256
MAX_NAME = 100  # vote group and organisation names
MAX_MSG_ID = 128
MAX_KEY = 64  # a public key (pb_ + 32 characters)
MAX_LOGIN_TOKEN = 2048
MAX_VOTER_TOKEN = 512
MAX_SIGNATURE = 128  # HMAC-SHA256 as hex is 64
MAX_DEPTH = 32  # nesting of a request's JSON (every request ClickVote takes is nearly flat)

LIMITS: dict[str, int] = {
    "voteTo": MAX_VOTE_TO,
    "userId": MAX_USER_ID,
    "id": MAX_NAME,  # a vote group's name in events and /api/votes; org and env ids
    "group": MAX_NAME,
    "msgId": MAX_MSG_ID,
    "key": MAX_KEY,
    "apiKey": MAX_KEY,
    "token": MAX_LOGIN_TOKEN,
    "voterToken": MAX_VOTER_TOKEN,
    "signature": MAX_SIGNATURE,
}


class FieldError(ValueError):
    """A field no back end can take; `message` starts with the field's name."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field or "body"
        self.message = f"{self.field}: {problem}"
        super().__init__(self.message)


def text_problem(value: str) -> str | None:
    """Why `value` can't be stored, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (no lone surrogates)"
    return None


def check_text(field: str, value: str) -> str:
    problem = text_problem(value)
    if problem is None and len(value) > LIMITS.get(field, len(value)):
        problem = f"must be at most {LIMITS[field]} characters"
    if problem is not None:
        raise FieldError(field, problem)
    return value


def check_tree(value: Any, field: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Every text in a decoded JSON value (object keys too); the length limits apply to the
    top-level fields of an object. Raises FieldError naming the first bad one, or the first
    value nested deeper than `max_depth` (walked without recursion: how deep the interpreter's
    own stack goes differs between Python versions and platforms)."""
    todo: list[tuple[Any, str, int]] = [(value, field, 0)]
    while todo:
        item, name, depth = todo.pop()
        if isinstance(item, str):
            check_text(name, item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            raise FieldError(name, f"is nested more than {max_depth} levels deep")
        if isinstance(item, list):
            for i, sub in reversed(list(enumerate(item))):
                todo.append((sub, f"{name}.{i}" if name else str(i), depth + 1))
            continue
        for key, sub in reversed(list(item.items())):
            if isinstance(key, str) and text_problem(key):
                raise FieldError(name, f"a key {text_problem(key)}")
            todo.append((sub, f"{name}.{key}" if name else str(key), depth + 1))

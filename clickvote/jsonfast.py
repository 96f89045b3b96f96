"""JSON for the real-time path: orjson, else the standard library.

orjson writes the same JSON for what ClickVote sends (dicts with string keys, strings, ints,
floats, booleans, None) in a fraction of the time; what it refuses (integers past 64 bits,
strings with lone surrogates, non-string keys, unknown types) goes to the standard library
encoder, which either writes it as before or raises as before. Non-ASCII characters come out
as UTF-8 rather than \\u escapes: the same JSON to any parser. Decoding likewise: orjson,
and what it refuses (integers past 64 bits) the standard library decides.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a source checkout without its dependencies
    orjson = None  # type: ignore[assignment]

COMPACT = json.JSONEncoder(separators=(",", ":"))  # what json.dumps(separators=...) builds


def dumps(obj: Any) -> str:
    """json.dumps(obj, separators=(",", ":")), faster."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # orjson.JSONEncodeError too
            pass
    return COMPACT.encode(obj)


def loads(text: str) -> Any:
    """json.loads(text), faster."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)

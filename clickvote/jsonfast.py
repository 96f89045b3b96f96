"""JSON for the real-time path: orjson where it is installed, else the standard library.

orjson is an optional accelerator (there is no wheel for every platform: riscv64 and armv5
have none), so both paths write the same text for what ClickVote sends (dicts with string
keys, strings, ints, floats, booleans, None): compact separators and non-ASCII characters
as UTF-8 rather than \\u escapes. What orjson refuses (integers past 64 bits, non-string
keys, unknown types) goes to the pure path, which writes it or raises as json.dumps does;
text with lone surrogates (not UTF-8) is written with \\u escapes on both paths. The one
difference: floats below 1e-4 come out as 1e-7 (orjson) or 1e-07 (pure), the same number.
Decoding likewise: orjson, and what it refuses (NaN, lone surrogates) or would read
otherwise (integers past 64 bits, which it makes floats: any text with a run of 19 digits)
the standard library decides, so both paths read the same values.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ImportError:  # a platform without an orjson wheel, or not installed: the pure path
    orjson = None  # type: ignore[assignment]

COMPACT = json.JSONEncoder(separators=(",", ":"))  # what json.dumps(separators=...) builds
_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_LONG_DIGITS = re.compile(r"[0-9]{19}")  # what may be an integer past 64 bits


def dumps_pure(obj: Any) -> str:
    """dumps() with the standard library only."""
    text = _UTF8.encode(obj)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: escaped, as orjson's refusal has them
            return COMPACT.encode(obj)
    return text


def dumps(obj: Any) -> str:
    """json.dumps(obj, separators=(",", ":"), ensure_ascii=False), faster where orjson is."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # orjson.JSONEncodeError too
            pass
    return dumps_pure(obj)


def loads(text: str) -> Any:
    """json.loads(text), faster where orjson is."""
    if orjson is not None and not _LONG_DIGITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)

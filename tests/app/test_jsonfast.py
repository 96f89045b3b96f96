"""clickvote.jsonfast: orjson where installed, the standard library otherwise, the same JSON.

Every test runs on both paths where orjson is installed (the pure one forced by taking orjson
away); where it is not (riscv64, armv5), the pure path is all there is and is tested alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickvote import jsonfast

from .strategies import json_trees as trees

ORJSON = jsonfast.orjson


def stdlib(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(params=["orjson", "pure"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "orjson" and ORJSON is None:
        pytest.skip("orjson is not installed on this platform; the pure path is tested")
    saved = jsonfast.orjson
    jsonfast.orjson = ORJSON if request.param == "orjson" else None
    try:
        yield request.param
    finally:
        jsonfast.orjson = saved


# 50 examples on each path; the fixture only picks the path, once for all of them
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees)
def test_same_json_as_the_standard_library(path: str, obj: Any) -> None:
    text = jsonfast.dumps(obj)
    assert json.loads(text) == json.loads(stdlib(obj))
    assert jsonfast.loads(text) == json.loads(text)


def test_payloads_are_byte_identical(path: str) -> None:
    vote = {
        "ok": True,
        "voted": True,
        "voteValue": -1,
        "total": {"count": -3, "avg": 0, "mean": 2.5, "sum": 5, "voters": 2},
        "startEnd": {"start": -1, "end": 1},
        "replayed": False,
        "userId": 'a "quoted"\\ id\n',
        "name": "Zoë 投票 🗳",
        "none": None,
    }
    assert jsonfast.dumps(vote) == stdlib(vote)
    assert jsonfast.dumps(["get-votes-likes-x", vote]) == stdlib(["get-votes-likes-x", vote])


# Floats that both write alike (below 1e-4 orjson writes 1e-7 where Python writes 1e-07).
plain_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: f == 0 or abs(f) >= 1e-4
)
plain_trees = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | plain_floats
    | st.text(),
    lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
    max_leaves=20,
)


@pytest.mark.skipif(ORJSON is None, reason="orjson is not installed on this platform")
@given(plain_trees)
def test_pure_path_writes_the_bytes_orjson_writes(obj: Any) -> None:
    assert ORJSON is not None
    assert jsonfast.dumps_pure(obj) == ORJSON.dumps(obj).decode()


@pytest.mark.parametrize(
    "obj",
    [{"n": 2**64}, {1: "int key"}, [10**30, {"x": "é"}], {"s": "\ud800"}, [{"x": "é\udfff"}]],
)
def test_what_orjson_refuses_is_written_as_the_pure_path_does(path: str, obj: Any) -> None:
    assert jsonfast.dumps(obj) == jsonfast.dumps_pure(obj)
    text = jsonfast.dumps(obj)
    text.encode("utf-8")  # always UTF-8: lone surrogates come out as \u escapes
    assert json.loads(text) == json.loads(json.dumps(obj))


@pytest.mark.parametrize("text", ['{"n":18446744073709551616}', "[NaN]", '"\\ud800"', '{"a":1'])
def test_what_orjson_refuses_to_read_is_read_as_json_loads_does(path: str, text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):
            jsonfast.loads(text)
        return
    got = jsonfast.loads(text)
    assert json.dumps(got) == json.dumps(expected)


def test_unknown_types_raise_as_before(path: str) -> None:
    with pytest.raises(TypeError):
        jsonfast.dumps({"x": object()})

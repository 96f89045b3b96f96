"""clickvote.jsonfast writes the same JSON as json.dumps(separators=(",", ":"))."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from clickvote import jsonfast

from .strategies import json_trees as trees


def stdlib(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@given(trees)
def test_same_json_as_the_standard_library(obj: Any) -> None:
    assert json.loads(jsonfast.dumps(obj)) == json.loads(stdlib(obj))


def test_ascii_payloads_are_byte_identical() -> None:
    vote = {
        "ok": True,
        "voted": True,
        "voteValue": -1,
        "total": {"count": -3, "avg": 0, "mean": 2.5, "sum": 5, "voters": 2},
        "startEnd": {"start": -1, "end": 1},
        "replayed": False,
        "userId": 'a "quoted"\\ id\n',
    }
    assert jsonfast.dumps(vote) == stdlib(vote)
    assert jsonfast.dumps(["get-votes-likes-x", vote]) == stdlib(["get-votes-likes-x", vote])


@pytest.mark.parametrize(
    "obj", [{"n": 2**64}, {"s": "\ud800"}, {1: "int key"}, [10**30, {"x": "\udfff"}]]
)
def test_what_orjson_refuses_is_written_as_before(obj: Any) -> None:
    assert jsonfast.dumps(obj) == stdlib(obj)


def test_unknown_types_raise_as_before() -> None:
    with pytest.raises(TypeError):
        jsonfast.dumps({"x": object()})

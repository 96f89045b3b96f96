"""Fan-out messages between instances: what one instance publishes, another reads back, an
instance of the version before included (a rolling upgrade)."""

from __future__ import annotations

import json

import pytest

from clickvote.fanout import EMIT, INVALIDATE, OLD_INVALIDATE_ROOM, Message


def test_round_trip_keeps_every_field() -> None:
    msg = Message("i|e|g|x", "get-votes-likes-x", {"total": {"count": 2}}, ["sid1"], "u|r", "a1", 7)
    assert Message.from_json(msg.to_json()) == msg


def test_a_message_from_an_older_instance_has_no_seq() -> None:
    raw = '{"room": "r", "event": "e", "payload": null, "origin": "old"}'
    assert Message.from_json(raw) == Message("r", "e", None, [], None, "old", 0)


@pytest.mark.parametrize(
    "raw", ['{"event": "e"}', "not json", '{"room": "r", "event": "e", "seq": "x"}']
)
def test_malformed_messages_raise_value_or_key_errors(raw: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        Message.from_json(raw)


def test_each_message_has_a_kind_and_keeps_it() -> None:
    assert Message("r", "e", None).kind == EMIT
    for kind in (EMIT, INVALIDATE):
        msg = Message("", "", None, origin="a1", kind=kind)
        assert Message.from_json(msg.to_json()).kind == kind


def test_an_older_instances_invalidation_is_read_as_one() -> None:
    # as instances sent it before messages had a kind: an emit to a room no socket joins
    raw = '{"room":"ctl|invalidate","event":"invalidate","payload":null,"origin":"old"}'
    assert Message.from_json(raw).kind == INVALIDATE
    assert Message.from_json(raw.replace("ctl|invalidate", "i|e|g|x")).kind == EMIT


def test_an_invalidation_is_sent_in_the_form_older_instances_read() -> None:
    sent = json.loads(Message("", "", None, origin="new", kind=INVALIDATE).to_json())
    assert (sent["room"], sent["event"]) == (OLD_INVALIDATE_ROOM, "invalidate")
    assert OLD_INVALIDATE_ROOM == "ctl|invalidate"  # what the version before listens for


def test_the_text_is_the_one_every_version_wrote() -> None:
    """Field by field as dataclasses.asdict gives them (what earlier versions sent)."""
    import dataclasses

    msg = Message("r", "e", {"total": {"count": 2, "xs": [1, {"a": None}]}}, ["s"], None, "o", 3)
    assert msg.to_json() == json.dumps(dataclasses.asdict(msg), separators=(",", ":"))

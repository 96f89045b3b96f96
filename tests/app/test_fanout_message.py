"""Fan-out messages between instances: what one instance publishes, another reads back."""

from __future__ import annotations

import pytest

from clickvote.fanout import Message


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

"""Socket.IO packets (clickvote.sio) against python-socketio's own packet code as reference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from socketio.packet import Packet as Stock

from clickvote.sio import ACK, EVENT, BadPacket, decode, encode

from .strategies import json_trees as trees

ack_ids = st.none() | st.integers(min_value=0, max_value=10**12)


@given(st.text(min_size=1), trees, ack_ids)
def test_events_encode_as_the_stock_ones_decode_them(name: str, arg: Any, ack_id: Any) -> None:
    text = encode(EVENT, [name, arg], ack_id)
    stock = Stock(encoded_packet=text)
    assert (stock.packet_type, stock.id, stock.data) == (2, ack_id, [name, arg])


@given(trees, ack_ids)
def test_stock_packets_decode_here_as_they_were_made(arg: Any, ack_id: Any) -> None:
    text = Stock(packet_type=2, data=["e", arg], id=ack_id).encode()
    packet = decode(text)
    assert (packet.type, packet.ack_id, packet.data, packet.namespace) == (
        "2",
        ack_id,
        ["e", arg],
        "/",
    )


@pytest.mark.parametrize(
    "text, fields",
    [
        ("0", ("0", "/", None, None, 0)),
        ('0{"token":"pb_x:u"}', ("0", "/", None, {"token": "pb_x:u"}, 0)),
        ("0/admin,", ("0", "/admin", None, None, 0)),
        ('2/ns,7["e"]', ("2", "/ns", 7, ["e"], 0)),
        ("1", ("1", "/", None, None, 0)),
        ('317[{"ok":true}]', ("3", "/", 17, [{"ok": True}], 0)),
        (
            '51-["e",{"_placeholder":true,"num":0}]',
            ("5", "/", None, ["e", {"_placeholder": True, "num": 0}], 1),
        ),
    ],
)
def test_packet_fields(text: str, fields: tuple[Any, ...]) -> None:
    p = decode(text)
    assert (p.type, p.namespace, p.ack_id, p.data, p.attachments) == fields


@pytest.mark.parametrize(
    "text",
    ["", "9", "x", "2not json", "2" + "[" * 5000, '5-["e"]', '5x-["e"]', "2" + "1" * 20 + "[]"],
)
def test_what_is_not_a_packet_is_refused(text: str) -> None:
    with pytest.raises(BadPacket):
        decode(text)


def test_acks_and_events_as_the_stock_code_writes_them() -> None:
    assert (
        encode(ACK, [{"ok": True}], 3) == Stock(packet_type=3, data=[{"ok": True}], id=3).encode()
    )
    assert encode(EVENT, ["e", {"k": "v"}]) == Stock(packet_type=2, data=["e", {"k": "v"}]).encode()
    assert encode("0", {"sid": "abc"}) == Stock(packet_type=0, data={"sid": "abc"}).encode()


def test_integers_past_64_bits_are_data_too() -> None:
    assert decode('2["vote",{"value":' + str(2**70) + "}]").data == ["vote", {"value": 2**70}]

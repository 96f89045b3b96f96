"""Settings from CLICKVOTE_* variables: renamed settings still read by their former names."""

from __future__ import annotations

import pytest

from clickvote.config import Settings
from clickvote.engineio import MAX_PACKET_BYTES


def test_event_limit_read_by_its_name_and_its_former_one() -> None:
    assert Settings.from_env({}).max_event_bytes == 4096 < MAX_PACKET_BYTES
    assert Settings.from_env({"CLICKVOTE_MAX_EVENT_BYTES": "200"}).max_event_bytes == 200
    assert Settings.from_env({"CLICKVOTE_MAX_PAYLOAD": "100"}).max_event_bytes == 100
    both = {"CLICKVOTE_MAX_EVENT_BYTES": "200", "CLICKVOTE_MAX_PAYLOAD": "100"}
    assert Settings.from_env(both).max_event_bytes == 200
    with pytest.raises(ValueError, match="CLICKVOTE_MAX_PAYLOAD"):
        Settings.from_env({"CLICKVOTE_MAX_PAYLOAD": "lots"})

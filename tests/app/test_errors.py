"""One error table (clickvote/errors.py): every code the server raises is in it, and the JSON
API answers each with the table's status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import clickvote
from clickvote.api.errors import answer
from clickvote.errors import CODES, ClickVoteError
from clickvote.identity import IdentityError
from clickvote.votes import VoteError

SOURCE = Path(clickvote.__file__).parent
RAISED = re.compile(r"(?:(?:Vote|Identity|Access|ClickVote)Error\(\s*|\"code\": )\"([a-z_]+)\"")
# the statuses the API has always answered these codes with
PINNED = {
    "unknown_key": 404,
    "unknown_group": 404,
    "bad_signature": 403,
    "bad_voter_token": 403,
    "signature_required": 403,
    "identity_refused": 403,
    "bad_user": 400,
    "reserved_user_id": 400,
    "bad_value": 400,
    "bad_token": 400,
}


def test_every_code_the_server_raises_is_in_the_table() -> None:
    raised = {
        code
        for path in SOURCE.rglob("*.py")
        for code in RAISED.findall(path.read_text(encoding="utf-8"))
    }
    assert {"unknown_key", "bad_signature", "rate_limited", "payload_too_large"} <= raised
    assert raised <= set(CODES), raised - set(CODES)


def test_a_code_outside_the_table_cannot_be_raised() -> None:
    with pytest.raises(KeyError):
        VoteError("no_such_code", "whatever")
    with pytest.raises(KeyError):
        IdentityError("bad_sig", "a typo")


@pytest.mark.parametrize("code", sorted(CODES))
def test_api_answers_each_code_with_its_status(code: str) -> None:
    status, default = CODES[code]
    r = answer(IdentityError(code) if code in PINNED else ClickVoteError(code))
    assert r.status_code == status == PINNED.get(code, status)
    assert json.loads(r.body) == {"message": default, "statusCode": status, "code": code}

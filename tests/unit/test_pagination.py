"""next_token: round trips, and every kind of forgery is a 400 (InvalidNextToken), never a crash."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from chalicelib.errors import InvalidNextToken
from chalicelib.events import DONE, EventQuery
from chalicelib.pagination import decode_token, encode_token

SERVICE_QUERY = EventQuery(environment="production", kinds=("build", "deployment"), service="api", limit=10,
                           until=datetime(2026, 12, 1, tzinfo=timezone.utc))
CURSORS = {"build": {"pk": "M#production#api", "sk": "build#2026-11-01T00:00:00.000000Z#x"}, "deployment": DONE}


def forge(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_round_trip() -> None:
    token = encode_token(SERVICE_QUERY, CURSORS)
    assert token is not None
    assert decode_token(token, SERVICE_QUERY) == CURSORS


def test_no_token_when_every_kind_is_done() -> None:
    assert encode_token(SERVICE_QUERY, {"build": DONE, "deployment": DONE}) is None


def test_a_token_is_bound_to_its_query() -> None:
    token = encode_token(SERVICE_QUERY, CURSORS)
    other = EventQuery(environment="production", kinds=("build", "deployment"), service="billing", limit=10)
    with pytest.raises(InvalidNextToken):
        decode_token(token, other)


@pytest.mark.parametrize("token", [
    "not-base64!!", "x" * 5000, forge([1, 2]), forge({"v": 2}), forge({"v": 1, "q": "nope", "c": {}}),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidNextToken):
        decode_token(token, SERVICE_QUERY)


@pytest.mark.parametrize("cursor", [
    {"pk": "M#production#someone-else", "sk": "build#2026"},  # another partition
    {"pk": "M#production#api", "sk": "deployment#2026-11-01T00:00:00.000000Z#x"},  # another kind's range
    {"pk": "M#production#api", "sk": "build#2026-11-01#x"},  # malformed timestamp
    {"pk": "M#production#api"},  # missing key part
    {"pk": "M#production#api", "sk": 5},  # wrong type
    {"pk": "M#production#api", "sk": "build#1", "extra": "x"},
    {"pk": "M#production#api", "sk": "build#2026-11-01#x"},  # malformed timestamp
    {"pk": "M#production#api", "sk": "build#2027-01-01T00:00:00.000000Z#x"},  # after the query's until
    "resume-here", 42,
])
def test_tampered_cursors_are_refused(cursor: object) -> None:
    payload = {"v": 1, "q": SERVICE_QUERY.fingerprint(), "c": {"build": cursor, "deployment": None}}
    with pytest.raises(InvalidNextToken):
        decode_token(forge(payload), SERVICE_QUERY)


def test_a_cross_service_cursor_must_agree_with_itself() -> None:
    query = EventQuery(environment="production", kinds=("build",), limit=10)
    good = {"pk": "M#production#api", "sk": "build#2026-11-01T00:00:00.000000Z#x",
            "gsi1pk": "build#production", "gsi1sk": "2026-11-01T00:00:00.000000Z#api#x"}
    assert decode_token(encode_token(query, {"build": good}), query) == {"build": good}
    for tampered in ({**good, "pk": "M#production#other"}, {**good, "gsi1sk": "zzz"},
                     {**good, "gsi1pk": "build#staging"}, {**good, "sk": "build#2026-11-02T00:00:00.000000Z#x"}):
        payload = {"v": 1, "q": query.fingerprint(), "c": {"build": tampered}}
        with pytest.raises(InvalidNextToken):
            decode_token(forge(payload), query)

"""The one retry helper (chalicelib.dynamodb.retry_remaining): what is left goes again, until
nothing is, a number of rounds has passed, or a deadline."""
from __future__ import annotations

import time

import pytest

from chalicelib import dynamodb
from chalicelib.errors import Unavailable


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    slept: list[int] = []
    monkeypatch.setattr(dynamodb, "backoff", slept.append)
    return slept


def test_only_what_is_left_goes_again_until_nothing_is(no_sleep: list[int]) -> None:
    sent: list[list[int]] = []

    def send(pending: list[int]) -> list[int]:
        sent.append(pending)
        return pending[(len(pending) + 1) // 2:]  # half of it is processed each round, as with throttling

    dynamodb.retry_remaining(send, [1, 2, 3, 4, 5, 6, 7, 8], "gave up")
    assert sent == [[1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8], [7, 8], [8]]
    assert no_sleep == [0, 1, 2]  # a backoff before each round after the first, growing


def test_it_gives_up_after_its_rounds_with_the_message_given() -> None:
    calls = []

    def send(pending: list[str]) -> list[str]:
        calls.append(1)
        return pending

    with pytest.raises(Unavailable, match="the table kept refusing"):
        dynamodb.retry_remaining(send, ["x"], "the table kept refusing", rounds=3)
    assert len(calls) == 4  # the first attempt and three more rounds


def test_with_a_deadline_it_stops_when_the_time_is_up() -> None:
    calls = []

    def send(pending: list[str]) -> list[str]:
        calls.append(1)
        return pending

    with pytest.raises(Unavailable, match="out of time"):
        dynamodb.retry_remaining(send, ["x"], "out of time", rounds=None, deadline=time.monotonic() + 0.05)
    assert len(calls) >= 1
    with pytest.raises(Unavailable):
        dynamodb.retry_remaining(send, ["x"], "out of time", rounds=None, deadline=time.monotonic() - 1)


def test_nothing_to_send_sends_nothing() -> None:
    dynamodb.retry_remaining(lambda pending: pytest.fail("sent"), [], "never")

"""The one retry helper (chalicelib.dynamodb.retry_remaining): what is left goes again, until
nothing is, a number of rounds has passed, or a deadline; and what a give-up says of its cause."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from chalicelib import dynamodb
from chalicelib.errors import Unavailable
from chalicelib.logs import logged_run
from chalicelib.replication import Change, Replicator


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
    calls.clear()
    with pytest.raises(Unavailable):
        dynamodb.retry_remaining(send, ["x"], "out of time", rounds=None, deadline=time.monotonic() - 1)
    assert len(calls) == 1  # a deadline already past still lets the first round go


def test_a_deadline_already_past_still_sends_once_and_succeeds_if_that_round_does() -> None:
    sent: list[list[str]] = []
    dynamodb.retry_remaining(lambda pending: sent.append(pending) or [], ["x", "y"], "never",
                             rounds=None, deadline=time.monotonic() - 1)
    assert sent == [["x", "y"]]


def test_nothing_to_send_sends_nothing() -> None:
    dynamodb.retry_remaining(lambda pending: pytest.fail("sent"), [], "never")


class _AlwaysUnprocessed:
    """A DynamoDB client whose BatchWriteItem leaves every item unprocessed `times` times."""

    def __init__(self, times: int) -> None:
        self.times, self.calls = times, 0

    def batch_write_item(self, RequestItems: dict) -> dict:  # noqa: N803 - boto3's argument name
        self.calls += 1
        if self.calls <= self.times:
            return {"UnprocessedItems": RequestItems}
        return {"UnprocessedItems": {}}


def test_a_batch_write_with_a_deadline_keeps_going_past_the_round_limit_until_the_deadline() -> None:
    """The sweep writes with a deadline: a throttled replica slows it down, it does not fail it."""
    items = [{"pk": {"S": "k"}, "sk": {"S": str(i)}} for i in range(3)]
    patient = _AlwaysUnprocessed(times=30)
    dynamodb.Table(patient, "t", "us-east-1").batch_write(items, deadline=time.monotonic() + 60)  # type: ignore[arg-type]
    assert patient.calls == 31
    hurried = _AlwaysUnprocessed(times=30)
    with pytest.raises(Unavailable, match="kept leaving writes unprocessed"):
        dynamodb.Table(hurried, "t", "us-east-1").batch_write(items)  # type: ignore[arg-type]
    assert hurried.calls == 1 + dynamodb.C.UNPROCESSED_RETRIES


class _AlwaysThrottled:
    """A DynamoDB client whose TransactWriteItems is always throttled (after botocore's own retries)."""

    def transact_write_items(self, **_: object) -> dict:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "TransactWriteItems")


def test_a_replica_that_keeps_failing_raises_with_what_aws_answered_and_the_run_logs_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    replicator = Replicator(dynamodb.Table(_AlwaysThrottled(), "t", "us-west-2"), "us-east-1")  # type: ignore[arg-type]
    key = {"pk": {"S": "k"}, "sk": {"S": "1"}}
    change = Change(key, {**key, "version": {"N": "2"}}, 2)

    @logged_run("replicate_stream")
    def handler(event: dict) -> None:
        replicator.apply([change], datetime.now(timezone.utc))

    with pytest.raises(Unavailable, match="replica table in us-west-2 kept failing writes") as raised:
        handler({"Records": [{"eventID": "e-1"}]})
    assert isinstance(raised.value.__cause__, Unavailable)
    assert isinstance(raised.value.__cause__.__cause__, ClientError)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["status"], line["correlation_id"]) == ("error", "e-1")
    assert line["aws_error"] == "ProvisionedThroughputExceededException"
    assert line["cause"] == "The table is unavailable right now; retry the request."

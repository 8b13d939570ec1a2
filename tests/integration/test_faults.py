"""Faults at the AWS boundary lose nothing: throttling, 5xx, dropped connections, unprocessed batch
items, and a write path that dies between claiming ids and writing events."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from tests.conftest import post
from tests.faults import FaultInjector

NOW = datetime.now(timezone.utc)


def events(prefix: str, count: int, with_timestamp: bool = True) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        event = {"kind": "build", "service": "ci", "id": f"{prefix}-{i}", "status": "succeeded",
                 "duration_seconds": float(i)}
        if with_timestamp:
            event["timestamp"] = (NOW - timedelta(seconds=i)).isoformat()
        out.append(event)
    return out


def stored(client: Any) -> Counter[str]:
    """How many times each event id can be read back."""
    ids: Counter[str] = Counter()
    token = None
    while True:
        url = "/metrics?service=ci&limit=500" + (f"&next_token={token}" if token else "")
        body = client.http.get(url).json_body
        ids.update(item["id"] for item in body["items"])
        token = body["next_token"]
        if token is None:
            return ids


def ddb() -> Any:
    return app_module.context().table.client


def post_until_accepted(client: Any, body: dict[str, Any], attempts: int = 20) -> list[int]:
    """What a well-behaved client does: retry a 503 with the same body."""
    statuses = []
    for _ in range(attempts):
        response = post(client, body)
        statuses.append(response.status_code)
        if response.status_code != 503:
            assert response.status_code == 201, response.body
            return statuses
    raise AssertionError(f"never accepted: {statuses}")


def test_transient_faults_are_retried_inside_the_request(client, aws) -> None:
    # given the next three DynamoDB calls fail with a mix of throttling, 5xx and dropped connections
    injector = FaultInjector(burst=3, kinds=("throttle", "server_error", "dropped_connection")).attach(ddb())
    # when a batch is posted
    response = post(client, {"events": events("t", 30)})
    injector.detach(ddb())
    # then the client never notices, and every event is stored once
    assert response.status_code == 201 and response.json_body["created"] == 30
    assert len(injector.injected) == 3
    assert stored(client) == Counter({f"t-{i}": 1 for i in range(30)})


def test_one_call_in_five_failing_loses_nothing_and_duplicates_nothing(client, aws) -> None:
    # given 20% of all DynamoDB calls fail, in every way the boundary can fail
    injector = FaultInjector(rate=0.2, seed=11).attach(ddb())
    # when 12 batches of 40 events are posted by a client that retries 503s
    for batch in range(12):
        post_until_accepted(client, {"events": events(f"b{batch}", 40)})
    injector.detach(ddb())
    # then all 480 are stored exactly once
    assert len(injector.injected) > 20, injector.injected
    assert {kind.split(":")[1] for kind in injector.injected} == {
        "throttle", "server_error", "dropped_connection", "unprocessed"}
    assert stored(client) == Counter({f"b{b}-{i}": 1 for b in range(12) for i in range(40)})


def test_a_persistent_outage_is_a_503_in_the_error_shape(client, aws) -> None:
    injector = FaultInjector(rate=1.0, kinds=("server_error",)).attach(ddb())
    response = post(client, {"events": events("o", 5)})
    injector.detach(ddb())
    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "service_unavailable"
    assert "Internal" not in json.dumps(response.json_body)  # nothing internal is echoed


@pytest.mark.parametrize("with_timestamp", [True, False])
def test_a_write_that_dies_after_claiming_ids_is_completed_by_the_retry(client, aws, with_timestamp) -> None:
    # given every BatchWriteItem fails, so the request dies after its ids were claimed
    body = {"events": events("c", 12, with_timestamp)}
    injector = FaultInjector(rate=1.0, operations=frozenset({"BatchWriteItem"}),
                             kinds=("dropped_connection",)).attach(ddb())
    assert post(client, body).status_code == 503
    injector.detach(ddb())
    assert stored(client) == Counter()
    # when the client retries the same body (for events without a timestamp: minutes later)
    response = post(client, body)
    # then the lost events are written, each once
    assert response.status_code == 201
    assert response.json_body["created"] == 12
    assert stored(client) == Counter({f"c-{i}": 1 for i in range(12)})
    # and a further retry is a pure duplicate
    assert post(client, body).json_body == {"ids": [f"c-{i}" for i in range(12)], "created": 0, "duplicates": 12}


def test_unprocessed_batch_items_are_retried_until_written(client, aws) -> None:
    injector = FaultInjector(rate=0.5, operations=frozenset({"BatchWriteItem", "BatchGetItem"}),
                             kinds=("unprocessed",), seed=3).attach(ddb())
    response = post(client, {"events": events("u", 100)})
    injector.detach(ddb())
    assert response.status_code == 201, response.body
    assert injector.injected
    assert stored(client) == Counter({f"u-{i}": 1 for i in range(100)})

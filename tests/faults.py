"""Faults injected at the AWS boundary: botocore's HTTP send, before any request leaves the client.

Each fault is what DynamoDB or the network really does: a throttling answer, a 5xx, a dropped
connection before or after the server acted, a batch left partly unprocessed. botocore's retry
policy sees them exactly as it would see the real thing.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import requests
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

# dropped_connection: the request never reaches the server; lost_answer: the server applies it and
# the answer is lost on the way back, so botocore sends it again (the case a retried conditional
# write must survive).
# conflict: a TransactWriteItems cancelled for a conflicting write on one of its items.
FAULTS = ("throttle", "server_error", "dropped_connection", "lost_answer", "unprocessed", "conflict")
_UNPROCESSED = {"BatchWriteItem": ("UnprocessedItems", "RequestItems"),
                "BatchGetItem": ("UnprocessedKeys", "RequestItems")}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body


_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#"


def fault_response(kind: str, url: str) -> AWSResponse:
    if kind == "throttle":
        status, body = 400, {"__type": _ERROR_TYPE + "ThrottlingException", "message": "Rate exceeded"}
    else:
        status, body = 500, {"__type": _ERROR_TYPE + "InternalServerError", "message": "Internal"}
    return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(json.dumps(body).encode()))


def conflict_response(request: Any) -> AWSResponse:
    """TransactionCanceledException for a transaction that met a concurrent write on its first item,
    as DynamoDB answers it: one cancellation reason per operation."""
    operations = len(json.loads(request.body)["TransactItems"])
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
    reasons += [{"Code": "None"}] * (operations - 1)
    body = {"__type": _ERROR_TYPE + "TransactionCanceledException", "CancellationReasons": reasons,
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                       f"[TransactionConflict{', None' * (operations - 1)}]"}
    return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"},
                       _Raw(json.dumps(body).encode()))


def partial_batch(operation: str, request: Any) -> AWSResponse:
    """Send only the first half of a batch to the server and answer the rest as unprocessed, as
    DynamoDB does when a partition is throttled."""
    unprocessed_field, request_field = _UNPROCESSED[operation]
    payload = json.loads(request.body)
    kept: dict[str, Any] = {}
    left: dict[str, Any] = {}
    for table, entry in payload[request_field].items():
        entries = entry if operation == "BatchWriteItem" else entry["Keys"]
        half = len(entries) // 2
        if operation == "BatchWriteItem":
            kept[table], left[table] = entries[:half], entries[half:]
        else:
            kept[table] = {**entry, "Keys": entries[:half]}
            left[table] = {**entry, "Keys": entries[half:]}
    kept = {t: e for t, e in kept.items() if (e if operation == "BatchWriteItem" else e["Keys"])}
    if kept:
        sent = requests.post(request.url, data=json.dumps({**payload, request_field: kept}),
                             headers=dict(request.headers.items()), timeout=10)
        answer = sent.json()
    else:
        answer = {"Responses": {}} if operation == "BatchGetItem" else {}
    answer[unprocessed_field] = left
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"},
                       _Raw(json.dumps(answer).encode()))


@dataclass
class FaultInjector:
    """Fails a share of calls (`rate`), or the next `burst` calls, of the operations named."""

    rate: float = 0.0
    burst: int = 0
    operations: frozenset[str] | None = None
    kinds: tuple[str, ...] = FAULTS
    seed: int = 7
    injected: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def attach(self, client: Any) -> FaultInjector:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("before-send.dynamodb", self._before_send)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        self.calls.append(operation)
        if self.operations is not None and operation not in self.operations:
            return None
        if self.burst > 0:
            self.burst -= 1
        elif self._random.random() >= self.rate:
            return None
        kinds = [k for k in self.kinds if (k != "unprocessed" or operation in _UNPROCESSED)
                 and (k != "conflict" or operation == "TransactWriteItems")]
        if not kinds:
            return None
        kind = self._random.choice(kinds)
        self.injected.append(f"{operation}:{kind}")
        if kind == "dropped_connection":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "lost_answer":
            requests.post(request.url, data=request.body, headers=dict(request.headers.items()), timeout=10)
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "unprocessed":
            return partial_batch(operation, request)
        if kind == "conflict":
            return conflict_response(request)
        return fault_response(kind, request.url)

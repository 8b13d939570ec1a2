"""Faults injected at the AWS boundary: botocore's HTTP send, before any request leaves the client.

Each fault is what DynamoDB or the network really does: a throttling answer, a 5xx, a dropped
connection. botocore's retry policy sees them exactly as it would see the real thing.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

FAULTS = ("throttle", "server_error", "dropped_connection")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body


def fault_response(kind: str, url: str) -> AWSResponse:
    if kind == "throttle":
        status, body = 400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
    else:
        status, body = 500, b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal"}'
    return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


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
        kind = self._random.choice(self.kinds)
        self.injected.append(f"{operation}:{kind}")
        if kind == "dropped_connection":
            raise ConnectionClosedError(endpoint_url=request.url)
        return fault_response(kind, request.url)

"""The DynamoDB call layer: one table in one region, and every call the service makes to it.

Everything above this module (the event store, the control store, replication, the DR tools)
talks to DynamoDB through a `Table`, which gives it:
  - error translation: what outlived botocore's retries (throttling, 5xx, no answer) becomes our
    503 (Unavailable), so a client is told to retry and never sees a 500;
  - pagination: Query and parallel segmented Scan pages, followed to the end;
  - batches within AWS's limits (25 puts or deletes per BatchWriteItem, 100 keys per BatchGetItem;
    moto accepts 26, so the limits are enforced here), with UnprocessedItems and UnprocessedKeys
    sent again with backoff and jitter.
Items are in DynamoDB's low-level wire format ({"pk": {"S": "..."}}), as the client takes them.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws_errors
from chalicelib import constants as C
from chalicelib.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, dict[str, Any]]  # a DynamoDB item (or key) in the low-level wire format: untyped JSON
T = TypeVar("T")
R = TypeVar("R")


def backoff(attempt: int) -> None:
    """Sleep before attempt `attempt` + 1, with full jitter (AWS Architecture Blog, "Exponential
    Backoff And Jitter"): at most 50 ms × 2^attempt, capped at one second."""
    time.sleep(random.uniform(0, min(1.0, 0.05 * 2 ** attempt)))


def retry_remaining(send: Callable[[list[T]], list[T]], pending: Sequence[T], give_up: str,
                    rounds: int | None = C.UNPROCESSED_RETRIES, deadline: float | None = None,
                    wait: Callable[[int], object] | None = None) -> None:
    """Call `send` with what is still pending until nothing is: `send` does what it can and returns
    the rest, which goes again after `wait(attempt)` (by default `backoff`). Raises Unavailable(give_up) after
    `rounds` more rounds (None: no limit) or when a round leaves something and time.monotonic() is past
    `deadline`: the deadline bounds the retrying, so the first round is always sent."""
    attempt = 0
    pending = list(pending)
    while pending:
        pending = send(pending)
        if not pending:
            return
        if rounds is not None and attempt >= rounds:
            raise Unavailable(give_up)
        if deadline is not None and time.monotonic() > deadline:
            raise Unavailable(give_up)
        (wait or backoff)(attempt)
        attempt += 1


@dataclass(frozen=True)
class Page:
    """One Query or Scan page: its items, and where the next page starts (None: the last page)."""

    items: list[Item]
    last_key: Item | None


class Table:
    """One DynamoDB table in one region, behind a client made with chalicelib.clients."""

    def __init__(self, client: DynamoDBClient, name: str, region: str) -> None:
        self.client = client
        self.name = name
        self.region = region

    # ---- single items -----------------------------------------------------------------------------

    def get(self, key: Item, projection: str | None = None) -> Item | None:
        """A strongly consistent GetItem; None when there is no such item."""
        params: dict[str, Any] = {"TableName": self.name, "Key": key, "ConsistentRead": True}
        if projection:
            params["ProjectionExpression"] = projection
        return cast("Item | None", self.call(self.client.get_item, **params).get("Item"))

    def put(self, item: Item, condition: str | None = None, values: Item | None = None) -> bool:
        """PutItem; with a condition, False when the condition did not hold (nothing was written)."""
        return self._conditional(self.client.put_item, {"Item": item}, condition, values)

    def delete(self, key: Item, condition: str | None = None, values: Item | None = None) -> bool:
        """DeleteItem; with a condition, False when the condition did not hold."""
        return self._conditional(self.client.delete_item, {"Key": key}, condition, values)

    def _conditional(self, operation: Callable[..., Any], params: dict[str, Any], condition: str | None,
                     values: Item | None) -> bool:
        params["TableName"] = self.name
        if condition:
            params["ConditionExpression"] = condition
        if values:
            params["ExpressionAttributeValues"] = values
        try:
            self.call(operation, **params)
        except ClientError as error:
            if condition and aws_errors.is_condition_failed(error):
                return False
            raise
        return True

    def status(self) -> str:
        """The table's TableStatus (ACTIVE when it takes reads and writes)."""
        return str(self.describe()["TableStatus"])

    def describe(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.call(self.client.describe_table, TableName=self.name)["Table"])

    def time_to_live(self) -> dict[str, Any]:
        """The table's TimeToLiveDescription (TimeToLiveStatus, AttributeName)."""
        answer = self.call(self.client.describe_time_to_live, TableName=self.name)
        return cast(dict[str, Any], answer["TimeToLiveDescription"])

    def point_in_time_recovery(self) -> str:
        """ENABLED or DISABLED."""
        answer = self.call(self.client.describe_continuous_backups, TableName=self.name)
        description = answer["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        return str(description.get("PointInTimeRecoveryStatus", "DISABLED"))

    # ---- Query and Scan -----------------------------------------------------------------------------

    def query(self, **params: Any) -> Page:
        """One Query page (TableName is filled in)."""
        response: dict[str, Any] = cast(dict[str, Any], self.call(self.client.query, TableName=self.name, **params))
        return Page(response.get("Items", []), response.get("LastEvaluatedKey"))

    def query_pages(self, **params: Any) -> Iterator[Page]:
        """Every page of a Query, in order."""
        while True:
            page = self.query(**params)
            yield page
            if page.last_key is None:
                return
            params["ExclusiveStartKey"] = page.last_key

    def scan_pages(self, segments: int = C.SCAN_SEGMENTS, projection: str | None = None) -> Iterator[list[Item]]:
        """Every page of a parallel segmented, strongly consistent Scan (operator tooling and full
        copies only: a request path never scans)."""
        def segment(number: int) -> list[list[Item]]:
            params: dict[str, Any] = {"TableName": self.name, "Segment": number, "TotalSegments": segments,
                                      "ConsistentRead": True}
            if projection:
                params["ProjectionExpression"] = projection
            pages: list[list[Item]] = []
            while True:
                response: dict[str, Any] = cast(dict[str, Any], self.call(self.client.scan, **params))
                pages.append(response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    return pages
                params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

        with ThreadPoolExecutor(max_workers=segments) as pool:
            for pages in pool.map(segment, range(segments)):
                yield from pages

    # ---- batches ------------------------------------------------------------------------------------

    def batch_get(self, keys: Sequence[Item], projection: str | None = None) -> list[Item]:
        """Strongly consistent BatchGetItem, 100 keys per call, unprocessed keys sent again."""
        found: list[Item] = []

        def send(chunk: list[Item]) -> list[Item]:
            spec: dict[str, Any] = {"Keys": chunk, "ConsistentRead": True}
            if projection:
                spec["ProjectionExpression"] = projection
            response: dict[str, Any] = cast(dict[str, Any], self.call(self.client.batch_get_item,
                                                                      RequestItems={self.name: spec}))
            found.extend(response.get("Responses", {}).get(self.name, []))
            left: list[Item] = (response.get("UnprocessedKeys") or {}).get(self.name, {}).get("Keys", [])
            return left

        for start in range(0, len(keys), C.BATCH_GET_MAX_KEYS):
            retry_remaining(send, keys[start:start + C.BATCH_GET_MAX_KEYS],
                            "The table kept leaving keys unprocessed; retry the request.")
        return found

    def batch_write(self, puts: Sequence[Item] = (), deletes: Sequence[Item] = (),
                    deadline: float | None = None) -> None:
        """BatchWriteItem of puts (items) and deletes (keys), 25 per call, unprocessed writes sent
        again. With a deadline, it keeps trying until then instead of for a number of rounds."""
        requests = [{"PutRequest": {"Item": item}} for item in puts]
        requests += [{"DeleteRequest": {"Key": key}} for key in deletes]

        def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
            response: dict[str, Any] = cast(dict[str, Any], self.call(self.client.batch_write_item,
                                                                      RequestItems={self.name: chunk}))
            left: list[dict[str, Any]] = (response.get("UnprocessedItems") or {}).get(self.name, [])
            return left

        give_up = ("The write ran out of time; its checkpoint keeps its place." if deadline is not None
                   else "The table kept leaving writes unprocessed; retry the request.")
        for start in range(0, len(requests), C.BATCH_WRITE_MAX_ITEMS):
            retry_remaining(send, requests[start:start + C.BATCH_WRITE_MAX_ITEMS], give_up,
                            rounds=None if deadline is not None else C.UNPROCESSED_RETRIES, deadline=deadline)

    # ---- transactions -------------------------------------------------------------------------------

    def transact_write(self, operations: Sequence[dict[str, Any]]) -> list[str] | None:
        """One TransactWriteItems of up to 100 operations ({"Put": {"Item": ..., "ConditionExpression":
        ...}} or {"Delete": {...}}, TableName filled in). None when it was applied. When DynamoDB
        cancelled it, nothing was written and the answer is each operation's cancellation code:
        "ConditionalCheckFailed" for a condition that did not hold, "None" for an operation that was
        fine, "TransactionConflict" or "ThrottlingError" for one worth sending again."""
        if len(operations) > C.TRANSACT_MAX_ITEMS:
            raise ValueError(f"{len(operations)} operations; TransactWriteItems takes {C.TRANSACT_MAX_ITEMS}")
        items = [{op: {**spec, "TableName": self.name} for op, spec in operation.items()} for operation in operations]
        try:
            # The token makes botocore's own retry of a call whose answer was lost a no-op, not a second write.
            self.call(self.client.transact_write_items, TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
        except ClientError as error:
            if aws_errors.error_code(error) != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = cast(list[dict[str, Any]], error.response.get("CancellationReasons", []))
            codes = [str(r.get("Code", "None")) for r in reasons]
            return codes if len(codes) == len(items) else ["TransactionConflict"] * len(items)
        return None

    # ---- errors -------------------------------------------------------------------------------------

    @staticmethod
    def call(operation: Callable[..., R], **params: Any) -> R:
        """Call one client method; failures that outlived botocore's retries become a 503."""
        try:
            return operation(**params)
        except ClientError as error:
            if aws_errors.is_transient(error):
                raise Unavailable("The table is unavailable right now; retry the request.") from error
            raise
        except BotoCoreError as error:  # dropped connections, timeouts, endpoint unreachable
            raise Unavailable("The table is unreachable right now; retry the request.") from error


def item_size(item: Item) -> int:
    """DynamoDB's size of an item, the unit of its read and write capacity: attribute names plus
    values (strings in UTF-8 bytes, numbers about 1 byte per 2 digits + 1, others as their JSON)."""
    size = 0
    for name, value in item.items():
        (tag, raw), = value.items()
        size += len(name.encode())
        if tag == "S":
            size += len(raw.encode())
        elif tag == "N":
            size += (len(raw.strip("-").replace(".", "")) + 1) // 2 + 1
        else:
            size += len(json.dumps(raw, default=str))
    return size


def write_units(item: Item) -> int:
    """The write capacity units a plain write of `item` costs: 1 per KB, rounded up."""
    return -(-item_size(item) // 1024)


def parallel(function: Callable[[T], R], inputs: Sequence[T], workers: int = C.WRITE_CONCURRENCY) -> list[R]:
    """`function` over `inputs` on a small thread pool (one input: no pool), results in order."""
    if len(inputs) <= 1:
        return [function(value) for value in inputs]
    with ThreadPoolExecutor(max_workers=min(workers, len(inputs))) as pool:
        return list(pool.map(function, inputs))

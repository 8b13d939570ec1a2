"""DynamoDB storage of metric events: the key layout, idempotent writes and Query-only reads.

The table is handed in (a low-level DynamoDB client and its name), so the logic runs against any
endpoint: AWS, moto's server, or moto in-process.

Layout (see DESIGN.md, "Data model"):
  event        pk=M#<environment>#<service>  sk=<kind>#<timestamp>#<id>
               gsi1pk=<kind>#<environment>    gsi1sk=<timestamp>#<service>#<id>
  idempotency  pk=ID#<client id>              sk=ID   (content hash + the event's key)
  control      pk=_control                    sk=failover | replication-heartbeat | sweep-checkpoint |
                                                 health-state#<region> | health-sample#<region>#<time>
"""
from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import constants as C
from chalicelib.errors import IdConflict, InvalidNextToken, Unavailable
from chalicelib.models import SORT_KEY_TIME_FORMAT, AnyEvent, content_hash, format_timestamp

Item = dict[str, dict[str, Any]]  # a DynamoDB item in the low-level wire format
Key = dict[str, str]  # a plain key (attribute name -> string value), as carried in page cursors

# Cursor of one kind in a paged read: None = not started, DONE = exhausted, else the last key served.
DONE = "done"
Cursor = Key | str | None


def event_pk(environment: str, service: str) -> str:
    return f"{C.EVENT_PK_PREFIX}{environment}#{service}"


def gsi_pk(kind: str, environment: str) -> str:
    return f"{kind}#{environment}"


def version_now() -> int:
    """Item versions are microseconds since the epoch: monotonic per item, comparable across regions."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class PutResult:
    ids: list[str]
    created: int
    duplicates: int


@dataclass(frozen=True)
class EventQuery:
    """One GET /metrics query. Without a service it reads the cross-service index."""

    environment: str
    kinds: tuple[str, ...]
    service: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = C.DEFAULT_PAGE_SIZE

    def partition(self, kind: str) -> tuple[str | None, str, str]:
        """(index name, partition attribute, partition value) to Query for one kind."""
        if self.service is not None:
            return None, "pk", event_pk(self.environment, self.service)
        return C.GSI_NAME, "gsi1pk", gsi_pk(kind, self.environment)

    def key_names(self) -> tuple[str, ...]:
        return ("pk", "sk") if self.service is not None else ("pk", "sk", "gsi1pk", "gsi1sk")

    def fingerprint(self) -> str:
        parts = [self.environment, ",".join(self.kinds), self.service or "", _ts(self.since), _ts(self.until)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _ts(value: datetime | None) -> str:
    return format_timestamp(value) if value else ""


@dataclass
class _PendingWrite:
    index: int  # position in the request
    event: AnyEvent
    event_id: str
    digest: str
    item: Item

    @property
    def client_id(self) -> bool:
        return self.event.id is not None


@dataclass
class _Page:
    kind: str
    items: list[Item] = field(default_factory=list)
    exhausted: bool = False
    last_key: Key | None = None  # where DynamoDB stopped reading, when it stopped early


class MetricsStore:
    def __init__(self, client: Any, table_name: str, region: str) -> None:
        """`client` is a DynamoDB client (boto3.client("dynamodb", region_name=region))."""
        self._ddb = client
        self.table_name = table_name
        self.region = region

    # ---- writes ---------------------------------------------------------------------------------
    #
    # A client id is claimed by a conditional put of its idempotency record *before* the event is
    # written, and the record names the event's key. So a retry after a crash or a lost answer finds
    # the record, sees the same content hash, and re-writes the event if it never arrived; a
    # different hash is a 409. Events themselves go in with BatchWriteItem, 25 per call.

    def put_events(self, events: Sequence[AnyEvent], now: datetime) -> PutResult:
        """Store events idempotently. A conflicting id raises IdConflict and stores nothing."""
        ids, pending, duplicates = self._prepare(events, now)
        keyed = [w for w in pending if w.client_id]
        records = self._idempotency_records([w.event_id for w in keyed])
        _raise_on_conflicts([(w, records[w.event_id]) for w in keyed if w.event_id in records])
        repeats = [(w, records[w.event_id]) for w in keyed if w.event_id in records]
        fresh = [w for w in pending if not (w.client_id and w.event_id in records)]
        claimed, raced = self._claim_ids([w for w in fresh if w.client_id])
        repeats += raced
        to_write = [w.item for w in fresh if not w.client_id or w.event_id in claimed]
        to_write += self._lost_events(repeats, now)
        self._batch_put(to_write)
        return PutResult(ids=ids, created=len(to_write), duplicates=duplicates + len(pending) - len(to_write))

    def _prepare(self, events: Sequence[AnyEvent], now: datetime) -> tuple[list[str], list[_PendingWrite], int]:
        """Give every event its id and item; fold repeats of an id within the request."""
        ids: list[str] = []
        pending: list[_PendingWrite] = []
        seen: dict[str, _PendingWrite] = {}
        for index, event in enumerate(events):
            digest = content_hash(event)
            event_id = event.id or uuid.uuid4().hex
            ids.append(event_id)
            first = seen.get(event_id)
            if first is not None:
                if first.digest != digest:
                    raise IdConflict(
                        f"Events {first.index} and {index} share the id {event_id!r} but differ; nothing was stored.",
                        [{"field": f"events[{index}].id", "message": "repeats an id with different content"}],
                    )
                continue
            write = _PendingWrite(index, event, event_id, digest, self._event_item(event, event_id, digest, now))
            seen[event_id] = write
            pending.append(write)
        return ids, pending, len(events) - len(pending)

    def _event_item(self, event: AnyEvent, event_id: str, digest: str, now: datetime,
                    timestamp: datetime | None = None) -> Item:
        timestamp = timestamp or event.timestamp or now
        ts = format_timestamp(timestamp)
        body = event.model_copy(update={"id": event_id, "timestamp": timestamp}).model_dump(
            mode="json", exclude_none=True)
        pk, sk = event_pk(event.environment, event.service), f"{event.kind}#{ts}#{event_id}"
        item: Item = {
            "pk": {"S": pk},
            "sk": {"S": sk},
            "gsi1pk": {"S": gsi_pk(event.kind, event.environment)},
            "gsi1sk": {"S": f"{ts}#{event.service}#{event_id}"},
            "kind": {"S": event.kind},
            "service": {"S": event.service},
            "environment": {"S": event.environment},
            "timestamp": {"S": ts},
            "event_id": {"S": event_id},
            "body": {"S": json.dumps(body, separators=(",", ":"), sort_keys=True)},
            "content_hash": {"S": digest},
            "received_at": {"S": format_timestamp(now)},
        }
        return item | change_stamp(pk, sk, now, self.region)

    def _idempotency_records(self, event_ids: list[str]) -> dict[str, Item]:
        keys = [_record_key(i) for i in event_ids]
        found = self.batch_get(keys, f"pk, content_hash, event_pk, event_sk, {C.TOMBSTONE_ATTRIBUTE}")
        return {item["pk"]["S"][len(C.IDEMPOTENCY_PK_PREFIX):]: item for item in found if not is_tombstone(item)}

    def _claim_ids(self, writes: list[_PendingWrite]) -> tuple[set[str], list[tuple[_PendingWrite, Item]]]:
        """Conditionally create the idempotency records. Returns the ids claimed, and the writes that
        lost a race to an identical request (now repeats). A race lost to different content undoes
        this request's claims and raises IdConflict."""
        if not writes:
            return set(), []
        if len(writes) == 1:  # the common single-event post: no thread pool on the request path
            outcomes = [self._claim(writes[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(C.WRITE_CONCURRENCY, len(writes))) as pool:
                outcomes = list(pool.map(self._claim, writes))
        claimed = {w.event_id for w, record in zip(writes, outcomes, strict=True) if record is None}
        raced = [(w, record) for w, record in zip(writes, outcomes, strict=True) if record is not None]
        try:
            _raise_on_conflicts(raced)
        except IdConflict:
            self._release(claimed)
            raise
        return claimed, raced

    def _claim(self, write: _PendingWrite) -> Item | None:
        """None when the record was created; else the record that already holds the id."""
        key = _record_key(write.event_id)
        record: Item = {**key, "content_hash": {"S": write.digest}, "event_pk": write.item["pk"],
                        "event_sk": write.item["sk"]}
        record |= change_stamp(key["pk"]["S"], key["sk"]["S"], parse_sort_time(write.item["updated_at"]["S"]),
                               write.item["origin_region"]["S"])
        try:
            self.call("put_item", TableName=self.table_name, Item=record,
                       ConditionExpression="attribute_not_exists(pk)")
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        existing = self.call("get_item", TableName=self.table_name, Key=_record_key(write.event_id),
                              ConsistentRead=True).get("Item")
        return existing or self._claim(write)  # the holder vanished meanwhile: claim again

    def _release(self, event_ids: set[str]) -> None:
        for event_id in event_ids:
            self.call("delete_item", TableName=self.table_name, Key=_record_key(event_id))

    def _lost_events(self, repeats: list[tuple[_PendingWrite, Item]], now: datetime) -> list[Item]:
        """Events whose id was claimed earlier but whose item never arrived (a crash or a failed
        write between the two steps): rebuilt at the key the record names."""
        if not repeats:
            return []
        keys = [{"pk": record["event_pk"], "sk": record["event_sk"]} for _, record in repeats]
        present = {item["sk"]["S"] for item in self.batch_get(keys, f"pk, sk, {C.TOMBSTONE_ATTRIBUTE}")
                   if not is_tombstone(item)}
        lost = []
        for write, record in repeats:
            event_sk = record["event_sk"]["S"]
            if event_sk not in present:
                stamp = parse_sort_time(event_sk.split("#")[1])
                lost.append(self._event_item(write.event, write.event_id, write.digest, now, timestamp=stamp))
        return lost

    def batch_get(self, keys: list[Item], projection: str | None = None) -> list[Item]:
        """Strongly consistent BatchGetItem, 100 keys per call, unprocessed keys retried."""
        found: list[Item] = []
        for start in range(0, len(keys), C.BATCH_GET_MAX_KEYS):
            spec: dict[str, Any] = {"Keys": keys[start:start + C.BATCH_GET_MAX_KEYS], "ConsistentRead": True}
            if projection:
                spec["ProjectionExpression"] = projection
            request: dict[str, Any] = {self.table_name: spec}
            for attempt in range(C.UNPROCESSED_RETRIES + 1):
                response = self.call("batch_get_item", RequestItems=request)
                found += response.get("Responses", {}).get(self.table_name, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                backoff(attempt)
            else:
                raise Unavailable("The table kept leaving keys unprocessed; retry the request.")
        return found

    def _batch_put(self, items: list[Item]) -> None:
        """BatchWriteItem in calls of 25, retrying UnprocessedItems with backoff and jitter."""
        for start in range(0, len(items), C.BATCH_WRITE_MAX_ITEMS):
            requests = [{"PutRequest": {"Item": item}} for item in items[start:start + C.BATCH_WRITE_MAX_ITEMS]]
            for attempt in range(C.UNPROCESSED_RETRIES + 1):
                response = self.call("batch_write_item", RequestItems={self.table_name: requests})
                requests = (response.get("UnprocessedItems") or {}).get(self.table_name, [])
                if not requests:
                    break
                backoff(attempt)
            else:
                raise Unavailable("The table kept leaving writes unprocessed; retry the request.")

    # ---- reads ----------------------------------------------------------------------------------

    def list_events(self, query: EventQuery,
                    cursors: Mapping[str, Cursor]) -> tuple[list[dict[str, Any]], dict[str, Cursor]]:
        """One page of events, newest first, merged across kinds. Issues one Query per unfinished kind."""
        pages: list[_Page] = []
        for kind in query.kinds:
            cursor = cursors.get(kind)
            if cursor == DONE:
                continue
            pages.append(self._query_kind(query, kind, cursor if isinstance(cursor, dict) else None))
        new_cursors: dict[str, Cursor] = {k: v for k, v in cursors.items() if v == DONE}
        served: list[dict[str, Any]] = []
        streams = [((p.items[i]["timestamp"]["S"], p.kind, -i), p, i) for p in pages for i in range(len(p.items))]
        remaining = {p.kind: len(p.items) for p in pages}
        for _, page, i in sorted(streams, key=lambda s: s[0], reverse=True):
            if len(served) >= query.limit:
                break
            if any(remaining[p.kind] == 0 and not p.exhausted for p in pages):
                break  # a kind ran out of fetched items but has more: its next item may be newer
            item = page.items[i]
            served.append(_public_event(item))
            remaining[page.kind] -= 1
            new_cursors[page.kind] = {name: item[name]["S"] for name in query.key_names()}
        for page in pages:
            if remaining[page.kind] == 0 and page.exhausted:
                new_cursors[page.kind] = DONE
            elif not page.items and page.last_key:
                new_cursors[page.kind] = page.last_key  # every item read was filtered out: move past them
            elif page.kind not in new_cursors:
                new_cursors[page.kind] = cursors.get(page.kind)
        return served, new_cursors

    def _query_kind(self, query: EventQuery, kind: str, start: Key | None) -> _Page:
        index, attr, value = query.partition(kind)
        low, high = _sort_bounds(query, kind)
        sort_attr = "sk" if index is None else "gsi1sk"
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#p": attr, "#s": sort_attr},
            "ExpressionAttributeValues": {":p": {"S": value}, ":lo": {"S": low}, ":hi": {"S": high}},
            "FilterExpression": _LIVE,
            "ScanIndexForward": False,
            "Limit": query.limit,
        }
        if index is not None:
            params["IndexName"] = index
        if start:
            params["ExclusiveStartKey"] = {name: {"S": v} for name, v in start.items()}
        try:
            response = self.call("query", **params)
        except ClientError as error:
            if start and error.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidNextToken("next_token is not a token this API issued.") from None
            raise
        items = response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        return _Page(kind, items, exhausted=last is None,
                     last_key={name: value["S"] for name, value in last.items()} if last else None)

    def events_between(self, environment: str, service: str, kind: str,
                       since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """Every event of one kind and service in [since, until], oldest first, across all Query pages."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":p": {"S": event_pk(environment, service)},
                ":lo": {"S": f"{kind}#{format_timestamp(since)}"},
                ":hi": {"S": f"{kind}#{format_timestamp(until)}#{C.KEY_UPPER_SENTINEL}"},
            },
            "ProjectionExpression": "body",
            "FilterExpression": _LIVE,
        }
        while True:
            response = self.call("query", **params)
            for item in response.get("Items", []):
                yield json.loads(item["body"]["S"])
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def services_with(self, kind: str, environment: str, since: datetime, until: datetime) -> list[str]:
        """The services with events of one kind in [since, until], from the cross-service index
        (Query pages of keys only)."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": C.GSI_NAME,
            "KeyConditionExpression": "gsi1pk = :p AND gsi1sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":p": {"S": gsi_pk(kind, environment)},
                ":lo": {"S": format_timestamp(since)},
                ":hi": {"S": f"{format_timestamp(until)}#{C.KEY_UPPER_SENTINEL}"},
            },
            "ProjectionExpression": "gsi1sk",
            "FilterExpression": _LIVE,
        }
        services: set[str] = set()
        while True:
            response = self.call("query", **params)
            services.update(item["gsi1sk"]["S"].split("#")[1] for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(services)
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_control(self, sort_key: str) -> dict[str, Any] | None:
        """A per-region control item (failover state, heartbeat, last health sample) as plain values."""
        response = self.call("get_item", TableName=self.table_name, ConsistentRead=True,
                              Key={"pk": {"S": C.CONTROL_PK}, "sk": {"S": sort_key}})
        item = response.get("Item")
        return None if item is None else {name: _plain(value) for name, value in item.items()}

    def put_control(self, sort_key: str, values: Mapping[str, str | int | float]) -> None:
        """Write a per-region control item from plain values (never replicated)."""
        item: Item = {"pk": {"S": C.CONTROL_PK}, "sk": {"S": sort_key}}
        for name, value in values.items():
            item[name] = {"S": value} if isinstance(value, str) else {"N": str(value)}
        self.call("put_item", TableName=self.table_name, Item=item)

    def table_status(self) -> str:
        return str(self.call("describe_table", TableName=self.table_name)["Table"]["TableStatus"])

    # ---- plumbing -------------------------------------------------------------------------------

    def call(self, operation: str, **params: Any) -> Any:
        """Call DynamoDB; failures that outlived botocore's retries become a 503 for the client."""
        try:
            return getattr(self._ddb, operation)(**params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _RETRYABLE_CODES or status >= 500:
                raise Unavailable("The table is unavailable right now; retry the request.") from error
            raise
        except BotoCoreError as error:  # dropped connections, timeouts, endpoint unreachable
            raise Unavailable("The table is unreachable right now; retry the request.") from error


_LIVE = f"attribute_not_exists({C.TOMBSTONE_ATTRIBUTE})"  # replicas keep deletes as tombstones


def change_stamp(pk: str, sk: str, now: datetime, region: str) -> Item:
    """What every replicated item carries: its version, when and where it was written, and its
    place in the change index the replication sweep reads (one partition per hour)."""
    updated_at = format_timestamp(now)
    return {
        "version": {"N": str(version_now())},
        "updated_at": {"S": updated_at},
        "origin_region": {"S": region},
        C.CHANGE_BUCKET_ATTRIBUTE: {"S": change_bucket(updated_at)},
        C.CHANGE_KEY_ATTRIBUTE: {"S": f"{updated_at}#{pk}#{sk}"},
    }


def change_bucket(updated_at: str) -> str:
    return updated_at[:C.CHANGE_BUCKET_LENGTH]


def is_tombstone(item: Item) -> bool:
    return C.TOMBSTONE_ATTRIBUTE in item


def parse_sort_time(value: str) -> datetime:
    return datetime.strptime(value, SORT_KEY_TIME_FORMAT).replace(tzinfo=timezone.utc)


_RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "LimitExceededException",
})


def _record_key(event_id: str) -> Item:
    return {"pk": {"S": C.IDEMPOTENCY_PK_PREFIX + event_id}, "sk": {"S": C.IDEMPOTENCY_SK}}


def _raise_on_conflicts(found: list[tuple[_PendingWrite, Item]]) -> None:
    conflicts = [w for w, record in found if record["content_hash"]["S"] != w.digest]
    if conflicts:
        raise IdConflict(
            "An id in this request was already stored with different content; nothing was stored.",
            [{"field": f"events[{w.index}].id", "message": f"id {w.event_id!r} exists with different content"}
             for w in conflicts],
        )


def _sort_bounds(query: EventQuery, kind: str) -> tuple[str, str]:
    low = format_timestamp(query.since) if query.since else "0"
    high = (format_timestamp(query.until) if query.until else "9") + "#" + C.KEY_UPPER_SENTINEL
    if query.service is not None:
        return f"{kind}#{low}", f"{kind}#{high}"
    return low, high


def _public_event(item: Item) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(item["body"]["S"])
    event["received_at"] = item["received_at"]["S"]
    return event


def _plain(value: dict[str, Any]) -> Any:
    (tag, raw), = value.items()
    if tag == "N":
        number = float(raw)
        return int(number) if number.is_integer() else number
    return raw


def backoff(attempt: int) -> int:
    """Sleep with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""
    time.sleep(random.uniform(0, min(1.0, 0.05 * 2 ** attempt)))
    return attempt + 1


def utc_now() -> datetime:
    return datetime.now(timezone.utc)

"""The event store: idempotent writes of metric events and Query-only reads of them.

The store is handed its table (chalicelib.dynamodb.Table), so the logic runs against any endpoint:
AWS, moto's server, or moto in-process. Keys: chalicelib.keys.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws_errors
from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Item, Table, parallel
from chalicelib.errors import IdConflict, InvalidNextToken
from chalicelib.models import AnyEvent, content_hash
from chalicelib.times import format_time, parse_time

Key = dict[str, str]  # a plain key (attribute name -> string value), as carried in page cursors

# Cursor of one kind in a paged read: None = not started, DONE = exhausted, else the last key served.
DONE = "done"
Cursor = Key | str | None


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
            return None, "pk", K.event_pk(self.environment, self.service)
        return C.GSI_NAME, "gsi1pk", K.gsi_pk(kind, self.environment)

    def key_names(self) -> tuple[str, ...]:
        return ("pk", "sk") if self.service is not None else ("pk", "sk", "gsi1pk", "gsi1sk")

    def fingerprint(self) -> str:
        parts = [self.environment, ",".join(self.kinds), self.service or "", _ts(self.since), _ts(self.until)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _ts(value: datetime | None) -> str:
    return format_time(value) if value else ""


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


class EventStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    @property
    def region(self) -> str:
        return self.table.region

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
        self.table.batch_write(to_write)
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
        ts = format_time(timestamp)
        body = event.model_copy(update={"id": event_id, "timestamp": timestamp}).model_dump(
            mode="json", exclude_none=True)
        pk, sk = K.event_pk(event.environment, event.service), K.event_sk(event.kind, ts, event_id)
        item: Item = {
            "pk": {"S": pk},
            "sk": {"S": sk},
            "gsi1pk": {"S": K.gsi_pk(event.kind, event.environment)},
            "gsi1sk": {"S": K.gsi_sk(ts, event.service, event_id)},
            "kind": {"S": event.kind},
            "service": {"S": event.service},
            "environment": {"S": event.environment},
            "timestamp": {"S": ts},
            "event_id": {"S": event_id},
            "body": {"S": json.dumps(body, separators=(",", ":"), sort_keys=True)},
            "content_hash": {"S": digest},
            "received_at": {"S": format_time(now)},
        }
        return item | K.change_stamp(pk, sk, now, self.region)

    def _idempotency_records(self, event_ids: list[str]) -> dict[str, Item]:
        found = self.table.batch_get([K.idempotency_key(i) for i in event_ids],
                                     f"pk, content_hash, event_pk, event_sk, {C.TOMBSTONE_ATTRIBUTE}")
        return {K.event_id_of_record(item): item for item in found if not K.is_tombstone(item)}

    def _claim_ids(self, writes: list[_PendingWrite]) -> tuple[set[str], list[tuple[_PendingWrite, Item]]]:
        """Conditionally create the idempotency records. Returns the ids claimed, and the writes that
        lost a race to an identical request (now repeats). A race lost to different content undoes
        this request's claims and raises IdConflict."""
        outcomes = parallel(self._claim, writes)  # the common single-event post runs without a pool
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
        key = K.idempotency_key(write.event_id)
        record: Item = {**key, "content_hash": {"S": write.digest}, "event_pk": write.item["pk"],
                        "event_sk": write.item["sk"]}
        record |= K.change_stamp(key["pk"]["S"], key["sk"]["S"], parse_time(write.item["updated_at"]["S"]),
                                 write.item["origin_region"]["S"])
        if self.table.put(record, condition="attribute_not_exists(pk)"):
            return None
        existing = self.table.get(key)
        return existing or self._claim(write)  # the holder vanished meanwhile: claim again

    def _release(self, event_ids: set[str]) -> None:
        for event_id in event_ids:
            self.table.delete(K.idempotency_key(event_id))

    def _lost_events(self, repeats: list[tuple[_PendingWrite, Item]], now: datetime) -> list[Item]:
        """Events whose id was claimed earlier but whose item never arrived (a crash or a failed
        write between the two steps): rebuilt at the key the record names."""
        if not repeats:
            return []
        keys = [{"pk": record["event_pk"], "sk": record["event_sk"]} for _, record in repeats]
        present = {item["sk"]["S"] for item in self.table.batch_get(keys, f"pk, sk, {C.TOMBSTONE_ATTRIBUTE}")
                   if not K.is_tombstone(item)}
        lost = []
        for write, record in repeats:
            event_sk = record["event_sk"]["S"]
            if event_sk not in present:
                lost.append(self._event_item(write.event, write.event_id, write.digest, now,
                                             timestamp=K.time_of_event_sk(event_sk)))
        return lost

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
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#p": attr, "#s": sort_attr},
            "ExpressionAttributeValues": {":p": {"S": value}, ":lo": {"S": low}, ":hi": {"S": high}},
            "FilterExpression": K.LIVE,
            "ScanIndexForward": False,
            "Limit": query.limit,
        }
        if index is not None:
            params["IndexName"] = index
        if start:
            params["ExclusiveStartKey"] = {name: {"S": v} for name, v in start.items()}
        try:
            page = self.table.query(**params)
        except ClientError as error:
            if start and aws_errors.error_code(error) == "ValidationException":
                raise InvalidNextToken("next_token is not a token this API issued.") from None
            raise
        last = page.last_key
        return _Page(kind, page.items, exhausted=last is None,
                     last_key={name: value["S"] for name, value in last.items()} if last else None)

    def events_between(self, environment: str, service: str, kind: str,
                       since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """Every event of one kind and service in [since, until], oldest first, across all Query pages."""
        for page in self.table.query_pages(
            KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":p": {"S": K.event_pk(environment, service)},
                ":lo": {"S": f"{kind}#{format_time(since)}"},
                ":hi": {"S": f"{kind}#{format_time(until)}#{C.KEY_UPPER_SENTINEL}"},
            },
            ProjectionExpression="body",
            FilterExpression=K.LIVE,
        ):
            for item in page.items:
                yield json.loads(item["body"]["S"])

    def services_with(self, kind: str, environment: str, since: datetime, until: datetime) -> list[str]:
        """The services with events of one kind in [since, until], from the cross-service index
        (Query pages of keys only)."""
        services: set[str] = set()
        for page in self.table.query_pages(
            IndexName=C.GSI_NAME,
            KeyConditionExpression="gsi1pk = :p AND gsi1sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":p": {"S": K.gsi_pk(kind, environment)},
                ":lo": {"S": format_time(since)},
                ":hi": {"S": f"{format_time(until)}#{C.KEY_UPPER_SENTINEL}"},
            },
            ProjectionExpression="gsi1sk",
            FilterExpression=K.LIVE,
        ):
            services.update(K.service_of_gsi_sk(item["gsi1sk"]["S"]) for item in page.items)
        return sorted(services)


def _raise_on_conflicts(found: list[tuple[_PendingWrite, Item]]) -> None:
    conflicts = [w for w, record in found if record["content_hash"]["S"] != w.digest]
    if conflicts:
        raise IdConflict(
            "An id in this request was already stored with different content; nothing was stored.",
            [{"field": f"events[{w.index}].id", "message": f"id {w.event_id!r} exists with different content"}
             for w in conflicts],
        )


def _sort_bounds(query: EventQuery, kind: str) -> tuple[str, str]:
    low = format_time(query.since) if query.since else "0"
    high = (format_time(query.until) if query.until else "9") + "#" + C.KEY_UPPER_SENTINEL
    if query.service is not None:
        return f"{kind}#{low}", f"{kind}#{high}"
    return low, high


def _public_event(item: Item) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(item["body"]["S"])
    event["received_at"] = item["received_at"]["S"]
    return event

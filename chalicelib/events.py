"""The event store: events written as revisions of their identities, and Query-only reads of them.

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

from chalicelib import aws_errors, lifecycle
from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dynamodb import Item, Table, backoff, parallel, retry_remaining
from chalicelib.errors import InvalidNextToken, PreconditionFailed, Unavailable
from chalicelib.models import AnyEvent, content_hash
from chalicelib.revisions import Held, Revision, Verdict, judge
from chalicelib.times import format_time

Key = dict[str, str]  # a plain key (attribute name -> string value), as carried in page cursors

# Cursor of one kind in a paged read: None = not started, DONE = exhausted, else the last key served.
DONE = "done"
Cursor = Key | str | None


@dataclass(frozen=True)
class PutResult:
    """What a POST came to: the events' ids in request order, and what each revision did."""

    ids: list[str]
    counts: dict[Verdict, int]

    def body(self) -> dict[str, Any]:
        return {"ids": self.ids, **{verdict.value: self.counts.get(verdict, 0) for verdict in Verdict}}


@dataclass(frozen=True)
class Identity:
    """What identifies an event: the same id in another environment, service or kind is another event."""

    environment: str
    service: str
    kind: str
    event_id: str

    @property
    def key(self) -> Item:
        return K.identity_key(self.environment, self.service, self.kind, self.event_id)

    @classmethod
    def of(cls, event: AnyEvent, event_id: str) -> Identity:
        return cls(event.environment, event.service, event.kind, event_id)


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


@dataclass(frozen=True)
class _Posted:
    index: int  # position in the request
    event: AnyEvent
    revision: Revision


@dataclass
class _Group:
    """The revisions of one identity in one request, in request order."""

    identity: Identity
    posted: list[_Posted]
    generated: bool  # the service gave it its id: nothing can be stored under it yet


@dataclass
class _Plan:
    """A group decided against what the store held: a verdict per revision, and the write (if any)."""

    group: _Group
    verdicts: list[Verdict]
    operations: list[dict[str, Any]]
    held: Item | None


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
    # Every event has an identity record in its partition (sk=ID#<kind>#<id>) holding its current
    # revision: the key of its event item, its content hash, its revision time and count. A post reads
    # the records of the identities it names (one BatchGetItem), decides each revision
    # (chalicelib.revisions), and writes the winners with TransactWriteItems: the record, conditional
    # on the version it read, and the event item, at once, so that neither is ever without the other
    # and a concurrent writer of the same identity makes one of the two re-read and decide again.

    def put_events(self, events: Sequence[AnyEvent], now: datetime, create_only: bool = False) -> PutResult:
        """Store events as revisions of their identities. With `create_only`, an identity that exists
        raises PreconditionFailed and nothing in the request is stored."""
        received = format_time(now)
        ids: list[str] = []
        groups: dict[Identity, _Group] = {}
        for index, event in enumerate(events):
            event_id = event.id or uuid.uuid4().hex
            ids.append(event_id)
            identity = Identity.of(event, event_id)
            revision = Revision(format_time(event.updated_at) if event.updated_at else received,
                                lifecycle.progress(dict(event)), content_hash(event))
            group = groups.setdefault(identity, _Group(identity, [], generated=event.id is None))
            group.posted.append(_Posted(index, event, revision))
        held = self._held([g.identity for g in groups.values() if not g.generated])
        plans = [self._plan(group, held.get(group.identity), now) for group in groups.values()]
        if create_only:
            _refuse_existing([p for p in plans if p.held is not None and not K.is_tombstone(p.held)])
        self._write(plans, now, create_only)
        counts: dict[Verdict, int] = {}
        for plan in plans:
            for verdict in plan.verdicts:
                counts[verdict] = counts.get(verdict, 0) + 1
        return PutResult(ids, counts)

    def _held(self, identities: Sequence[Identity]) -> dict[Identity, Item]:
        """The identity records the store holds, tombstones included (a delete is a revision too)."""
        by_key = {K.key_tuple(i.key): i for i in identities}
        found = self.table.batch_get([i.key for i in identities])
        return {by_key[K.key_tuple(item)]: item for item in found}

    def _plan(self, group: _Group, held: Item | None, now: datetime) -> _Plan:
        """Apply the group's revisions in request order to what the store holds, and say what to
        write: nothing when no revision wins, else the record and event item of the last winner."""
        current = _held_revision(held)
        verdicts: list[Verdict] = []
        winner: _Posted | None = None
        applied = 0
        for posted in group.posted:
            verdict = judge(posted.revision, current)
            verdicts.append(verdict)
            if verdict.applies:
                winner, current = posted, Held(posted.revision)
                applied = 1 if verdict is Verdict.CREATED else applied + 1
        if winner is None:
            return _Plan(group, verdicts, [], held)
        return _Plan(group, verdicts, self._operations(group.identity, winner, held, applied, now), held)

    def _operations(self, identity: Identity, winner: _Posted, held: Item | None, applied: int,
                    now: datetime) -> list[dict[str, Any]]:
        live = held if held is not None and not K.is_tombstone(held) else None
        version = K.next_version(K.version_of(held))
        received = format_time(now)
        if live is not None and winner.event.timestamp is None:
            timestamp = K.time_of_event_sk(live["event_sk"]["S"])  # an update keeps the event's time
        else:
            timestamp = winner.event.timestamp or now
        revision = int(live["revision"]["N"]) + applied if live is not None else applied
        first_received = live["first_received_at"]["S"] if live is not None else received
        event_item = self._event_item(winner.event, identity.event_id, timestamp, now, version,
                                      revision, first_received)
        record_key = identity.key
        record = self._record(identity, event_item, winner.revision, revision, now)
        if held is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {"ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": {"N": str(K.version_of(held))}}}
        operations: list[dict[str, Any]] = [{"Put": {"Item": record, **condition}}, {"Put": {"Item": event_item}}]
        if live is not None and live["event_sk"]["S"] != event_item["sk"]["S"]:  # the event moved in time
            old_key = K.key(record_key["pk"]["S"], live["event_sk"]["S"])
            operations.append({"Put": {"Item": K.tombstone(old_key, version, now, self.region)}})
        return operations

    def _record(self, identity: Identity, event_item: Item, revision: Revision, count: int, now: datetime) -> Item:
        """The identity record of an event item: where it is, and the revision it holds."""
        key = identity.key
        return {
            **key, "kind": {"S": identity.kind}, "event_id": {"S": identity.event_id},
            "event_sk": event_item["sk"], "content_hash": {"S": revision.digest},
            "revision": {"N": str(count)}, "revision_at": {"S": revision.at}, "progress": {"N": str(revision.progress)},
            "first_received_at": event_item["first_received_at"], "received_at": {"S": format_time(now)},
        } | K.change_stamp(key["pk"]["S"], key["sk"]["S"], now, self.region, K.version_of(event_item))

    def adopt(self, event_item: Item, digest: str, now: datetime) -> bool:
        """Give an event item written before identity records (release 0.1.0) its record, as its
        first revision, received when it was; `digest` is the content hash its post had. False when
        the identity has a record already (`dr migrate` runs again, or the event was posted since)."""
        identity = Identity(event_item["environment"]["S"], event_item["service"]["S"], event_item["kind"]["S"],
                            event_item["event_id"]["S"])
        received = event_item["received_at"]["S"]
        body = json.loads(event_item["body"]["S"])
        first = {**event_item, "first_received_at": {"S": received},
                 "version": {"N": str(K.next_version(K.version_of(event_item)))}}
        record = self._record(identity, first, Revision(received, lifecycle.progress(body), digest), 1, now)
        return self.table.put(record, condition="attribute_not_exists(pk)")

    def _write(self, plans: list[_Plan], now: datetime, create_only: bool) -> None:
        """Send the plans' writes in transactions of up to 100 operations. A plan whose condition
        failed lost a race for its identity: it is decided again on a fresh read, and the others in
        its transaction are sent again without it."""
        written: list[_Plan] = []
        lost_races = 0

        def send(pending: list[_Plan]) -> list[_Plan]:
            nonlocal lost_races
            chunks = _transactions(pending)
            outcomes = parallel(lambda chunk: self.table.transact_write(
                [op for plan in chunk for op in plan.operations]), chunks)
            again: list[_Plan] = []
            raced: list[_Plan] = []
            for chunk, codes in zip(chunks, outcomes, strict=True):
                if codes is None:
                    written.extend(chunk)
                    continue
                position = 0
                for plan in chunk:
                    mine = codes[position:position + len(plan.operations)]
                    position += len(plan.operations)
                    (raced if aws_errors.TRANSACT_CONDITION_FAILED in mine else again).append(plan)
            if raced:
                lost_races += 1
                if lost_races > C.REVISION_ROUNDS:
                    raise Unavailable("Writers kept racing for the same events; retry the request.")
                held = self._held([p.group.identity for p in raced])
                landed = [p for p in raced if _wrote(p.operations[0], held.get(p.group.identity))]
                written.extend(landed)  # an earlier attempt was applied and its answer lost
                raced = [p for p in raced if p not in landed]
                replanned = [self._plan(p.group, held.get(p.group.identity), now) for p in raced]
                existing = [p for p in replanned if p.held is not None and not K.is_tombstone(p.held)]
                if create_only and existing:
                    self._undo(written, now)
                    _refuse_existing(existing)
                for old, new in zip(raced, replanned, strict=True):
                    plans[plans.index(old)] = new
                again += [p for p in replanned if p.operations]
            return again

        try:
            retry_remaining(send, [p for p in plans if p.operations],
                            "The table kept cancelling the write; retry the request.")
        except Unavailable:
            if create_only:
                self._undo(written, now)
            raise

    def _undo(self, written: list[_Plan], now: datetime) -> None:
        """Take back what a create-only request wrote before it met an identity that exists."""
        for plan in written:
            record = plan.operations[0]["Put"]["Item"]
            version = K.version_of(record)
            undo = [{"Put": {"Item": K.tombstone(K.key_of(op["Put"]["Item"]), K.next_version(version), now,
                                                 self.region),
                             "ConditionExpression": "version = :v",
                             "ExpressionAttributeValues": {":v": {"N": str(version)}}}}
                    for op in plan.operations if not K.is_tombstone(op["Put"]["Item"])]
            self.table.transact_write(undo)

    def _event_item(self, event: AnyEvent, event_id: str, timestamp: datetime, now: datetime, version: int,
                    revision: int, first_received: str) -> Item:
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
            "received_at": {"S": format_time(now)},
            "first_received_at": {"S": first_received},
            "revision": {"N": str(revision)},
        }
        return item | K.change_stamp(pk, sk, now, self.region, version)

    # ---- one event by its identity ------------------------------------------------------------------

    def get_event(self, identity: Identity) -> dict[str, Any] | None:
        """The current revision of one event (None when there is none, or it was deleted)."""
        record = self.table.get(identity.key)
        if record is None or K.is_tombstone(record):
            return None
        item = self.table.get(K.key(record["pk"]["S"], record["event_sk"]["S"]))
        return _public_event(item) if item is not None and not K.is_tombstone(item) else None

    def delete_event(self, identity: Identity, now: datetime) -> bool:
        """Delete one event: its record and its event item become tombstones, which replicate like
        any write. False when there is no such event."""
        for _ in range(C.REVISION_ROUNDS):
            record = self.table.get(identity.key)
            if record is None or K.is_tombstone(record):
                return False
            version = K.next_version(K.version_of(record))
            kept = {name: record[name] for name in ("kind", "event_id", "event_sk") if name in record}
            gone: Item = K.tombstone(identity.key, version, now, self.region,
                                     revision_at={"S": format_time(now)}, **kept)
            codes = self.table.transact_write([
                {"Put": {"Item": gone, "ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": {"N": str(K.version_of(record))}}}},
                {"Put": {"Item": K.tombstone(K.key(record["pk"]["S"], record["event_sk"]["S"]), version, now,
                                             self.region)}},
            ])
            if codes is None:
                return True
            if aws_errors.TRANSACT_CONDITION_FAILED not in codes:
                backoff(0)
            elif _wrote({"Put": {"Item": gone}}, self.table.get(identity.key)):
                return True  # an earlier attempt was applied and its answer lost
        raise Unavailable("The event kept changing while it was being deleted; retry the request.")

    def live_ids(self, environment: str, service: str, kind: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these ids name a stored, undeleted event of one service and kind."""
        identities = [Identity(environment, service, kind, i) for i in event_ids]
        return {identity.event_id for identity, record in self._held(identities).items()
                if not K.is_tombstone(record)}

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


def _held_revision(record: Item | None) -> Held | None:
    if record is None:
        return None
    if K.is_tombstone(record):
        return Held(Revision(record["revision_at"]["S"], 0, ""), deleted=True) if "revision_at" in record else None
    return Held(Revision(record["revision_at"]["S"], int(record["progress"]["N"]), record["content_hash"]["S"]))


def _wrote(operation: dict[str, Any], held: Item | None) -> bool:
    """Whether the store holds what this put wrote: a transaction whose condition failed because an
    earlier attempt of it was applied, its answer lost (every write has its own version)."""
    return held is not None and K.version_of(held) == K.version_of(operation["Put"]["Item"])


def _transactions(plans: list[_Plan]) -> list[list[_Plan]]:
    """Plans packed in order into transactions of at most TRANSACT_MAX_ITEMS operations."""
    chunks: list[list[_Plan]] = []
    size = C.TRANSACT_MAX_ITEMS
    for plan in plans:
        if size + len(plan.operations) > C.TRANSACT_MAX_ITEMS:
            chunks.append([])
            size = 0
        chunks[-1].append(plan)
        size += len(plan.operations)
    return chunks


def _refuse_existing(existing: list[_Plan]) -> None:
    if existing:
        raise PreconditionFailed(
            "If-None-Match: * asks to create only, and an event in this request exists; nothing was stored.",
            [{"field": f"events[{p.group.posted[0].index}].id",
              "message": f"{p.group.identity.kind} {p.group.identity.event_id!r} of {p.group.identity.service!r} "
                         "exists", "type": "exists"} for p in existing],
        )


def _sort_bounds(query: EventQuery, kind: str) -> tuple[str, str]:
    low = format_time(query.since) if query.since else "0"
    high = (format_time(query.until) if query.until else "9") + "#" + C.KEY_UPPER_SENTINEL
    if query.service is not None:
        return f"{kind}#{low}", f"{kind}#{high}"
    return low, high


def _public_event(item: Item) -> dict[str, Any]:
    """A stored event as the API shows it: its body, when this revision and the first one arrived,
    and how many revisions it has had (items from before revisions count as the first)."""
    event: dict[str, Any] = json.loads(item["body"]["S"])
    event["received_at"] = item["received_at"]["S"]
    event["first_received_at"] = item.get("first_received_at", item["received_at"])["S"]
    event["revision"] = int(item["revision"]["N"]) if "revision" in item else 1
    return event

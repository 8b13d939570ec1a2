"""Daily rollups: what DORA's metrics read of each deployment and incident, kept per service,
environment, kind and day, so that a summary or a trend reads a few items per day instead of every
event (docs/data-model.md#daily-rollups).

A rollup part (sk=rollup#<kind>#<day>#<n>, in the event partition) holds one entry per event of
that day: the fields chalicelib.dora.INPUTS names, and the event item's version. A day's entries go
into its newest part until it holds ROLLUP_PART_BYTES, then into a new one (000, 001...), so a
write rewrites one small item and a read of 30 days reads 30 items for a quiet service and a few
per day for a busy one. An entry is keyed by its event's sort key, so:
- the stream handler sets an event's entry from the stream record's new image, and
  removes it when the event is deleted (a tombstone) or moves to another time (the old key's
  tombstone, in the same transaction as the new key);
- a record delivered again finds its entry as it would make it, and an entry is never replaced by an
  older version of its event (a removed one leaves a marker with its version), so redelivery, in
  order or not, and retries change nothing;
- the parts of a day are read, changed in memory, and put back conditionally on the version read:
  two writers of one part (two stream shards) make one of them read again.

Each region keeps its own rollups from its own table's stream: the active region from the writes it
takes, the standby from the writes replication brings it (so it holds whole rollups when it takes
over, whichever way an event reached it). They are never replicated and carry no change stamp,
only a version for their conditional writes. Medians stay exact: the entries are the values, not a
digest of them.

The state item (pk=_rollups, sk=state, per region) says from when the rollups are whole:
`complete_from`. The first stream batch that maintains them writes it as that moment plus MAX_FUTURE_SKEW_SECONDS (an
event written before then has a timestamp before that), and `dr rollups --rebuild` (which computes
every day again from the events) sets it to the beginning. A read whose window starts before
`complete_from` reads the events instead, so an upgrade never shows a summary without its history.
"""
from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.dora import INPUTS
from chalicelib.dynamodb import Item, Table, parallel, retry_remaining, write_units
from chalicelib.events import EventStore
from chalicelib.times import format_time

BEGINNING = ""  # complete_from after a rebuild: every window is whole


class EventSource(Protocol):
    """What chalicelib.summary reads the metrics' inputs from: the events, or their rollups."""

    def events_between(self, environment: str, service: str, kind: str,
                       since: datetime, until: datetime) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class EntryChange:
    """An event's entry set (entry) or removed (None), from one stream record or a rebuild."""

    pk: str
    event_sk: str
    entry: dict[str, Any] | None
    version: int

    @property
    def kind(self) -> str:
        return K.kind_of_event_sk(self.event_sk)

    @property
    def day(self) -> str:
        return _time_part(self.event_sk)[:10]


def _time_part(event_sk: str) -> str:
    return event_sk.split("#", 2)[1]


def entry_of(kind: str, body: dict[str, Any], version: int) -> dict[str, Any]:
    """An event's rollup entry: the fields the metrics read, and the version of its event item."""
    return {name: body[name] for name in INPUTS[kind] if name in body} | {"v": version}


def is_rolled_up(item: Item) -> bool:
    """An event item of a kind the rollups keep."""
    return K.is_event(item) and K.kind_of_event_sk(item["sk"]["S"]) in C.ROLLUP_KINDS


def change_of(item_key: Item, image: Item | None) -> EntryChange | None:
    """The entry change an event item's new state makes: set from a live image, removed for a
    tombstone or no image; None for an item that is not a rolled-up event."""
    if not is_rolled_up(item_key):
        return None
    pk, sk = K.key_tuple(item_key)
    if image is None or K.is_tombstone(image) or "body" not in image:
        return EntryChange(pk, sk, None, K.version_of(image))
    version = K.version_of(image)
    return EntryChange(pk, sk, entry_of(K.kind_of_event_sk(sk), json.loads(image["body"]["S"]), version), version)


def changes_from_stream(records: Sequence[dict[str, Any]]) -> list[EntryChange]:
    """The entry changes a stream batch makes, in order (each record's new image, or its absence)."""
    changes = []
    for record in records:
        data = record["dynamodb"]
        change = change_of({"pk": data["Keys"]["pk"], "sk": data["Keys"]["sk"]}, data.get("NewImage"))
        if change is not None:
            changes.append(change)
    return changes


@dataclass
class Written:
    """What a writer of rollups wrote: parts put, and the write capacity units they cost."""

    parts: int = 0
    units: int = 0

    def add(self, other: Written) -> None:
        self.parts += other.parts
        self.units += other.units


@dataclass
class Part:
    """One rollup item: its entries by event sort key, and the version it was read at (0: new)."""

    pk: str
    sk: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: int = 0
    size: int = 2

    @classmethod
    def of(cls, item: Item) -> Part:
        raw = zlib.decompress(base64.b64decode(item["entries"]["S"]))
        return cls(item["pk"]["S"], item["sk"]["S"], json.loads(raw), K.version_of(item), len(raw))

    def put(self, event_sk: str, entry: dict[str, Any]) -> None:
        self.remove(event_sk)
        self.entries[event_sk] = entry
        self.size += _entry_bytes(event_sk, entry)

    def remove(self, event_sk: str) -> None:
        entry = self.entries.pop(event_sk, None)
        if entry is not None:
            self.size -= _entry_bytes(event_sk, entry)

    def item(self, now: datetime, region: str) -> Item:
        """The stored part: its entries as compressed JSON (zlib, in base64 text: about a third of the
        JSON's size), their count, and a newer version than the one read."""
        raw = json.dumps(self.entries, separators=(",", ":"), sort_keys=True).encode()
        packed = base64.b64encode(zlib.compress(raw, 6)).decode()
        return {**K.key(self.pk, self.sk), "entries": {"S": packed}, "count": {"N": str(len(self.entries))},
                **_stamp(now, region, K.next_version(self.held))}


def _stamp(now: datetime, region: str, version: int) -> Item:
    """What a rollup item carries instead of a change stamp: it is this region's own (not in the
    `changes` index, never replicated), versioned for its conditional writes."""
    return {"version": {"N": str(version)}, "updated_at": {"S": format_time(now)}, "origin_region": {"S": region}}


def _entry_bytes(event_sk: str, entry: dict[str, Any]) -> int:
    return len(event_sk) + len(json.dumps(entry, separators=(",", ":"))) + 4


class RollupStore:
    """The rollup parts of one table, and its rollups' state (cached ROLLUP_STATE_CACHE_SECONDS)."""

    def __init__(self, table: Table, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self._clock = clock
        self._state: tuple[float, str | None] | None = None  # (read at, complete_from)
        self._started = False

    # ---- reads -------------------------------------------------------------------------------------

    def parts(self, pk: str, kind: str, first_day: str, last_day: str, consistent: bool = True) -> list[Part]:
        """Every part of `kind` in the partition from `first_day` to `last_day`, in key order (a
        writer's read is consistent, and a summary's is not: it costs half)."""
        lo, hi = K.rollup_day_bounds(kind, first_day, last_day)
        found: list[Part] = []
        for page in self.table.query_pages(
                KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi", ConsistentRead=consistent,
                ExpressionAttributeValues={":p": {"S": pk}, ":lo": {"S": lo}, ":hi": {"S": hi}},
                ProjectionExpression="pk, sk, entries, version", FilterExpression=K.LIVE):
            found += [Part.of(item) for item in page.items]
        return found

    def events_between(self, environment: str, service: str, kind: str,
                       since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """What EventStore.events_between yields, cut to the fields the metrics read: the entries of
        the days from `since` to `until` whose events lie in [since, until], oldest first."""
        lo, hi = f"{kind}#{format_time(since)}", f"{kind}#{format_time(until)}#{C.KEY_UPPER_SENTINEL}"
        pk = K.event_pk(environment, service)
        entries: list[tuple[str, dict[str, Any]]] = []
        for part in self.parts(pk, kind, format_time(since)[:10], format_time(until)[:10], consistent=False):
            entries += [(sk, entry) for sk, entry in part.entries.items() if lo <= sk <= hi and not is_removed(entry)]
        for _, entry in sorted(entries, key=lambda pair: pair[0]):
            yield {name: value for name, value in entry.items() if name != "v"} | {
                "service": service, "environment": environment}

    def complete_from(self) -> str | None:
        """From when the rollups are whole (a stored time; BEGINNING after a rebuild), or None when
        nothing maintains them yet."""
        clock = self._clock()
        if self._state is None or clock - self._state[0] >= C.ROLLUP_STATE_CACHE_SECONDS:
            state = self.table.get(K.rollup_state_key())
            self._state = (clock, state["complete_from"]["S"] if state and "complete_from" in state else None)
        return self._state[1]

    # ---- writes ------------------------------------------------------------------------------------

    def start(self, now: datetime, region: str) -> None:
        """Record that the rollups are maintained from now on, unless they already are (once per
        function instance: the write is conditional)."""
        if self._started:
            return
        since = format_time(now + timedelta(seconds=C.MAX_FUTURE_SKEW_SECONDS))
        self.table.put(self._state_item(since, now, region), condition="attribute_not_exists(pk)")
        self._started = True

    def mark_complete(self, now: datetime, region: str) -> None:
        """After a rebuild: every window is whole."""
        self.table.put(self._state_item(BEGINNING, now, region))
        self._state = None

    @staticmethod
    def _state_item(complete_from: str, now: datetime, region: str) -> Item:
        return {**K.rollup_state_key(), "complete_from": {"S": complete_from}, **_stamp(now, region, K.version_now())}

    def apply(self, changes: Sequence[EntryChange], now: datetime, give_up: str | None = None) -> Written:
        """Apply entry changes in order; returns what was written. A part another writer changed
        since it was read makes its partition and kind go again, read afresh."""
        groups: dict[tuple[str, str], list[EntryChange]] = {}
        for change in changes:
            groups.setdefault((change.pk, change.kind), []).append(change)
        written = Written()

        def send(pending: list[tuple[str, str]]) -> list[tuple[str, str]]:
            outcomes = parallel(lambda group: self._apply_group(group[0], group[1], groups[group], now), pending)
            for done, _ in outcomes:
                written.add(done)
            return [group for group, (_, raced) in zip(pending, outcomes, strict=True) if raced]

        retry_remaining(send, list(groups), give_up or "The rollups kept changing under their writer; "
                                                     "the stream batch goes again.")
        return written

    def _apply_group(self, pk: str, kind: str, changes: list[EntryChange], now: datetime) -> tuple[Written, bool]:
        days = sorted({c.day for c in changes})
        parts = self.parts(pk, kind, days[0], days[-1])
        holders = {event_sk: part for part in parts for event_sk in part.entries}
        dirty: dict[str, Part] = {}
        for change in changes:
            holder = holders.get(change.event_sk)
            held = holder.entries[change.event_sk] if holder is not None else None
            wanted = _after(held, change)
            if wanted is None or wanted == held:
                continue  # nothing to change, or an older record delivered again after a newer one
            if holder is None:
                holder = _room(parts, pk, kind, change, _entry_bytes(change.event_sk, wanted))
                holders[change.event_sk] = holder
            holder.put(change.event_sk, wanted)
            dirty[holder.sk] = holder
        return self._write(list(dirty.values()), now)

    def _write(self, parts: list[Part], now: datetime) -> tuple[Written, bool]:
        """Put each part back if it is still at the version read; (what landed, whether any lost)."""
        def put(part: Part) -> int:
            item = part.item(now, self.table.region)
            if part.held == 0:
                landed = self.table.put(item, condition="attribute_not_exists(pk)")
            else:
                landed = self.table.put(item, condition="version = :v", values={":v": {"N": str(part.held)}})
            return write_units(item) if landed else 0

        units = parallel(put, parts)
        return Written(sum(1 for u in units if u), sum(units)), not all(units)

    def replace_days(self, pk: str, kind: str, days: Sequence[str],
                     read_entries: Callable[[str, str], dict[str, dict[str, dict[str, Any]]]],
                     now: datetime) -> Written | None:
        """Make the parts of `days` hold exactly the entries `read_entries(first_day, last_day)` gives
        per day (a rebuild); returns what was written, or None when a stream batch changed a part
        meanwhile (the caller goes again). The parts are read before the events, so a stream write
        of an event the events read missed changes a part, and the conditional write then fails."""
        first, last = min(days), max(days)
        parts = self.parts(pk, kind, first, last)
        wanted = read_entries(first, last)
        written = Written()
        for day in sorted(set(days)):
            mine = [part for part in parts if part.sk.startswith(K.rollup_sk(kind, day, ""))]
            entries = wanted.get(day, {})
            if {sk: e for part in mine for sk, e in part.entries.items() if not is_removed(e)} == entries:
                continue  # the day is right: its parts stay as they are, markers included
            held = {part.sk: part.held for part in mine}
            for part in mine:
                part.entries, part.size = {}, 2
            for event_sk, entry in sorted(entries.items()):
                change = EntryChange(pk, event_sk, entry, int(entry.get("v", 0)))
                _room(mine, pk, kind, change, _entry_bytes(event_sk, entry)).put(event_sk, entry)
            for part in mine:
                part.held = held.get(part.sk, 0)
            done, raced = self._write(mine, now)
            if raced:
                return None
            written.add(done)
        return written


def _after(held: dict[str, Any] | None, change: EntryChange) -> dict[str, Any] | None:
    """What an entry becomes after a change (None: it stays as it is). A removal leaves a marker
    with its version, so that an older record of the event delivered after it cannot bring the
    entry back; a record without a version (an item deleted outright) removes whatever is there."""
    held_version = int(held["v"]) if held is not None else 0
    if change.entry is not None:
        return change.entry if held is None or change.version > held_version else None
    if held is None and change.version == 0:
        return None
    if held is not None and (is_removed(held) or held_version > change.version > 0):
        return None
    return {"v": max(held_version, change.version), REMOVED: True}


REMOVED = "removed"  # an entry's marker: its event was deleted, or moved to another time


def is_removed(entry: dict[str, Any]) -> bool:
    return bool(entry.get(REMOVED))


def _room(parts: list[Part], pk: str, kind: str, change: EntryChange, size: int) -> Part:
    """The day's newest part if it has room for `size` more bytes (or is empty), else a new one:
    entries arrive mostly in time order, so a day fills its parts one after the other and a write
    rewrites one part of at most ROLLUP_PART_BYTES."""
    prefix = K.rollup_sk(kind, change.day, "")
    mine = [part for part in parts if part.sk.startswith(prefix)]
    if mine and (mine[-1].size + size <= C.ROLLUP_PART_BYTES or not mine[-1].entries):
        return mine[-1]
    fresh = Part(pk, K.rollup_sk(kind, change.day, f"{len(mine):03d}"))
    parts.append(fresh)
    return fresh


class DoraSource:
    """The metrics' inputs: from the rollups when they are whole for the window asked, else from the
    events (just after an upgrade, until `dr rollups --rebuild` or MAX_FUTURE_SKEW_SECONDS pass)."""

    def __init__(self, events: EventStore, rollups: RollupStore) -> None:
        self.events = events
        self.rollups = rollups

    def events_between(self, environment: str, service: str, kind: str,
                       since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        complete_from = self.rollups.complete_from() if kind in C.ROLLUP_KINDS else None
        if complete_from is not None and format_time(since) >= complete_from:
            return self.rollups.events_between(environment, service, kind, since, until)
        return self.events.events_between(environment, service, kind, since, until)


# ---- verify and rebuild (dr rollups, dr verify) -------------------------------------------------------


@dataclass(frozen=True)
class DayDifference:
    pk: str
    kind: str
    day: str
    missing: int  # events without their entry
    stale: int  # entries of an older version of their event
    extra: int  # entries of no live event

    def as_dict(self) -> dict[str, Any]:
        return {"pk": self.pk, "kind": self.kind, "day": self.day, "missing": self.missing, "stale": self.stale,
                "extra": self.extra}


DayKey = tuple[str, str, str]  # pk, kind, day


def expected_and_stored(items: Iterable[Item]) -> tuple[dict[DayKey, dict[str, dict[str, Any]]],
                                                        dict[DayKey, dict[str, dict[str, Any]]]]:
    """From every item of a table (a Scan): the entries its events call for, and those its rollup
    parts hold, per partition, kind and day."""
    expected: dict[DayKey, dict[str, dict[str, Any]]] = {}
    stored: dict[DayKey, dict[str, dict[str, Any]]] = {}
    for item in items:
        if K.is_rollup(item) and not K.is_tombstone(item):
            _, kind, day, _ = item["sk"]["S"].split("#", 3)
            stored.setdefault((item["pk"]["S"], kind, day), {}).update(
                (sk, entry) for sk, entry in Part.of(item).entries.items() if not is_removed(entry))
            continue
        change = change_of(K.key_of(item), item) if is_rolled_up(item) else None
        if change is not None and change.entry is not None:
            expected.setdefault((change.pk, change.kind, change.day), {})[change.event_sk] = change.entry
    return expected, stored


def compare(expected: dict[DayKey, dict[str, dict[str, Any]]],
            stored: dict[DayKey, dict[str, dict[str, Any]]]) -> list[DayDifference]:
    differences = []
    for day_key in sorted(expected.keys() | stored.keys()):
        want, have = expected.get(day_key, {}), stored.get(day_key, {})
        missing = sum(1 for sk in want if sk not in have)
        stale = sum(1 for sk in want if sk in have and have[sk] != want[sk])
        extra = sum(1 for sk in have if sk not in want)
        if missing or stale or extra:
            differences.append(DayDifference(*day_key, missing, stale, extra))
    return differences


def entries_between(table: Table, pk: str, kind: str, first_day: str, last_day: str
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """day -> the entries the events of `kind` from `first_day` to `last_day` call for, read now
    (a consistent Query of the event items)."""
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for page in table.query_pages(
            KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi", ConsistentRead=True,
            ExpressionAttributeValues={":p": {"S": pk}, ":lo": {"S": f"{kind}#{first_day}"},
                                       ":hi": {"S": f"{kind}#{last_day}{C.KEY_UPPER_SENTINEL}"}},
            FilterExpression=K.LIVE, ProjectionExpression="pk, sk, body, version"):
        for item in page.items:
            change = change_of(K.key_of(item), item)
            if change is not None and change.entry is not None:
                entries.setdefault(change.day, {})[change.event_sk] = change.entry
    return entries


def rebuild(table: Table, differences: Sequence[DayDifference], now: datetime) -> Written:
    """Compute the differing days again from their events, one partition and kind at a time (its
    parts, then its events, then the parts that changed, conditionally), and mark the rollups whole;
    returns what was written. A partition a stream batch changed meanwhile is read again."""
    store = RollupStore(table)
    groups: dict[tuple[str, str], list[str]] = {}
    for day in differences:
        groups.setdefault((day.pk, day.kind), []).append(day.day)
    written = Written()

    def send(pending: list[tuple[str, str]]) -> list[tuple[str, str]]:
        again = []
        for pk, kind in pending:
            done = store.replace_days(pk, kind, groups[(pk, kind)], partial(entries_between, table, pk, kind), now)
            if done is None:
                again.append((pk, kind))
            else:
                written.add(done)
        return again

    retry_remaining(send, list(groups), "The rollups kept changing during the rebuild; run it again.")
    store.mark_complete(now, table.region)
    return written

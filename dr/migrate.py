"""python -m dr migrate: bring a table written by release 0.1.0 to today's layout, once, safely.

Release 0.1.0 kept one idempotency record per client id (pk=ID#<id>, sk=ID) and none for events
posted without an id. Today every event has an identity record in its own partition
(chalicelib.events), which makes a repost a duplicate or a revision and lets GET and DELETE find it.
The migration gives every event item that lacks one its record, carrying over the content hash the
old record kept, and then removes the old records. Every step is conditional or a no-op when done,
so a run that is cut off, or run twice, converges. It runs against the active region; replication
carries the new records (and the removals) to the standby.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from chalicelib import keys as K
from chalicelib.dynamodb import Item, Table
from chalicelib.events import EventStore


@dataclass
class MigrationReport:
    events: int = 0  # live event items seen
    adopted: int = 0  # identity records created
    already: int = 0  # events that had one
    legacy_removed: int = 0  # release 0.1.0 idempotency records removed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def migrate(table: Table, now: datetime, say: Callable[[str], None] = lambda _: None) -> MigrationReport:
    report = MigrationReport()
    events: list[Item] = []
    identities: set[tuple[str, str]] = set()
    legacy: dict[tuple[str, str], str] = {}  # the event's key -> the content hash its record kept
    legacy_records: list[Item] = []
    for page in table.scan_pages():
        for item in page:
            if K.is_tombstone(item):
                continue
            if K.is_legacy_record(item):
                legacy_records.append(item)
                if "event_pk" in item:
                    legacy[(item["event_pk"]["S"], item["event_sk"]["S"])] = item["content_hash"]["S"]
            elif K.is_identity(item):
                identities.add(K.key_tuple(item))
            elif K.is_event(item):
                events.append(item)
    say(f"{len(events)} events, {len(identities)} identity records, {len(legacy_records)} release 0.1.0 records")
    store = EventStore(table)
    for item in events:
        report.events += 1
        record_key = K.identity_key(item["environment"]["S"], item["service"]["S"], item["kind"]["S"],
                                    item["event_id"]["S"])
        if K.key_tuple(record_key) in identities:
            report.already += 1
            continue
        # Posted without an id, an event had no record and its hash was never kept: any stable value
        # will do, since no client can repeat a post of an id it did not send.
        digest = legacy.get(K.key_tuple(item)) or hashlib.sha256(item["body"]["S"].encode()).hexdigest()
        if store.adopt(item, digest, now):
            report.adopted += 1
        else:
            report.already += 1
    # Removed only now that every event they named has its record, as a delete is: by a tombstone,
    # which the sweep carries to the standby as well as the stream.
    table.batch_write(puts=[K.tombstone(K.key_of(r), K.next_version(K.version_of(r)), now, table.region)
                            for r in legacy_records])
    report.legacy_removed = len(legacy_records)
    return report

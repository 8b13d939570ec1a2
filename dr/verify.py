"""Compare the two tables key by key and version by version, and repair the differences; check the
active table's daily rollups against its events, and rebuild them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib import rollups
from chalicelib.dynamodb import Table
from chalicelib.replication import Change, Replicator

# What a replica can get wrong about a key.
MISSING = "missing"  # live in the source, absent (or deleted) in the replica
STALE = "stale"  # the replica holds an older version
EXTRA = "extra"  # live in the replica, absent (or deleted) in the source
NEWER_IN_REPLICA = "newer_in_replica"  # the replica holds a newer version: written there directly


@dataclass(frozen=True)
class Difference:
    pk: str
    sk: str
    problem: str
    source_version: int | None
    replica_version: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_versions(table: Table) -> dict[tuple[str, str], int]:
    """key -> version of every replicated, non-deleted data item (parallel segmented Scan)."""
    versions: dict[tuple[str, str], int] = {}
    for page in table.scan_pages(projection=f"pk, sk, version, {C.TOMBSTONE_ATTRIBUTE}"):
        for item in page:
            if not K.is_replicated(item) or K.is_heartbeat(item) or K.is_tombstone(item):
                continue  # per-region control items and each source's heartbeat are not data
            versions[K.key_tuple(item)] = K.version_of(item)
    return versions


def compare(source: Table, replica: Table) -> list[Difference]:
    ours, theirs = live_versions(source), live_versions(replica)
    differences = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, copy = ours.get(key), theirs.get(key)
        if mine == copy:
            continue
        if copy is None:
            problem = MISSING
        elif mine is None:
            problem = EXTRA
        else:
            problem = STALE if copy < mine else NEWER_IN_REPLICA
        differences.append(Difference(key[0], key[1], problem, mine, copy))
    return differences


def repair(differences: list[Difference], source: Table, replica: Table, now: datetime,
           deadline: float, progress: Callable[[int], None] | None = None) -> int:
    """Copy missing and stale items, delete (tombstone) extra ones. A replica that holds a newer
    version is left alone: it took a write the source never saw, and only an operator can judge it."""
    replicator = Replicator(replica, source.region)
    to_copy = [K.key(d.pk, d.sk) for d in differences if d.problem in (MISSING, STALE)]
    repaired = 0
    for start in range(0, len(to_copy), C.BATCH_GET_MAX_KEYS):
        items = source.batch_get(to_copy[start:start + C.BATCH_GET_MAX_KEYS])
        repaired += replicator.copy(items, now, deadline).applied
        if progress:
            progress(repaired)
    extra = [Change(K.key(d.pk, d.sk), None, (d.replica_version or 0) + 1)
             for d in differences if d.problem == EXTRA]
    repaired += replicator.apply(extra, now).applied
    return repaired



# ---- the daily rollups --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupReport:
    """The source table's rollups against its events: the days that differ, split into those the
    rollups claim to cover (from `complete_from`: a problem) and those before it (not built yet)."""

    days: int  # days with rolled-up events or rollup parts
    differing: list[rollups.DayDifference]
    not_covered: list[rollups.DayDifference]
    complete_from: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"days": self.days, "differing_days": len(self.differing),
                "missing": sum(d.missing for d in self.differing), "stale": sum(d.stale for d in self.differing),
                "extra": sum(d.extra for d in self.differing), "days_before_complete_from": len(self.not_covered),
                "complete_from": self.complete_from, "sample": [d.as_dict() for d in self.differing[:20]]}


def check_rollups(table: Table) -> RollupReport:
    """Compute every day's rollup from the table's events (a Scan) and compare it with the stored one."""
    items = (item for page in table.scan_pages(projection="pk, sk, body, version, entries, "
                                                          f"{C.TOMBSTONE_ATTRIBUTE}") for item in page)
    expected, stored = rollups.expected_and_stored(items)
    differences = rollups.compare(expected, stored)
    complete_from = rollups.RollupStore(table).complete_from()
    # a day is covered once it starts at or after complete_from (BEGINNING, "", covers every day)
    covered = [d for d in differences if complete_from is not None and d.day > complete_from[:10]]
    return RollupReport(len(expected.keys() | stored.keys()), covered,
                        [d for d in differences if d not in covered], complete_from)


def rebuild_rollups(table: Table, now: datetime) -> tuple[int, rollups.Written]:
    """Every differing day computed again from its events, then the rollups marked whole; returns
    the days rebuilt and what was written."""
    report = check_rollups(table)
    days = [*report.differing, *report.not_covered]
    return len(days), rollups.rebuild(table, days, now)

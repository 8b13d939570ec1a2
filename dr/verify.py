"""Compare the two tables key by key and version by version, and repair the differences."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib import keys as K
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


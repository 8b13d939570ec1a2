"""Which revision of one event wins. Pure: the store reads what it holds, asks here, and writes.

A revision is ordered by its time, the event's `updated_at` (when its source changed it) or else the
time the service received it, then by how far along its lifecycle it is (chalicelib.lifecycle), so
that late or reordered deliveries of a webhook never roll an event back. A delete is a revision too:
a post older than the delete does not bring the event back; a newer one creates it again.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What posting one revision came to; POST /metrics counts each."""

    CREATED = "created"  # the identity was new (or deleted before this revision)
    UPDATED = "updated"  # newer content replaced the stored revision
    DUPLICATE = "duplicates"  # the same content as the stored revision; nothing changes
    STALE = "stale"  # older than the stored revision (or the delete); acknowledged, not applied

    @property
    def applies(self) -> bool:
        return self in (Verdict.CREATED, Verdict.UPDATED)


@dataclass(frozen=True)
class Revision:
    at: str  # fixed-width UTC (chalicelib.times), so that string order is time order
    progress: int
    digest: str  # the content hash (chalicelib.models.content_hash)


@dataclass(frozen=True)
class Held:
    """What the store holds for an identity: its current revision, or the delete of it."""

    revision: Revision
    deleted: bool = False


def judge(incoming: Revision, held: Held | None) -> Verdict:
    if held is None:
        return Verdict.CREATED
    if held.deleted:
        return Verdict.CREATED if incoming.at > held.revision.at else Verdict.STALE
    if incoming.digest == held.revision.digest:
        return Verdict.DUPLICATE
    if (incoming.at, incoming.progress) < (held.revision.at, held.revision.progress):
        return Verdict.STALE
    return Verdict.UPDATED  # newer, or as new and as far along: the later delivery wins

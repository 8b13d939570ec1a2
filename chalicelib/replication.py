"""Replication from the active region's table to the standby's: last writer wins on `version`.

Two paths write into the standby (the replica):
- the stream handler: each batch collapsed to the last image per key, written with conditional
  puts in transactions of up to 100, so an older or repeated image never overwrites a newer one.
  A delete in the source is a tombstone (chalicelib.keys.tombstone) and travels like any other
  write; an item removed outright becomes a tombstone in the replica, with a version, so that a
  late older copy cannot bring it back;
- the scheduled sweep: reads the items changed since its checkpoint from the `changes` index
  (tombstones included, so it carries deletes too) and copies them with the same conditional
  transactions, after one BatchGetItem per 100 keys has dropped those the replica already holds at
  the same or a newer version.

Control items (pk=_control) are per region and never replicated. The sweep also writes a heartbeat
item; when a copy of it lands in the replica, its age there is the replication lag.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import aws_errors
from chalicelib import constants as C
from chalicelib import keys as K
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Item, Table, parallel, retry_remaining
from chalicelib.errors import Unavailable
from chalicelib.times import format_time, parse_time, utc_now


@dataclass(frozen=True)
class Change:
    """The newest state of one key: an image to put, or None for a delete at `version`."""

    key: Item
    image: Item | None
    version: int


@dataclass
class ApplyResult:
    applied: int = 0  # changes written
    skipped_older: int = 0  # changes the replica already held at the same or a newer version
    heartbeat_lag_seconds: float | None = None

    def add(self, other: ApplyResult) -> None:
        self.applied += other.applied
        self.skipped_older += other.skipped_older


def changes_from_stream(records: Sequence[dict[str, Any]]) -> list[Change]:
    """Collapse stream records to the last change per key, in arrival order; control items dropped."""
    last: dict[tuple[str, str], Change] = {}
    for record in records:
        data = record["dynamodb"]
        key = {"pk": data["Keys"]["pk"], "sk": data["Keys"]["sk"]}
        if not K.is_replicated(key):
            continue
        if record["eventName"] == "REMOVE":
            old = data.get("OldImage")
            if old is not None and K.is_tombstone(old):
                continue  # TTL removing a tombstone: the delete itself was replicated when it was written
            change = Change(key, None, K.version_of(old) + 1)
        else:
            image = data["NewImage"]
            change = Change(key, image, K.version_of(image))
        last[K.key_tuple(key)] = change
    return list(last.values())


def stream_lag_seconds(records: Sequence[dict[str, Any]], now: datetime) -> float | None:
    """now − the oldest ApproximateCreationDateTime in the batch: how far replication trails."""
    stamps = [r["dynamodb"]["ApproximateCreationDateTime"] for r in records
              if "ApproximateCreationDateTime" in r.get("dynamodb", {})]
    if not stamps:
        return None
    oldest = min(float(s.timestamp()) if isinstance(s, datetime) else float(s) for s in stamps)
    return max(0.0, now.timestamp() - oldest)


class Replicator:
    """Writes changes into the replica table, never letting an older version win.

    Every write into the replica is conditional, `attribute_not_exists(pk) OR version < :v`, the
    stream's and the sweep's alike, deletes included (a delete is a tombstone put), and goes in
    TransactWriteItems of up to 100 operations. A transaction is all or nothing: when one key's
    condition fails, DynamoDB cancels it and names that key, and the same transaction is sent at
    once without it. So a copy read before a newer write landed can never overwrite it.
    """

    def __init__(self, replica: Table, source_region: str) -> None:
        self.replica = replica
        self.source_region = source_region

    # -- the stream path ---------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], now: datetime, deadline: float | None = None) -> ApplyResult:
        """Write `changes` (at most one per key) into the replica, conditionally."""
        result = ApplyResult()
        failures: list[Unavailable] = []

        # Send again what failed, not everything: under a sustained error rate botocore's retry quota
        # runs dry, and a batch that must succeed in one go would never get through.
        def send(pending: list[Change]) -> list[Change]:
            chunks = [pending[i:i + C.TRANSACT_MAX_ITEMS] for i in range(0, len(pending), C.TRANSACT_MAX_ITEMS)]
            answers = parallel(lambda chunk: self._transact(chunk, now, failures), chunks)
            for _, counted in answers:
                result.add(counted)
            return [change for left, _ in answers for change in left]

        give_up = f"The replica table in {self.replica.region} kept failing writes."
        try:
            retry_remaining(send, changes, give_up, rounds=None if deadline is not None else C.UNPROCESSED_RETRIES,
                            deadline=deadline)
        except Unavailable as gave_up:
            raise gave_up from (failures[-1] if failures else None)  # the last failure says what AWS answered
        result.heartbeat_lag_seconds = self._note_heartbeats([c.image for c in changes if c.image is not None], now)
        return result

    def _transact(self, batch: list[Change], now: datetime,
                  failures: list[Unavailable]) -> tuple[list[Change], ApplyResult]:
        """One conditional transaction of `batch`, sent again without the keys the replica holds at the
        same or a newer version. Returns what is worth sending again later (throttled, conflicting,
        or unanswered), and what came of the rest."""
        result = ApplyResult()
        while batch:
            try:
                codes = self.replica.transact_write([self._put(change, now) for change in batch])
            except Unavailable as error:
                failures.append(error)
                return batch, result
            if codes is None:
                result.applied += len(batch)
                return [], result
            current = [c for c, code in zip(batch, codes, strict=True) if code == aws_errors.TRANSACT_CONDITION_FAILED]
            if not current:
                return batch, result  # cancelled for a conflict or throttling: later, with backoff
            result.skipped_older += len(current)
            batch = [c for c, code in zip(batch, codes, strict=True) if code != aws_errors.TRANSACT_CONDITION_FAILED]
        return [], result

    def _put(self, change: Change, now: datetime) -> dict[str, Any]:
        item = change.image if change.image is not None else self._tombstone(change, now)
        return {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk) OR version < :v",
                        "ExpressionAttributeValues": {":v": {"N": str(change.version)}}}}

    def _tombstone(self, change: Change, now: datetime) -> Item:
        return K.tombstone(change.key, change.version, now, self.source_region)

    # -- the sweep path: what the replica lacks, through the same conditional writes -----------------

    def copy(self, items: Sequence[Item], now: datetime, deadline: float) -> ApplyResult:
        """Copy source items the replica lacks or holds at an older version. A BatchGetItem per 100 keys
        first drops those it holds at the same or a newer version (a read costs a quarter of a
        transactional write), then the rest go through apply's conditional writes: a stream write
        that lands between this read and the write is newer, and its condition keeps it."""
        result = ApplyResult()
        for start in range(0, len(items), C.BATCH_GET_MAX_KEYS):
            chunk = [i for i in items[start:start + C.BATCH_GET_MAX_KEYS] if K.is_replicated(i)]
            held = self._replica_versions(chunk)
            newer = [i for i in chunk if K.version_of(i) > held.get(K.key_tuple(i), 0)]
            result.skipped_older += len(chunk) - len(newer)
            written = self.apply([Change(K.key_of(i), i, K.version_of(i)) for i in newer], now, deadline)
            result.add(written)
        result.heartbeat_lag_seconds = self._note_heartbeats(items, now)
        return result

    def _replica_versions(self, items: Sequence[Item]) -> dict[tuple[str, str], int]:
        if not items:
            return {}
        found = self.replica.batch_get([K.key_of(i) for i in items], "pk, sk, version")
        return {K.key_tuple(i): K.version_of(i) for i in found}

    # -- heartbeats ---------------------------------------------------------------------------------

    def _note_heartbeats(self, images: Iterable[Item], now: datetime) -> float | None:
        """A heartbeat copied into the replica: record its lag in the replica's control item."""
        lag = None
        for image in images:
            if not K.is_heartbeat(image, self.source_region):
                continue
            written = parse_time(image["updated_at"]["S"])
            lag = max(0.0, (now - written).total_seconds())
            ControlStore(self.replica).put(C.HEARTBEAT_SK, {
                "source_region": self.source_region, "written_at": image["updated_at"]["S"],
                "updated_at": format_time(now), "lag_seconds": round(lag, 3)})
        return lag


@dataclass
class SweepReport:
    changes_found: int = 0
    copied: int = 0
    already_current: int = 0
    pages: int = 0
    checkpoint: str | None = None
    complete: bool = True
    heartbeat_lag_seconds: float | None = None
    buckets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "buckets"}


class ReplicationSweep:
    """Copies what the stream missed: the items written since the checkpoint, found through the
    `changes` index, so a sweep's cost follows the number of changes, not the size of the table."""

    def __init__(self, source: Table, replicator: Replicator) -> None:
        self.source = source
        self.control = ControlStore(source)
        self.replicator = replicator

    def run(self, now: datetime, budget_seconds: float = C.SWEEP_BUDGET_SECONDS, full: bool = False) -> SweepReport:
        deadline = time.monotonic() + budget_seconds
        report = SweepReport()
        checkpoint = self.control.get(C.SWEEP_CHECKPOINT_SK)
        if full or checkpoint is None:
            for page in self._scan_pages(deadline):
                self._copy(page, report, now, deadline)
        else:
            since = parse_time(str(checkpoint["watermark"])) - timedelta(seconds=C.SWEEP_OVERLAP_SECONDS)
            pending: list[Item] = []  # gathered across pages and hours, so quiet hours share write calls
            unsaved = 0
            for page in self._changed_since(since, now, report):
                pending += page
                while len(pending) >= C.BATCH_GET_MAX_KEYS:
                    chunk, pending = pending[:C.BATCH_GET_MAX_KEYS], pending[C.BATCH_GET_MAX_KEYS:]
                    self._copy(chunk, report, now, deadline)
                    unsaved += len(chunk)
                    out_of_time = time.monotonic() > deadline
                    if out_of_time or unsaved >= C.SWEEP_CHECKPOINT_EVERY:
                        # Pages come in change order, so everything up to the last copied change is done.
                        self._save_checkpoint(parse_time(chunk[-1]["updated_at"]["S"]), report)
                        unsaved = 0
                    if out_of_time:
                        report.complete = False
                        return report
            self._copy(pending, report, now, deadline)
        self._save_checkpoint(now, report)
        # Written after the checkpoint, so this run does not copy it: the stream carries it across
        # (its lag is the stream's), or else the next sweep does (and its lag shows the stream is down).
        self._write_heartbeat(now)
        return report

    def _copy(self, items: list[Item], report: SweepReport, now: datetime, deadline: float) -> None:
        report.changes_found += len(items)
        result = self.replicator.copy(items, now, deadline)
        report.copied += result.applied
        report.already_current += result.skipped_older
        if result.heartbeat_lag_seconds is not None:
            report.heartbeat_lag_seconds = result.heartbeat_lag_seconds

    def _write_heartbeat(self, now: datetime) -> None:
        key = K.heartbeat_key(self.source.region)
        self.source.put(key | K.change_stamp(key["pk"]["S"], key["sk"]["S"], now, self.source.region))

    def _save_checkpoint(self, watermark: datetime, report: SweepReport) -> None:
        report.checkpoint = format_time(watermark)
        self.control.put(C.SWEEP_CHECKPOINT_SK, {"watermark": report.checkpoint, "updated_at": format_time(utc_now())})

    def _changed_since(self, since: datetime, now: datetime, report: SweepReport) -> Iterator[list[Item]]:
        """Pages of the items changed after `since`, in change order: one Query per hour bucket."""
        hour = since.replace(minute=0, second=0, microsecond=0)
        low = format_time(since)
        while hour <= now:
            bucket = K.change_bucket(format_time(hour))
            report.buckets.append(bucket)
            for page in self.source.query_pages(
                IndexName=C.CHANGES_INDEX,
                KeyConditionExpression="#b = :b AND #k > :low",
                ExpressionAttributeNames={"#b": C.CHANGE_BUCKET_ATTRIBUTE, "#k": C.CHANGE_KEY_ATTRIBUTE},
                ExpressionAttributeValues={":b": {"S": bucket}, ":low": {"S": low}},
            ):
                report.pages += 1
                yield page.items
            hour += timedelta(hours=1)

    def _scan_pages(self, deadline: float) -> Iterator[list[Item]]:
        """A full copy: parallel segmented Scan of the source (replicate --full, or no checkpoint yet).
        Tombstones are copied too: they are the deletes the replica has to learn of."""
        for page in self.source.scan_pages():
            if time.monotonic() > deadline:
                raise Unavailable("The full copy ran out of time; run it again to continue.")
            yield page

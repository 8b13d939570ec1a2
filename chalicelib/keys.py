"""The table's key layout and what every replicated item carries (docs/data-model.md).

  event        pk=M#<environment>#<service>  sk=<kind>#<timestamp>#<id>
               gsi1pk=<kind>#<environment>    gsi1sk=<timestamp>#<service>#<id>
  identity     pk=M#<environment>#<service>  sk=ID#<kind>#<id>   (the current revision: its event's
                                                                   key, content hash, revision count)
  rollup       pk=M#<environment>#<service>  sk=rollup#<kind>#<day>#<n>   (one entry per event of
                                                  that kind and day, in parts: chalicelib.rollups; per region)
  rollups      pk=_rollups                    sk=state   (since when the rollups are whole; per region)
  team         pk=TEAMS                       sk=<team>   (its services; replicated)
  heartbeat    pk=_heartbeat                  sk=<source region>   (replicated)
  control      pk=_control                    sk=failover | replication-heartbeat | sweep-checkpoint |
                                                 health-state#<region> | health-sample#<region>#<time>
  legacy       pk=ID#<client id>              sk=ID   (release 0.1.0's idempotency record; `dr migrate`
                                                       turns them into identity records)
Control items and the rollups are per region and never replicated; every other item is, and carries
a version. A
delete leaves a tombstone in its place, which the sweep sees and replicates, and TTL removes.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from chalicelib import constants as C
from chalicelib.dynamodb import Item
from chalicelib.times import format_time, parse_time

# Replicas keep deletes as tombstones; reads skip them with this filter.
LIVE = f"attribute_not_exists({C.TOMBSTONE_ATTRIBUTE})"


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def key_of(item: Item) -> Item:
    return {"pk": item["pk"], "sk": item["sk"]}


def key_tuple(item: Item) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def event_pk(environment: str, service: str) -> str:
    return f"{C.EVENT_PK_PREFIX}{environment}#{service}"


def event_sk(kind: str, timestamp: str, event_id: str) -> str:
    return f"{kind}#{timestamp}#{event_id}"


def gsi_pk(kind: str, environment: str) -> str:
    return f"{kind}#{environment}"


def gsi_sk(timestamp: str, service: str, event_id: str) -> str:
    return f"{timestamp}#{service}#{event_id}"


def service_of_gsi_sk(gsi1sk: str) -> str:
    return gsi1sk.split("#")[1]


def time_of_event_sk(sk: str) -> datetime:
    """The event time written into an event's sort key."""
    return parse_time(sk.split("#")[1])


def identity_sk(kind: str, event_id: str) -> str:
    return f"{C.IDENTITY_SK_PREFIX}{kind}#{event_id}"


def identity_key(environment: str, service: str, kind: str, event_id: str) -> Item:
    """The key of an event's identity record: one per (environment, service, kind, id)."""
    return key(event_pk(environment, service), identity_sk(kind, event_id))


def is_identity(item: Item) -> bool:
    return bool(item["pk"]["S"].startswith(C.EVENT_PK_PREFIX) and item["sk"]["S"].startswith(C.IDENTITY_SK_PREFIX))


def is_event(item: Item) -> bool:
    return bool(item["pk"]["S"].startswith(C.EVENT_PK_PREFIX)
                and not item["sk"]["S"].startswith((C.IDENTITY_SK_PREFIX, C.ROLLUP_SK_PREFIX)))


def kind_of_event_sk(sk: str) -> str:
    return sk.split("#", 1)[0]


def rollup_sk(kind: str, day: str, part: str) -> str:
    """A rollup part's sort key: `part` numbers the day's parts ('000', '001'...)."""
    return f"{C.ROLLUP_SK_PREFIX}{kind}#{day}#{part}"


def rollup_day_bounds(kind: str, first_day: str, last_day: str) -> tuple[str, str]:
    """The sort key range of every rollup part of `kind` from `first_day` to `last_day`."""
    return rollup_sk(kind, first_day, ""), rollup_sk(kind, last_day, C.KEY_UPPER_SENTINEL)


def is_rollup(item: Item) -> bool:
    return bool(item["pk"]["S"].startswith(C.EVENT_PK_PREFIX) and item["sk"]["S"].startswith(C.ROLLUP_SK_PREFIX))


def rollup_state_key() -> Item:
    return key(C.ROLLUPS_PK, C.ROLLUP_STATE_SK)


def is_legacy_record(item: Item) -> bool:
    """An idempotency record of release 0.1.0 (pk=ID#<client id>, sk=ID)."""
    return bool(item["pk"]["S"].startswith(C.LEGACY_IDEMPOTENCY_PK_PREFIX)
                and item["sk"]["S"] == C.LEGACY_IDEMPOTENCY_SK)


def team_key(team: str) -> Item:
    return key(C.TEAMS_PK, team)


def heartbeat_key(source_region: str) -> Item:
    return key(C.HEARTBEAT_PK, source_region)


def is_heartbeat(item: Item, source_region: str | None = None) -> bool:
    """A replication heartbeat (of `source_region`, when given)."""
    return item["pk"]["S"] == C.HEARTBEAT_PK and source_region in (None, item["sk"]["S"])


def control_key(sort_key: str) -> Item:
    return key(C.CONTROL_PK, sort_key)


def health_state_sk(region: str) -> str:
    """The control item of a region's health-check alert state (kept in both regions' tables)."""
    return C.HEALTH_STATE_SK_PREFIX + region


def health_sample_sk(region: str, at: str) -> str:
    return f"{C.HEALTH_SAMPLE_SK_PREFIX}{region}#{at}"


def is_replicated(item: Item) -> bool:
    """Everything but the per-region items: control items, and the daily rollups and their state,
    which each region keeps from its own table's stream (chalicelib.rollups)."""
    pk = item["pk"]["S"]
    return bool(pk not in (C.CONTROL_PK, C.ROLLUPS_PK) and not (
        pk.startswith(C.EVENT_PK_PREFIX) and item["sk"]["S"].startswith(C.ROLLUP_SK_PREFIX)))


def is_tombstone(item: Item) -> bool:
    return C.TOMBSTONE_ATTRIBUTE in item


def version_of(item: Item | None) -> int:
    """An item's version (0 for none, or for an item written before versions)."""
    return int(item["version"]["N"]) if item and "version" in item else 0


def version_now() -> int:
    """Item versions are microseconds since the epoch: monotonic per item, comparable across regions."""
    return time.time_ns() // 1000


def change_bucket(updated_at: str) -> str:
    """The change index partition of a stored time: its hour."""
    return updated_at[:C.CHANGE_BUCKET_LENGTH]


def next_version(held: int) -> int:
    """The version of a write that replaces version `held`: later than it even when this machine's
    clock is behind the one that wrote it, so every write of a key has a higher version than the last."""
    return max(version_now(), held + 1)


def tombstone(item_key: Item, version: int, now: datetime, region: str, **extra: dict[str, Any]) -> Item:
    """What a delete leaves at a key: a marker reads skip and replication carries, with a version so
    that no older copy can bring the item back, removed by TTL after TOMBSTONE_TTL_DAYS."""
    pk, sk = item_key["pk"]["S"], item_key["sk"]["S"]
    expires = now + timedelta(days=C.TOMBSTONE_TTL_DAYS)
    return {**key(pk, sk), **extra, C.TOMBSTONE_ATTRIBUTE: {"BOOL": True},
            C.TTL_ATTRIBUTE: {"N": str(int(expires.timestamp()))}} | change_stamp(pk, sk, now, region, version)


def change_stamp(pk: str, sk: str, now: datetime, region: str, version: int | None = None) -> Item:
    """What every replicated item carries: its version (by default, now), when and where it was
    written, and its place in the change index the replication sweep reads (one partition per hour)."""
    updated_at = format_time(now)
    return {
        "version": {"N": str(version if version is not None else version_now())},
        "updated_at": {"S": updated_at},
        "origin_region": {"S": region},
        C.CHANGE_BUCKET_ATTRIBUTE: {"S": change_bucket(updated_at)},
        C.CHANGE_KEY_ATTRIBUTE: {"S": f"{updated_at}#{pk}#{sk}"},
    }

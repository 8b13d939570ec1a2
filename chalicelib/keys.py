"""The table's key layout and what every replicated item carries (docs/data-model.md).

  event        pk=M#<environment>#<service>  sk=<kind>#<timestamp>#<id>
               gsi1pk=<kind>#<environment>    gsi1sk=<timestamp>#<service>#<id>
  idempotency  pk=ID#<client id>              sk=ID   (content hash + the event's key)
  heartbeat    pk=_heartbeat                  sk=<source region>   (replicated)
  control      pk=_control                    sk=failover | replication-heartbeat | sweep-checkpoint |
                                                 health-state#<region> | health-sample#<region>#<time>
Control items are per region and never replicated; every other item is, and carries a version.
"""
from __future__ import annotations

import time
from datetime import datetime

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


def idempotency_key(event_id: str) -> Item:
    return key(C.IDEMPOTENCY_PK_PREFIX + event_id, C.IDEMPOTENCY_SK)


def event_id_of_record(record: Item) -> str:
    """The client id an idempotency record holds."""
    return str(record["pk"]["S"]).removeprefix(C.IDEMPOTENCY_PK_PREFIX)


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
    """Everything but the per-region control items."""
    return bool(item["pk"]["S"] != C.CONTROL_PK)


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


def change_stamp(pk: str, sk: str, now: datetime, region: str) -> Item:
    """What every replicated item carries: its version, when and where it was written, and its
    place in the change index the replication sweep reads (one partition per hour)."""
    updated_at = format_time(now)
    return {
        "version": {"N": str(version_now())},
        "updated_at": {"S": updated_at},
        "origin_region": {"S": region},
        C.CHANGE_BUCKET_ATTRIBUTE: {"S": change_bucket(updated_at)},
        C.CHANGE_KEY_ATTRIBUTE: {"S": f"{updated_at}#{pk}#{sk}"},
    }

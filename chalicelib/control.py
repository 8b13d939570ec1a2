"""Per-region control items (pk=_control): the failover record, the replication heartbeat and
checkpoint, the health check's alert state and samples. Never replicated; read and written as plain
values (strings and numbers)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib import constants as C
from chalicelib.dynamodb import Item, Table
from chalicelib.keys import control_key
from chalicelib.times import format_time

Value = str | int | float


class ControlStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    @property
    def region(self) -> str:
        return self.table.region

    def get(self, sort_key: str) -> dict[str, Any] | None:
        """A control item as plain values (strongly consistent); None when there is none."""
        item = self.table.get(control_key(sort_key))
        return None if item is None else {name: _plain(value) for name, value in item.items()}

    def put(self, sort_key: str, values: Mapping[str, Value]) -> None:
        self.table.put(control_key(sort_key) | _wire(values))

    def put_failover(self, active_region: str, epoch: int, now: datetime) -> bool:
        """Write the failover record unless this region already holds this epoch or a higher one:
        an epoch is never lowered. False when the record was left as it was."""
        item = control_key(C.FAILOVER_SK) | _wire({"active_region": active_region, "epoch": epoch,
                                                   "updated_at": format_time(now)})
        return self.table.put(item, condition="attribute_not_exists(epoch) OR epoch < :e",
                              values={":e": {"N": str(epoch)}})


def _wire(values: Mapping[str, Value]) -> Item:
    return {name: {"S": value} if isinstance(value, str) else {"N": str(value)} for name, value in values.items()}


def _plain(value: dict[str, Any]) -> Any:
    (tag, raw), = value.items()
    if tag == "N":
        number = float(raw)
        return int(number) if number.is_integer() else number
    return raw

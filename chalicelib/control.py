"""Per-region control items (pk=_control): the failover record, the replication heartbeat and
checkpoint, the health check's alert state and samples. Never replicated; read and written as plain
values (strings and numbers)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib import constants as C
from chalicelib.dynamodb import Item, Table
from chalicelib.keys import control_key

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

    def put_failover_record(self, record: Mapping[str, Value], higher_than: int | None = None,
                            same_epoch_of: tuple[str, int] | None = None,
                            not_after: tuple[str, int] | None = None) -> bool:
        """Write a whole failover record, on a condition (False when it did not hold):
          higher_than=E         over none, or a record of an epoch up to E;
          same_epoch_of=(R, E)  over none, or a record naming R at epoch E;
          not_after=(R, E)      over none, a record of an earlier epoch, or one naming R at epoch E."""
        item = control_key(C.FAILOVER_SK) | _wire(record)
        if higher_than is not None:
            return self.table.put(item, condition="attribute_not_exists(epoch) OR epoch <= :e",
                                  values={":e": {"N": str(higher_than)}})
        if same_epoch_of is not None:
            region, epoch = same_epoch_of
            return self.table.put(item, condition="attribute_not_exists(epoch) OR (epoch = :e AND active_region = :r)",
                                  values={":e": {"N": str(epoch)}, ":r": {"S": region}})
        if not_after is not None:
            region, epoch = not_after
            return self.table.put(item, condition="attribute_not_exists(epoch) OR epoch < :e OR "
                                                  "(epoch = :e AND active_region = :r)",
                                  values={":e": {"N": str(epoch)}, ":r": {"S": region}})
        self.table.put(item)
        return True


    def put_intent(self, intent: Mapping[str, Value]) -> bool:
        """Record a failover's intent unless one of this epoch or a later one is recorded: of two
        failovers started at once, one gets the epoch."""
        return self.table.put(control_key(C.FAILOVER_INTENT_SK) | _wire(intent),
                              condition="attribute_not_exists(epoch) OR epoch < :e",
                              values={":e": {"N": str(intent["epoch"])}})


def _wire(values: Mapping[str, Value]) -> Item:
    return {name: {"S": value} if isinstance(value, str) else {"N": str(value)} for name, value in values.items()}


def _plain(value: dict[str, Any]) -> Any:
    (tag, raw), = value.items()
    if tag == "N":
        number = float(raw)
        return int(number) if number.is_integer() else number
    return raw

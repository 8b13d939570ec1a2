"""moto's server, with three repairs and one addition.

The first repair: TransactWriteItems without a copy of the whole table per item. moto 5.2.5 makes
a deep copy of the table for every operation in a transaction, so that it can roll back; a
100-operation transaction against a table of a few thousand items takes seconds, and grows with
every test. This version does what DynamoDB documents instead: it checks every operation's
condition against the items as they are, and writes only when all hold, so there is nothing to roll
back. Every other answer, the errors and the cancellation reasons included, is moto's own.

The second repair: a Query of the table reads its partition only. moto sorts every item of the
table to find one partition's (Table.all_items), so each Query costs as much as a Scan and grows
with the whole table; this one hands moto's Query the partition's items, which it then filters,
sorts and pages as before. Queries of an index are moto's own.

The third repair: GetRecords answers in plain JSON (moto's own DynamoDB encoder), not through moto's
generic response serializer, which walks the output model for every attribute of every image: about
1.2 ms per stream record, so a stream poller spent more time waiting for its records than the stream
handler spent replicating them.

The addition: stream shards that close. moto gives each table's stream one shard forever; DynamoDB
closes a shard every few hours (and when a partition splits) and opens a child that names it as its
parent, so a stream reader must follow new shards and finish a parent before its child. With
LOCAL_STREAM_SHARD_RECORDS=N in its environment (local.emulator.SHARD_RECORDS_ENV), this server
closes a shard after N records: DescribeStream lists every shard, closed ones with their
EndingSequenceNumber and children with their ParentShardId, and GetRecords on a closed shard that has
been read to its end returns no NextShardIterator, as DynamoDB's does.

Run: python -m local.moto_server -H 127.0.0.1 -p 5000 (the arguments are moto.server's); in-process
(moto.mock_aws), call repair() first.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from typing import Any

from moto import server
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    ResourceNotFoundException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from local.emulator import SHARD_RECORDS_ENV

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")


def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    targets: set[tuple[str, str]] = set()
    reasons: list[Any] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
            old = current.to_json()["Attributes"] if current and op.get(
                "ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            reasons.append((None, None, None))
        planned.append((op_type, op, key))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    for op_type, op, key in planned:  # every condition held: write, without evaluating them again
        if op_type == "Put":
            backend.put_item(op["TableName"], op["Item"])
        elif op_type == "Delete":
            backend.delete_item(op["TableName"], key)
        elif op_type == "Update":
            backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                expression_attribute_names=op.get("ExpressionAttributeNames") or {},
                                expression_attribute_values=op.get("ExpressionAttributeValues") or {})


_QUERIED = threading.local()  # the (table, partition) the Query this thread runs reads


def repair_queries() -> None:
    """Put the partition-only Query in moto's place, in this process (see the module's docstring)."""
    moto_query, moto_all_items = Table.query, Table.all_items

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name is None and hash_key is not None and self.range_key_attr:
            _QUERIED.scope = (self, hash_key)
        try:
            return moto_query(self, hash_key, *args, **kwargs)
        finally:
            _QUERIED.scope = None

    def all_items(self: Table) -> Any:
        scope = getattr(_QUERIED, "scope", None)
        if scope is not None and scope[0] is self:
            return list(self.items.get(scope[1], {}).values())
        return moto_all_items(self)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def repair_get_records() -> None:
    """Put the plain-JSON GetRecords in moto's place, in this process (see the module's docstring)."""
    def get_records(self: DynamoDBStreamsHandler) -> str:
        limit = self._get_param("Limit")
        return dynamo_json_dump(self.backend.get_records(self._get_param("ShardIterator"),
                                                         1000 if limit is None else limit))

    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]


def repair() -> None:
    """The three repairs, in this process (moto in-process, or its server)."""
    repair_transactions()
    repair_queries()
    repair_get_records()


def repair_transactions() -> None:
    """Put this TransactWriteItems in moto's place, in this process (moto in-process, or its server)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def stream_shards(table: Table) -> list[StreamShard]:
    """Every shard of the table's stream, oldest first: the closed ones, then the open one."""
    closed: list[StreamShard] = getattr(table, "closed_stream_shards", [])
    return [*closed, table.stream_shard] if table.stream_shard is not None else closed


def close_shard(table: Table) -> None:
    """Close the table's open shard and open its child, which starts at the next sequence number."""
    parent = table.stream_shard
    assert parent is not None
    child = StreamShard(parent.account_id, table)
    child.id = f"shardId-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    child.starting_sequence_number = parent.starting_sequence_number + len(parent.items)
    child.parent_shard_id = parent.id  # type: ignore[attr-defined]
    parent.ending_sequence_number = child.starting_sequence_number - 1  # type: ignore[attr-defined]
    table.closed_stream_shards = [*getattr(table, "closed_stream_shards", []), parent]  # type: ignore[attr-defined]
    table.stream_shard = child


def roll_shards(records_per_shard: int) -> None:
    """Close each stream shard after `records_per_shard` records (see the module's docstring)."""
    moto_add, moto_describe, moto_get = StreamShard.add, DynamoDBStreamsBackend.describe_stream, ShardIterator.get

    def add(self: StreamShard, old: Any, new: Any) -> None:
        moto_add(self, old, new)
        if self.table.stream_shard is self and len(self.items) >= records_per_shard:
            close_shard(self.table)

    def to_json(self: StreamShard) -> dict[str, Any]:
        numbers = {"StartingSequenceNumber": str(self.starting_sequence_number)}
        ending = getattr(self, "ending_sequence_number", None)
        if ending is not None:
            numbers["EndingSequenceNumber"] = str(ending)
        parent = getattr(self, "parent_shard_id", None)
        return {"ShardId": self.id, "SequenceNumberRange": numbers, **({"ParentShardId": parent} if parent else {})}

    def describe_stream(self: DynamoDBStreamsBackend, arn: str) -> dict[str, Any]:
        stream = moto_describe(self, arn)
        stream["Shards"] = [shard.to_json() for shard in stream_shards(self._get_table_from_arn(arn))]
        return stream

    def get_shard_iterator(self: DynamoDBStreamsBackend, arn: str, shard_id: str, shard_iterator_type: str,
                           sequence_number: str | None = None) -> ShardIterator:
        shard = next((s for s in stream_shards(self._get_table_from_arn(arn)) if s.id == shard_id), None)
        if shard is None:
            raise ResourceNotFoundException(f"Requested resource not found: Shard {shard_id} does not exist")
        iterator = ShardIterator(self, shard, shard_iterator_type, sequence_number)  # type: ignore[arg-type]
        self.shard_iterators[iterator.arn] = iterator
        return iterator

    def get(self: ShardIterator, limit: int = 1000) -> dict[str, Any]:
        result = moto_get(self, limit)
        ending = getattr(self.stream_shard, "ending_sequence_number", None)
        following = self.streams_backend.shard_iterators
        if ending is not None and following[result["NextShardIterator"]].sequence_number > ending:
            del following[result.pop("NextShardIterator")]  # a closed shard read to its end
        return result

    StreamShard.add = add  # type: ignore[method-assign]
    StreamShard.to_json = to_json  # type: ignore[method-assign]
    DynamoDBStreamsBackend.describe_stream = describe_stream  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator  # type: ignore[method-assign]
    ShardIterator.get = get  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    repair()
    records_per_shard = os.environ.get(SHARD_RECORDS_ENV)
    if records_per_shard:
        roll_shards(int(records_per_shard))
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Reads a table's DynamoDB stream from the emulator and shapes the records as Lambda receives them,
so the app's real stream handler can be fed (chalice.test has no stream event generator)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_dynamodbstreams.literals import ShardIteratorTypeType
    from mypy_boto3_dynamodbstreams.type_defs import RecordTypeDef, ShardTypeDef



class StreamReader:
    """Follows every shard of one table's stream, as Lambda's event source mapping does: each shard
    from its start (TRIM_HORIZON), new shards as they open, and a child shard only once its parent
    has been read to its end, so that each key's changes arrive in order.

    `start="LATEST"` opens the shards that exist now at their end (a test that wants only what it
    writes next); shards that open later are still read from their start."""

    def __init__(self, streams_client: DynamoDBStreamsClient, stream_arn: str, region: str,
                 start: ShardIteratorTypeType = "TRIM_HORIZON") -> None:
        self._streams = streams_client
        self.stream_arn = stream_arn
        self.region = region
        self._parents: dict[str, str | None] = {}  # shard -> its parent, for every shard seen
        self._iterators: dict[str, str] = {}  # the shards being read -> where the next read starts
        self._finished: set[str] = set()  # closed shards read to their end
        self._refresh_shards(first=start)

    def _shards(self) -> list[ShardTypeDef]:
        shards: list[ShardTypeDef] = []
        params: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**params)["StreamDescription"]
            shards += description.get("Shards", [])
            if not description.get("LastEvaluatedShardId"):
                return shards
            params["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _refresh_shards(self, first: ShardIteratorTypeType = "TRIM_HORIZON") -> None:
        for shard in self._shards():
            shard_id = shard["ShardId"]
            if shard_id not in self._parents:
                self._parents[shard_id] = shard.get("ParentShardId")
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=first)["ShardIterator"]

    def _ready(self, shard_id: str) -> bool:
        """A shard is read once its parent is finished, or was never seen (trimmed from the stream)."""
        parent = self._parents[shard_id]
        return parent is None or parent in self._finished or parent not in self._parents

    def poll(self, limit: int = 1000) -> list[dict[str, Any]]:
        """New records since the last poll, in order, shaped as a Lambda DynamoDB event's Records."""
        self._refresh_shards()
        records: list[dict[str, Any]] = []
        for shard_id in list(self._iterators):  # in the order DescribeStream lists them: parents first
            if not self._ready(shard_id):
                continue
            response = self._streams.get_records(ShardIterator=self._iterators[shard_id], Limit=limit)
            records += [self._as_lambda_record(r) for r in response.get("Records", [])]
            following = response.get("NextShardIterator")
            if following:
                self._iterators[shard_id] = following
            else:  # a closed shard, read to its end: its children come next
                del self._iterators[shard_id]
                self._finished.add(shard_id)
        return records

    def _as_lambda_record(self, record: RecordTypeDef) -> dict[str, Any]:
        data = dict(record["dynamodb"])
        stamp = data.get("ApproximateCreationDateTime")
        if isinstance(stamp, datetime):
            data["ApproximateCreationDateTime"] = stamp.timestamp()  # Lambda delivers epoch seconds
        return {**dict(record), "dynamodb": data, "eventSourceARN": self.stream_arn, "awsRegion": self.region}


def lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}

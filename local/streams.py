"""Reads a table's DynamoDB stream from the emulator and shapes the records as Lambda receives them,
so the app's real stream handler can be fed (chalice.test has no stream event generator)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_dynamodbstreams.literals import ShardIteratorTypeType
    from mypy_boto3_dynamodbstreams.type_defs import RecordTypeDef



class StreamReader:
    """Follows every shard of one table's stream from where it was opened."""

    def __init__(self, streams_client: DynamoDBStreamsClient, stream_arn: str, region: str,
                 from_start: bool = False) -> None:
        self._streams = streams_client
        self.stream_arn = stream_arn
        self.region = region
        self._iterators: dict[str, str | None] = {}
        self._from_start = from_start
        self._refresh_shards()

    def _refresh_shards(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self._iterators:
                kind: ShardIteratorTypeType = "TRIM_HORIZON" if self._from_start or self._iterators else "LATEST"
                self._iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind)["ShardIterator"]

    def poll(self, limit: int = 1000) -> list[dict[str, Any]]:
        """New records since the last poll, in order, shaped as a Lambda DynamoDB event's Records."""
        self._refresh_shards()
        records: list[dict[str, Any]] = []
        for shard, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            response = self._streams.get_records(ShardIterator=iterator, Limit=limit)
            self._iterators[shard] = response.get("NextShardIterator")
            records += [self._as_lambda_record(r) for r in response.get("Records", [])]
        return records

    def _as_lambda_record(self, record: RecordTypeDef) -> dict[str, Any]:
        data = dict(record["dynamodb"])
        stamp = data.get("ApproximateCreationDateTime")
        if isinstance(stamp, datetime):
            data["ApproximateCreationDateTime"] = stamp.timestamp()  # Lambda delivers epoch seconds
        return {**dict(record), "dynamodb": data, "eventSourceARN": self.stream_arn, "awsRegion": self.region}


def lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}

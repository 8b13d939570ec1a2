"""The local stream poller reads as Lambda's event source mapping does: from the start of the
stream, through every shard change, each record once and each key's changes in order.

An emulator of its own closes a stream shard every 40 records (local.moto_server), as DynamoDB
closes shards every few hours; a writer runs before, while and after the reader starts."""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest

from local.emulator import Emulator
from local.harness import free_port
from local.streams import StreamReader

RECORDS_PER_SHARD = 40
TABLE = "streams-test"
KEYS = 60
ROUNDS = 6  # each key is written 6 times: 360 records, 9 shards


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator.start(free_port(), shard_records=RECORDS_PER_SHARD)
    emulator.dynamodb("us-east-1").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    yield emulator
    emulator.stop()


def test_every_record_arrives_once_in_order_across_shard_changes_while_the_reader_starts(
        emulator: Emulator) -> None:
    ddb = emulator.dynamodb("us-east-1")
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    written = 0
    started = threading.Event()

    def write() -> None:
        nonlocal written
        for round_ in range(ROUNDS):
            for key in range(KEYS):
                ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"k{key}"}, "round": {"N": str(round_)}})
                written += 1
                if written == 100:  # two shards closed already: the reader starts now, mid-write
                    started.set()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(timeout=60)
    reader = StreamReader(emulator.client("dynamodbstreams", "us-east-1"), arn, "us-east-1")
    delivered: list[dict] = []
    while writer.is_alive() or len(delivered) < KEYS * ROUNDS:
        batch = reader.poll(limit=25)
        delivered += batch
        if not batch and not writer.is_alive():
            break
    writer.join()
    delivered += reader.poll()

    shards = emulator.client("dynamodbstreams", "us-east-1").describe_stream(StreamArn=arn)[
        "StreamDescription"]["Shards"]
    assert len(shards) == KEYS * ROUNDS // RECORDS_PER_SHARD + 1  # 9 closed, 1 open (and empty)
    assert all("ParentShardId" in shard for shard in shards[1:])
    assert all("EndingSequenceNumber" in shard["SequenceNumberRange"] for shard in shards[:-1])

    sequence = [int(record["dynamodb"]["SequenceNumber"]) for record in delivered]
    assert len(delivered) == KEYS * ROUNDS and len(set(sequence)) == len(sequence)  # all of them, once each
    assert sequence == sorted(sequence)  # a child shard only after its parent: in write order
    rounds: dict[str, list[int]] = defaultdict(list)
    for record in delivered:
        rounds[record["dynamodb"]["Keys"]["pk"]["S"]].append(int(record["dynamodb"]["NewImage"]["round"]["N"]))
    assert all(seen == list(range(ROUNDS)) for seen in rounds.values()) and len(rounds) == KEYS
    assert {record["eventName"] for record in delivered[:KEYS]} == {"INSERT"}
    assert reader.poll() == []


def test_a_reader_opened_at_latest_sees_only_what_comes_next_and_follows_the_next_shards(
        emulator: Emulator) -> None:
    ddb = emulator.dynamodb("us-east-1")
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    reader = StreamReader(emulator.client("dynamodbstreams", "us-east-1"), arn, "us-east-1", start="LATEST")
    for key in range(RECORDS_PER_SHARD * 2):  # closes two more shards
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"latest{key}"}})
    delivered = reader.poll() + reader.poll() + reader.poll()
    assert [record["dynamodb"]["Keys"]["pk"]["S"] for record in delivered] == [
        f"latest{key}" for key in range(RECORDS_PER_SHARD * 2)]

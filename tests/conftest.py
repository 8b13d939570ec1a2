"""Shared fixtures: one moto server for the session with the real regional template deployed in
both regions, emptied between tests, and Chalice test clients of the real app pointed at it."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

# The app registers its stream handler only when given the stream's ARN, as at deploy time.
# X-Ray stays off in tests, as in the local stack (the stages' config turns it on in AWS).
os.environ["AWS_XRAY_SDK_ENABLED"] = "false"
os.environ.setdefault("TABLE_STREAM_ARN", "arn:aws:dynamodb:us-east-1:123456789012:table/devops-metrics-dev/stream/x")

import app as app_module  # noqa: E402 - after the environment it reads at import
from chalicelib import names
from local.emulator import Emulator, deploy_all
from local.harness import free_port
from local.streams import StreamReader
from ops.regions import Regions

STAGE = "dev"
PRIMARY = "us-east-1"
DR = "us-west-2"
TABLE = names.table(STAGE)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator.start(free_port())
    deploy_all(emulator, STAGE, (PRIMARY, DR))
    yield emulator
    emulator.stop()


def empty_table(emulator: Emulator, region: str) -> None:
    """Delete every item (a test-only Scan; the app never scans)."""
    ddb = emulator.client("dynamodb", region)
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE, ProjectionExpression="pk, sk"):
        for start in range(0, len(page["Items"]), 25):
            deletes = [{"DeleteRequest": {"Key": key}} for key in page["Items"][start:start + 25]]
            ddb.batch_write_item(RequestItems={TABLE: deletes})


@pytest.fixture
def aws(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The emulator with empty tables, and this process's AWS settings pointed at it."""
    for region in (PRIMARY, DR):
        empty_table(emulator, region)
    for name, value in emulator.env(PRIMARY).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield emulator


def app_client(monkeypatch: pytest.MonkeyPatch, region: str, stage: str = STAGE) -> Client:
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setattr(app_module, "_CONTEXT", None)
    monkeypatch.setattr(app_module, "_SECRETS", None)
    return Client(app_module.app, stage_name=stage)


@pytest.fixture
def client(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The app as deployed in the primary region (us-east-1)."""
    with app_client(monkeypatch, PRIMARY) as test_client:
        yield test_client


@pytest.fixture
def standby_client(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The app as deployed in the DR region (us-west-2)."""
    with app_client(monkeypatch, DR, f"{STAGE}-dr") as test_client:
        yield test_client


@pytest.fixture
def regions(aws: Emulator) -> Regions:
    """Both regions of the stage, as the operator commands see them (ops.regions)."""
    return Regions(STAGE, aws.endpoint)


@pytest.fixture
def stream(aws: Emulator) -> StreamReader:
    """The primary table's stream, from now on: what the app's stream handler would receive."""
    arn = aws.client("dynamodb", PRIMARY).describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    return StreamReader(aws.client("dynamodbstreams", PRIMARY), arn, PRIMARY, start="LATEST")


def count_items(emulator: Emulator, region: str = PRIMARY) -> int:
    """The items a request could have stored: all but the region's control items (its failover
    record and lease, which a write's lease renewal keeps)."""
    ddb = emulator.client("dynamodb", region)
    return sum(page["Count"] for page in ddb.get_paginator("scan").paginate(
        TableName=TABLE, Select="COUNT", FilterExpression="pk <> :control",
        ExpressionAttributeValues={":control": {"S": "_control"}}))


JSON = {"Content-Type": "application/json"}


def post(client: Client, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post("/metrics", headers=headers or JSON, body=raw)

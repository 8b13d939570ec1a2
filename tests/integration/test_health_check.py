"""The scheduled health check against the emulator: the real handler, the real tables in both
regions, the real SNS topic (read through an SQS queue subscribed to it, as the local stack's alert
console does), and the API probed through the real app."""
from __future__ import annotations

import dataclasses
import io
import json
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.config import Config

import app as app_module
from chalicelib import clients
from chalicelib import constants as C
from chalicelib.context import Context
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.probes import Probes, aws_probes
from local.emf import emf_records, metric_data
from local.harness import Inbox, LambdaContext, free_port
from tests.conftest import DR, PRIMARY, STAGE, TABLE

# A region whose DynamoDB endpoint does not answer: a closed port, failing at once.
_UNREACHABLE = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=0.5, read_timeout=0.5)


@pytest.fixture
def inbox(aws) -> Iterator[Inbox]:
    """An SQS queue subscribed to the primary region's alert topic: each message is one e-mail."""
    sns, sqs = aws.client("sns", PRIMARY), aws.client("sqs", PRIMARY)
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f"{STAGE}-alerts"))
    inbox = Inbox(sqs, sns, topic, f"health-check-inbox-{uuid.uuid4().hex[:12]}")
    yield inbox
    inbox.close()


@pytest.fixture
def checker(client, aws, inbox, monkeypatch) -> Any:
    """Runs the primary region's scheduled health check, probing the app's deep health through the
    Chalice test client; `break_table()` makes this region's DynamoDB endpoint unreachable."""
    monkeypatch.setenv("ALERT_TOPIC_ARN", inbox.topic_arn)
    monkeypatch.setattr(app_module, "_CONTEXT", None)
    monkeypatch.setattr(app_module, "_HEALTH_CONTEXT", None)
    monkeypatch.setattr(app_module, "_PROBES", None)

    def via_app(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
        response = client.http.get("/health?deep=true")
        return response.status_code, json.loads(response.body)

    class Checker:
        lambda_context = LambdaContext()

        def probes(self) -> Probes:
            settings = app_module.context().settings
            probes = aws_probes(settings, self.lambda_context)
            return dataclasses.replace(probes, api_url="http://api.test", http_get=via_app)

        def run(self) -> dict[str, Any]:
            monkeypatch.setattr(app_module, "_PROBES", self.probes())
            event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                                    detail={}, resources=[])
            response = client.lambda_.invoke(C.HEALTH_CHECK_FUNCTION, event)
            assert response.payload is not None, "the health check raised"
            return dict(response.payload)

        def break_table(self) -> None:
            """Both the API's and the health check's clients of this region's table stop answering."""
            dead = boto3.client("dynamodb", region_name=PRIMARY, endpoint_url=f"http://127.0.0.1:{free_port()}",
                                config=_UNREACHABLE)
            for name, ctx in (("_CONTEXT", app_module.context()), ("_HEALTH_CONTEXT", app_module.health_context())):
                monkeypatch.setattr(app_module, name, Context(ctx.settings, Table(dead, TABLE, PRIMARY),
                                                              ctx.peer))

        def restore_table(self) -> None:
            monkeypatch.setattr(app_module, "_CONTEXT", None)
            monkeypatch.setattr(app_module, "_HEALTH_CONTEXT", None)

    return Checker()


def test_a_healthy_service_sends_nothing_and_records_a_sample_with_ttl(checker, inbox, aws) -> None:
    result = checker.run()
    assert result["healthy"] is True and result["alert"] is None
    assert result["checks"] == {"api": "ok", "table": "ok", "replica-table": "ok", "replication": "ok",
                                "lambda": "skipped"}
    assert inbox.receive() == []
    samples = aws.client("dynamodb", PRIMARY).query(
        TableName=TABLE, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": C.CONTROL_PK}, ":s": {"S": C.HEALTH_SAMPLE_SK_PREFIX}})["Items"]
    assert len(samples) == 1 and int(samples[0][C.TTL_ATTRIBUTE]["N"]) > 0
    assert samples[0]["healthy"]["N"] == "1"


def test_an_unavailable_table_alerts_once_in_ten_runs_and_recovers_once(checker, inbox, aws) -> None:
    checker.run()
    checker.break_table()
    first = checker.run()
    assert first["healthy"] is False and first["alert"] == "unhealthy"
    assert first["checks"]["table"] == "fail" and first["checks"]["api"] == "fail"
    mails = inbox.receive()
    assert len(mails) == 1
    assert mails[0].subject == f"[devops-metrics {STAGE} {PRIMARY}] UNHEALTHY: api, table"
    assert "What failed:" in mails[0].body and "What to do first:" in mails[0].body
    assert "dr/RUNBOOK.md" in mails[0].body
    # while this region's table is down, the alert state lives on in the peer region's table
    peer_state = ControlStore(Table(aws.client("dynamodb", DR), TABLE, DR)).get(C.HEALTH_STATE_SK_PREFIX + PRIMARY)
    assert peer_state is not None and peer_state["alerted"] == "unhealthy"

    for _ in range(9):
        assert checker.run()["alert"] is None
    assert inbox.receive() == []

    checker.restore_table()
    runs = [checker.run()["alert"] for _ in range(C.HEALTH_RECOVERY_RUNS + 2)]
    assert runs.count("recovered") == 1
    mails = inbox.receive()
    assert [m.subject for m in mails] == [f"[devops-metrics {STAGE} {PRIMARY}] RECOVERED: every check passes"]


def test_a_flapping_table_sends_one_alert_in_its_first_hour(checker, inbox, aws) -> None:
    """Twelve runs alternating between failing and passing, seconds apart: the first failure is
    mailed; the flapping that follows is recorded, and its notice waits for the hour to be over."""
    for i in range(12):
        if i % 2 == 0:
            checker.break_table()
        else:
            checker.restore_table()
        checker.run()
    subjects = [m.subject.split("] ", 1)[1] for m in inbox.receive()]
    assert subjects == ["UNHEALTHY: api, table"]
    state = ControlStore(Table(aws.client("dynamodb", DR), TABLE, DR)).get(C.HEALTH_STATE_SK_PREFIX + PRIMARY)
    assert state is not None and (state["alerted"], state["notified"]) == ("flapping", "unhealthy")


def test_an_alert_that_could_not_be_published_is_sent_by_the_next_run(checker, inbox, monkeypatch) -> None:
    checker.break_table()
    failing = dataclasses.replace(checker.probes(), publish=_raise_endpoint_error)
    monkeypatch.setattr(app_module, "_PROBES", failing)
    event = {"version": "0", "id": "run-1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": PRIMARY, "resources": [],
             "detail": {}}
    first = app_module.health_check(event, LambdaContext())  # the run completes: metrics, sample, state
    assert first["alert"] is None and any("alert not published" in note for note in first["notes"])
    assert inbox.receive() == []
    result = checker.run()  # the next run finds the alert pending and sends it
    assert result["alert"] is None  # nothing new to decide: still unhealthy
    assert [m.subject.split("] ", 1)[1] for m in inbox.receive()] == ["UNHEALTHY: api, table"]


def _raise_endpoint_error(subject: str, message: str) -> None:
    raise ConnectionError("SNS endpoint unreachable")


def test_the_lambda_check_finds_a_missing_or_failed_function(checker, inbox, aws) -> None:
    iam = aws.client("iam", PRIMARY)
    role = iam.create_role(RoleName="health-check-test", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    lam = aws.client("lambda", PRIMARY)
    prefix = f"devops-metrics-{STAGE}"
    names = [prefix] + [f"{prefix}-{name}" for name in C.APP_FUNCTIONS if name != "publish_dora"]
    for name in names:
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                            Code={"ZipFile": code.getvalue()})
    checker.lambda_context = LambdaContext(function_name=f"{prefix}-{C.HEALTH_CHECK_FUNCTION}",
                                    invoked_function_arn=f"arn:aws:lambda:{PRIMARY}:123456789012:function:x")
    try:
        result = checker.run()
        assert result["checks"]["lambda"] == "fail"
        mails = inbox.receive()
        assert len(mails) == 1 and "lambda" in mails[0].subject
        assert f"{prefix}-publish_dora: ResourceNotFoundException" in mails[0].body
    finally:
        for name in names:
            lam.delete_function(FunctionName=name)
        iam.delete_role(RoleName="health-check-test")


def test_each_run_emits_health_check_metrics_and_one_log_line(checker, capsys) -> None:
    capsys.readouterr()
    checker.run()
    out = capsys.readouterr().out.splitlines()
    emitted = {(datum["MetricName"], next(d["Value"] for d in datum["Dimensions"] if d["Name"] == "Check"),
                datum["Value"])
               for record in emf_records(out) for _, datum in metric_data(record)
               if datum["MetricName"] == "HealthCheckFailed"}
    assert emitted == {("HealthCheckFailed", check, 0.0)
                       for check in ("overall", "api", "table", "replica-table", "replication")}
    runs = [json.loads(line) for line in out if '"message":"run"' in line]
    assert len(runs) == 1 and runs[0]["handler"] == "health_check" and runs[0]["status"] == "ok"
    assert runs[0]["level"] == "INFO" and runs[0]["duration_ms"] > 0


def test_the_standby_checks_what_it_owns_and_whether_replicated_data_still_arrives(standby_client, aws) -> None:
    ctx = app_module.context()
    probes = dataclasses.replace(aws_probes(ctx.settings, LambdaContext()),
                                 api_url=None, publish=lambda subject, message: None)
    from chalicelib.checks import run_checks
    from chalicelib.times import utc_now

    checks = {c.name: c.status for c in run_checks(ctx, probes, utc_now())}
    # no heartbeat has arrived yet: replication is not judged ("unknown" is not a failure)
    assert checks == {"api": "skipped", "table": "ok", "replication": "ok", "lambda": "skipped"}


def test_a_stale_copy_of_the_state_in_one_region_does_not_send_an_alert_twice(checker, inbox, aws) -> None:
    """The state is saved to both tables; when one save was lost, the newer copy (by save count) wins."""
    checker.break_table()
    checker.run()
    assert len(inbox.receive()) == 1
    checker.restore_table()
    key = C.HEALTH_STATE_SK_PREFIX + PRIMARY
    local = ControlStore(Table(aws.client("dynamodb", PRIMARY), TABLE, PRIMARY))
    newest = ControlStore(Table(aws.client("dynamodb", DR), TABLE, DR)).get(key)
    assert newest is not None
    # this region's copy is an older save that still holds the alert as pending
    local.put(key, {**newest, "seq": int(newest["seq"]) - 1,
                            "pending_subject": "[old] UNHEALTHY", "pending_message": "sent already"})
    checker.run()
    assert inbox.receive() == []


def test_the_standby_alerts_when_replicated_data_stops_arriving(standby_client, aws, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "_HEALTH_CONTEXT", None)
    stalled = datetime.now(timezone.utc) - timedelta(seconds=C.REPLICATION_STALL_SECONDS + 60)
    ControlStore(Table(aws.client("dynamodb", DR), TABLE, DR)).put(
        C.HEARTBEAT_SK, {"lag_seconds": 0.2, "updated_at": stalled.isoformat(), "source_region": PRIMARY})
    ctx = app_module.health_context()
    sent: list[str] = []
    probes = dataclasses.replace(aws_probes(ctx.settings, LambdaContext()),
                                 api_url=None, publish=lambda subject, message: sent.append(subject))
    from chalicelib.health_check import run_health_check
    from chalicelib.times import utc_now

    report = run_health_check(ctx, probes, utc_now())
    assert {c.name: c.status for c in report.checks}["replication"] == "fail"
    assert sent == [f"[devops-metrics {STAGE} {DR}] UNHEALTHY: replication"]


def test_a_table_that_never_answers_is_reported_well_inside_the_lambda_timeout(checker, inbox, monkeypatch) -> None:
    """A table endpoint that accepts connections and never answers: the run still ends, reports the
    table, and alerts, in a small part of the health check function's 120 s timeout."""
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)  # connections are accepted by the kernel, then nothing is ever read or sent
    try:
        ctx = app_module.health_context()
        client = clients.dynamodb(PRIMARY, "health", f"http://127.0.0.1:{hanging.getsockname()[1]}")
        store = Table(client, TABLE, PRIMARY)
        monkeypatch.setattr(app_module, "_HEALTH_CONTEXT", Context(ctx.settings, store, ctx.peer))
        started = time.monotonic()
        result = checker.run()
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert result["checks"]["table"] == "fail" and result["alert"] == "unhealthy"
    assert elapsed < 60, elapsed
    assert len(inbox.receive()) == 1

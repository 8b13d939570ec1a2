"""`python -m dr readiness` against moto's server with the regional stack in both regions (an
emulator of its own: these tests delete an index and a secret): the regions as deployed match;
a deleted index, a missing secret, a stale heartbeat and no recent drill are each named; the daily
function emits the count of findings."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

import app as app_module
from chalicelib import constants as C
from chalicelib import names, readiness
from chalicelib.replication import ReplicationSweep, Replicator
from chalicelib.times import utc_now
from dr import failover as fo
from local.emulator import Emulator, apply_global_endpoint, deploy_all
from local.harness import Inbox, free_port
from local.workers import run_scheduled
from ops.regions import Regions
from ops.templates import REGIONAL_TEMPLATE, ROOT, load_template
from tests.conftest import DR, PRIMARY, STAGE


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[Emulator]:
    emulator = Emulator.start(free_port())
    try:
        outputs = deploy_all(emulator, STAGE, (PRIMARY, DR))
        for region in (PRIMARY, DR):  # someone is e-mailed in each region (an SQS queue stands in)
            Inbox(emulator.sqs(region), emulator.sns(region), outputs[region]["AlertTopicArn"], "readiness-inbox")
        zone = emulator.route53().create_hosted_zone(Name="example.test.", CallerReference="readiness")
        zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
        for region in (PRIMARY, DR):
            apply_global_endpoint(emulator, region, STAGE, zone_id, "metrics.example.test", PRIMARY)
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def regions(own_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Regions:
    for name, value in own_emulator.env(PRIMARY).items():
        monkeypatch.setenv(name, value)
    regions = Regions(STAGE, own_emulator.endpoint)
    fo.failover(regions, DR, force=True, step=lambda _: None, sleep=lambda _: None)  # a game day
    fo.failover(regions, PRIMARY, force=True, step=lambda _: None, sleep=lambda _: None)
    ReplicationSweep(regions.table(PRIMARY), Replicator(regions.table(DR), PRIMARY)).run(utc_now())  # a heartbeat
    return regions


def findings(regions: Regions) -> list[tuple[str, str]]:
    return [(f.check, f.message) for f in readiness.check(regions, utc_now()).findings]


def test_the_regions_as_the_template_deploys_them_are_ready(regions: Regions) -> None:
    report = readiness.check(regions, utc_now())
    assert report.findings == []
    assert report.facts["indexes"][PRIMARY] == report.facts["indexes"][DR] and set(report.facts["indexes"][DR]) == {
        "gsi1", "changes"}
    assert report.facts["record"][PRIMARY]["failover"] == "PRIMARY"
    assert report.facts["record"][DR]["failover"] == "SECONDARY"
    assert report.facts["health check"][DR]["search"] == '"role":"active"'
    assert report.facts["last drill"]["what"] == "failover (to us-east-1)"
    assert any("no function of this stage" in note for note in report.notes)  # the emulator runs none


def test_a_deleted_index_and_a_missing_secret_are_named_and_the_command_exits_1(
        regions: Regions, own_emulator: Emulator) -> None:
    ddb = own_emulator.dynamodb(DR)
    ddb.update_table(TableName=names.table(STAGE), GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "changes"}}])
    secret = names.webhook_secret(STAGE, "gitlab")
    sm = own_emulator.secretsmanager(DR)
    value = sm.get_secret_value(SecretId=secret)["SecretString"]
    sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    try:
        found = findings(regions)
        assert ("indexes", f"changes: {PRIMARY} {{'keys': [{{'AttributeName': 'change_bucket', 'KeyType': 'HASH'}}, "
                           f"{{'AttributeName': 'change_key', 'KeyType': 'RANGE'}}], 'projection': "
                           f"{{'ProjectionType': 'ALL'}}}}, {DR} 'missing'") in found
        assert ("secrets", f"{DR}: {secret} missing") in found
        assert len(found) == 2, found
        result = subprocess.run([sys.executable, "-m", "dr", "readiness", "--stage", STAGE, "--json"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120,
                                env={"PATH": "/usr/bin:/bin", **own_emulator.env(PRIMARY)})
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        assert report["ready"] is False and {f["check"] for f in report["findings"]} == {"indexes", "secrets"}
        text = subprocess.run([sys.executable, "-m", "dr", "readiness", "--stage", STAGE], cwd=ROOT,
                              capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", **own_emulator.env(PRIMARY)}).stdout
        assert "2 finding(s)" in text and f"{secret} missing" in text
    finally:
        attributes = load_template(REGIONAL_TEMPLATE)["Resources"]["MetricsTable"]["Properties"]["AttributeDefinitions"]
        ddb.update_table(TableName=names.table(STAGE), AttributeDefinitions=attributes, GlobalSecondaryIndexUpdates=[{
            "Create": {"IndexName": "changes", "KeySchema": [{"AttributeName": "change_bucket", "KeyType": "HASH"},
                                                      {"AttributeName": "change_key", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}}])
        sm.create_secret(Name=secret, SecretString=value)
    assert findings(regions) == []


def test_a_stale_heartbeat_and_an_old_drill_are_findings(regions: Regions) -> None:
    later = utc_now() + timedelta(days=C.DRILL_MAX_AGE_DAYS + 1)
    found = [check for check, _ in ((f.check, f.message) for f in readiness.check(regions, later).findings)]
    assert found == ["replication", "last drill"]


def test_the_daily_function_emits_the_number_of_findings(regions: Regions, own_emulator: Emulator,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    topic = regions.topic_arn(PRIMARY)
    assert topic is not None
    for name, value in {"APP_STAGE": STAGE, "TABLE_NAME": names.table(STAGE), "ALERT_TOPIC_ARN": topic,
                        "AWS_DEFAULT_REGION": PRIMARY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app_module, "_HEALTH_CONTEXT", None)
    own_emulator.secretsmanager(DR).delete_secret(SecretId=names.webhook_secret(STAGE, "github"),
                                                  ForceDeleteWithoutRecovery=True)
    try:
        result = run_scheduled(app_module, PRIMARY, C.READINESS_FUNCTION)  # the event EventBridge sends
    finally:
        own_emulator.secretsmanager(DR).create_secret(Name=names.webhook_secret(STAGE, "github"), SecretString="x")
    assert result["ready"] is False and {f["check"] for f in result["findings"]} == {"secrets"}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ReadinessFindings"' in line]
    assert [(line["ReadinessFindings"], line["Region"], line["Stage"]) for line in emf] == [(1, PRIMARY, STAGE)]

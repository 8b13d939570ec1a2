"""Items written by an earlier release stay readable, countable and replicable, and `dr migrate`
brings them to today's layout.

tests/fixtures/items_release_0_1.json holds every item release 0.1.0 wrote for a batch of events
(its key layout and its idempotency records), captured from moto's server. The test loads those
items as they are and reads them back through today's code: a change to the layout that would
strand stored data fails here first.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import jobs
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore
from chalicelib.summary import service_summary
from dr import verify as vf
from dr.migrate import migrate
from ops.regions import Regions
from tests.conftest import DR, PRIMARY, STAGE, TABLE, post

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "items_release_0_1.json").read_text())


@pytest.fixture
def stored(aws: Any) -> Table:
    """us-east-1's table holding exactly what release 0.1.0 wrote."""
    table = Table(aws.client("dynamodb", PRIMARY), TABLE, PRIMARY)
    table.batch_write(FIXTURE["items"])
    return table


def test_events_written_by_release_0_1_are_listed_as_they_were_posted(client: Any, stored: Table) -> None:
    items = client.http.get("/metrics?service=checkout&limit=100").json_body["items"]
    assert all(i["revision"] == 1 and i["first_received_at"] == i["received_at"] for i in items)
    assert sorted(i["id"] for i in items) == ["INC-7", "build-812", "coverage-2026-11-20", "release-1", "release-2",
                                             "release-3"]
    release_3 = next(i for i in items if i["id"] == "release-3")
    assert (release_3["timestamp"], release_3["commit_sha"]) == ("2026-11-22T11:00:00Z", "b2c3d4e")
    staging = client.http.get("/metrics?service=payments&environment=staging").json_body["items"]
    assert [i["id"] for i in staging] == ["v1.2.0"]
    across = client.http.get("/metrics?kind=deployment&since=2026-11-01T00:00:00Z").json_body["items"]
    assert {i["service"] for i in across} == {"checkout", "payments"} and len(across) == 4  # production only


def test_they_count_in_the_dora_summary(stored: Table) -> None:
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    summary = service_summary(EventStore(stored), "checkout", "production", 30, now)
    assert summary["deployment_frequency"]["count"] == 2
    assert summary["lead_time_for_changes"] == {"value": 4.0, "unit": "hours", "count": 2, "tier": "elite"}
    failure_rate = summary["change_failure_rate"]
    assert failure_rate["count"] == 3 and failure_rate["value"] == pytest.approx(1 / 3)  # release-2, of 3
    assert summary["time_to_restore"]["value"] == 2.0


def test_after_dr_migrate_a_repost_is_a_duplicate(client: Any, stored: Table) -> None:
    report = migrate(stored, datetime.now(timezone.utc))
    assert (report.events, report.adopted, report.legacy_removed) == (8, 8, 7)
    answer = post(client, {"events": FIXTURE["events"]})
    assert answer.status_code == 201
    body = answer.json_body
    assert body["ids"][:4] == FIXTURE["answer"]["ids"][:4] and body["ids"][5:] == FIXTURE["answer"]["ids"][5:]
    # every event with an id is recognised by the content hash its 0.1.0 record kept; the one
    # without an id is, as always, a new event
    assert (body["created"], body["updated"], body["duplicates"], body["stale"]) == (1, 0, 7, 0)


def test_dr_migrate_is_idempotent_and_a_second_run_changes_nothing(stored: Table, aws: Any) -> None:
    migrate(stored, datetime.now(timezone.utc))
    before = {key: version for key, version in vf.live_versions(stored).items()}
    again = migrate(stored, datetime.now(timezone.utc))
    assert (again.events, again.adopted, again.already, again.legacy_removed) == (8, 0, 8, 0)
    assert vf.live_versions(stored) == before
    assert len(before) == 16  # 8 events and their 8 identity records; the 7 old records are tombstones


def test_a_migrated_event_can_be_read_revised_and_deleted_by_its_identity(client: Any, stored: Table) -> None:
    migrate(stored, datetime.now(timezone.utc))
    incident = client.http.get("/metrics/incident/INC-7?service=checkout").json_body
    assert (incident["revision"], incident["resolved_at"]) == (1, "2026-11-21T14:10:00Z")
    posted = next(e for e in FIXTURE["events"] if e.get("id") == "INC-7")
    reopened = {k: v for k, v in posted.items() if k != "resolved_at"}
    assert post(client, reopened).json_body["updated"] == 1
    assert client.http.get("/metrics/incident/INC-7?service=checkout").json_body["revision"] == 2
    assert client.http.delete("/metrics/build/build-812?service=checkout").status_code == 204
    ids = {i["id"] for i in client.http.get("/metrics?service=checkout").json_body["items"]}
    assert "build-812" not in ids and "INC-7" in ids


def test_they_replicate_and_verify_as_equal(client: Any, aws: Any, stored: Table) -> None:
    migrate(stored, datetime.now(timezone.utc))
    report = jobs.sweep(app_module.context(), datetime.now(timezone.utc))  # no checkpoint yet: a full copy
    assert report["copied"] >= len(FIXTURE["items"])
    regions = Regions(STAGE, aws.endpoint)
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []
    assert len(vf.live_versions(regions.table(DR))) == 16

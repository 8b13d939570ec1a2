"""Webhooks from GitHub, GitLab, PagerDuty and CDEvents producers, through chalice.test.Client against
moto's server with the real template (its secrets created as the template says).

The payloads are the sources' own published examples (tests/fixtures/webhooks, each file naming where
it comes from). Where a test needs a state the example does not show (a label, a later time), it says
which field it changes.
"""
from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import constants as C
from chalicelib import names
from chalicelib import webhook_auth as auth
from chalicelib.times import parse_time
from tests.conftest import PRIMARY, STAGE, count_items

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def fixture(name: str) -> dict[str, Any]:
    """A fixture's payload and the event type its source sends it as."""
    data = json.loads((FIXTURES / name).read_text())
    return {"event": data["event"], "payload": data["payload"]}


def secret(aws: Any, source: str, region: str = PRIMARY, stage: str = "AWSCURRENT") -> str:
    sm = aws.client("secretsmanager", region)
    value: str = sm.get_secret_value(SecretId=names.webhook_secret(STAGE, source), VersionStage=stage)["SecretString"]
    return value


_DELIVERIES = iter(range(1, 1_000_000))


def headers_for(source: str, event: str, body: bytes, key: str, delivery: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **auth.sign(source, body, key)}
    delivery = delivery or f"delivery-{next(_DELIVERIES)}"
    if source == "github":
        headers |= {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    elif source == "gitlab":
        headers |= {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery}
    return headers


def deliver(client: Any, aws: Any, source: str, event: str, payload: Any, delivery: str | None = None,
            key: str | None = None, query: str = "", region: str = PRIMARY) -> Any:
    body = json.dumps(payload).encode()
    headers = headers_for(source, event, body, key or secret(aws, source, region), delivery)
    return client.http.post(f"/webhooks/{source}{query}", headers=headers, body=body)


def send(client: Any, aws: Any, source: str, name: str, **kwargs: Any) -> Any:
    data = fixture(name)
    return deliver(client, aws, source, data["event"], data["payload"], **kwargs)


def event_of(client: Any, kind: str, event_id: str, service: str, environment: str = "production") -> dict[str, Any]:
    response = client.http.get(f"/metrics/{kind}/{event_id}?service={service}&environment={environment}")
    assert response.status_code == 200, response.body
    body: dict[str, Any] = response.json_body
    return body


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# ---- GitHub --------------------------------------------------------------------------------------

def test_a_github_deployment_status_is_a_deployment_with_its_lifecycle(client, aws) -> None:
    started = send(client, aws, "github", "github/deployment_status.created.in_progress.json")
    assert started.status_code == 200, started.body
    assert started.json_body["ids"] == ["145988746"] and started.json_body["created"] == 1
    running = event_of(client, "deployment", "145988746", "Hello-World", "github-pages")
    assert running["status"] == "in_progress"
    assert running["attributes"] == {"source": "github", "repository": "Codertocat/Hello-World",
                                     "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "ref": "master"}

    done = send(client, aws, "github", "github/deployment_status.created.success.json")
    assert done.status_code == 200, done.body
    deployed = event_of(client, "deployment", "145988746", "Hello-World")  # deployment.environment: production
    assert deployed["status"] == "success" and deployed["timestamp"].startswith("2019-05-15T15:20:55")


@pytest.mark.parametrize(("state", "status"), [("pending", "in_progress"), ("queued", "in_progress"),
                                               ("failure", "failure"), ("error", "failure")])
def test_each_github_deployment_state_maps_to_its_status(client, aws, state: str, status: str) -> None:
    data = fixture("github/deployment_status.created.success.json")
    data["payload"]["deployment_status"]["state"] = state
    assert deliver(client, aws, "github", "deployment_status", data["payload"]).status_code == 200
    assert event_of(client, "deployment", "145988746", "Hello-World")["status"] == status


def test_an_inactive_github_deployment_status_is_ignored(client, aws) -> None:
    data = fixture("github/deployment_status.created.success.json")
    data["payload"]["deployment_status"]["state"] = "inactive"
    response = deliver(client, aws, "github", "deployment_status", data["payload"])
    assert (response.status_code, response.json_body) == (202, {"ignored": "deployment_status.inactive"})
    assert count_items(aws) == 0


def test_a_completed_github_workflow_run_is_a_build(client, aws) -> None:
    data = fixture("github/workflow_run.completed.json")
    data["payload"]["workflow_run"]["updated_at"] = "2020-10-05T16:37:19Z"  # the example finishes as it starts
    response = deliver(client, aws, "github", "workflow_run", data["payload"])
    assert response.status_code == 200, response.body
    build = event_of(client, "build", "289782451.1", "octo-repo")
    assert (build["status"], build["duration_seconds"]) == ("succeeded", 210.0)
    assert "pipeline" not in build  # the example's workflow has no name


def test_a_failed_github_workflow_run_is_a_failed_build_and_a_cancelled_one_is_ignored(client, aws) -> None:
    data = fixture("github/workflow_run.completed.json")
    data["payload"]["workflow_run"]["conclusion"] = "timed_out"
    assert deliver(client, aws, "github", "workflow_run", data["payload"]).status_code == 200
    assert event_of(client, "build", "289782451.1", "octo-repo")["status"] == "failed"
    data["payload"]["workflow_run"]["conclusion"] = "cancelled"
    ignored = deliver(client, aws, "github", "workflow_run", data["payload"])
    assert (ignored.status_code, ignored.json_body) == (202, {"ignored": "workflow_run.completed.cancelled"})
    requested = send(client, aws, "github", "github/workflow_run.requested.json")
    assert (requested.status_code, requested.json_body) == (202, {"ignored": "workflow_run.requested"})


def test_a_github_issue_labelled_incident_opens_and_closes_an_incident(client, aws) -> None:
    data = fixture("github/issues.opened.json")
    unlabelled = deliver(client, aws, "github", "issues", data["payload"])
    assert unlabelled.status_code == 202 and "no 'incident' label" in unlabelled.json_body["ignored"]

    issue = data["payload"]["issue"]
    issue["labels"].append({"name": "Incident"})  # the example's labels, and ours
    assert deliver(client, aws, "github", "issues", data["payload"]).status_code == 200
    opened = event_of(client, "incident", "444500041", "Hello-World")
    assert opened["opened_at"].startswith("2019-05-15T15:20:18") and "resolved_at" not in opened

    closed = copy.deepcopy(data["payload"])
    closed["action"] = "closed"
    closed["issue"] |= {"state": "closed", "closed_at": "2019-05-15T17:20:18Z", "updated_at": "2019-05-15T17:20:18Z"}
    assert deliver(client, aws, "github", "issues", closed).json_body["updated"] == 1
    assert event_of(client, "incident", "444500041", "Hello-World")["resolved_at"].startswith("2019-05-15T17:20:18")


def test_a_github_push_then_a_deployment_gives_lead_time_per_commit(client, aws) -> None:
    """Commits pushed on a branch count from when they were made, though the deployment names only
    the sha it shipped (as after a squash merge): every commit pushed since the previous successful
    deployment, up to that sha."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    push = fixture("github/push.with-new-branch.json")["payload"]
    base = copy.deepcopy(push["commits"][0])

    def commit(sha: str, hours_ago: float) -> dict[str, Any]:
        return {**base, "id": sha, "timestamp": iso(now - timedelta(hours=hours_ago))}

    def deploy(deployment_id: int, sha: str, hours_ago: float) -> Any:
        data = fixture("github/deployment_status.created.success.json")["payload"]
        data["deployment"] |= {"id": deployment_id, "sha": sha}
        data["deployment_status"] |= {"created_at": iso(now - timedelta(hours=hours_ago)),
                                      "updated_at": iso(now - timedelta(hours=hours_ago))}
        return deliver(client, aws, "github", "deployment_status", data)

    feature = copy.deepcopy(push) | {"commits": [commit("a" * 40, 30), commit("b" * 40, 20)]}
    squash = copy.deepcopy(push) | {"commits": [commit("c" * 40, 10)]}
    later = copy.deepcopy(push) | {"commits": [commit("d" * 40, 2)]}
    for body in (feature, squash, later):
        assert deliver(client, aws, "github", "push", body).json_body["commits"] == len(body["commits"])

    assert deploy(1, "c" * 40, 5).status_code == 200  # ships a, b and c; not d, pushed after c
    first = event_of(client, "deployment", "1", "Hello-World")
    assert [c["sha"][0] for c in first["commits"]] == ["a", "b", "c"]
    assert deploy(2, "d" * 40, 1).status_code == 200  # ships only what came since
    assert [c["sha"][0] for c in event_of(client, "deployment", "2", "Hello-World")["commits"]] == ["d"]

    summary = client.http.get("/metrics/summary?service=Hello-World&days=7").json_body
    # lead times 25, 15, 5 (deployment 1) and 1 hour (deployment 2): the median of all four commits
    assert summary["lead_time_for_changes"]["value"] == pytest.approx(10.0)

    again = deploy(1, "c" * 40, 5)  # a retried delivery resolves as the first one did
    assert again.json_body["duplicates"] == 1


def github_deploy(client: Any, aws: Any, deployment_id: int, sha: str, at: datetime, **status: Any) -> Any:
    data = fixture("github/deployment_status.created.success.json")["payload"]
    data["deployment"] |= {"id": deployment_id, "sha": sha}
    data["deployment_status"] |= {"created_at": iso(at), "updated_at": iso(at), **status}
    return deliver(client, aws, "github", "deployment_status", data)


def github_push(client: Any, aws: Any, commits: list[tuple[str, datetime]], delivery: str | None = None) -> Any:
    push = fixture("github/push.with-new-branch.json")["payload"]
    base = push["commits"][0]
    push["commits"] = [{**base, "id": sha, "timestamp": iso(at)} for sha, at in commits]
    return deliver(client, aws, "github", "push", push, delivery=delivery)


def shas(client: Any, deployment_id: int) -> list[str]:
    return [c["sha"][0] for c in event_of(client, "deployment", str(deployment_id), "Hello-World").get("commits", [])]


def test_a_deployment_inside_a_push_leaves_the_rest_of_that_push_to_the_next(client, aws) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    hours = [now - timedelta(hours=h) for h in (10, 9, 8, 2)]
    github_push(client, aws, [("a" * 40, hours[0]), ("b" * 40, hours[1]), ("c" * 40, hours[2])])
    assert github_deploy(client, aws, 1, "b" * 40, now - timedelta(hours=5)).status_code == 200
    assert shas(client, 1) == ["a", "b"]
    github_push(client, aws, [("d" * 40, hours[3])])
    assert github_deploy(client, aws, 2, "d" * 40, now - timedelta(hours=1)).status_code == 200
    assert shas(client, 2) == ["c", "d"]


def test_a_second_success_status_of_one_deployment_ships_the_same_commits(client, aws) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    github_push(client, aws, [("a" * 40, now - timedelta(hours=3)), ("b" * 40, now - timedelta(hours=2))])
    github_deploy(client, aws, 1, "b" * 40, now - timedelta(hours=1))
    again = github_deploy(client, aws, 1, "b" * 40, now - timedelta(minutes=30))  # a later status, same deployment
    assert again.json_body["updated"] == 1
    assert shas(client, 1) == ["a", "b"]


def test_a_build_of_an_old_sha_does_not_ship_later_pushes_with_its_redeploy(client, aws) -> None:
    """A build's head commit is the fallback for a sha no push holds, not a push of its own."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    github_push(client, aws, [("a" * 40, now - timedelta(hours=6))])
    github_deploy(client, aws, 1, "a" * 40, now - timedelta(hours=5))
    github_push(client, aws, [("b" * 40, now - timedelta(hours=4))])
    run = fixture("github/workflow_run.completed.json")["payload"]
    run["repository"]["full_name"] = "Codertocat/Hello-World"
    run["workflow_run"]["head_commit"] |= {"id": "a" * 40, "timestamp": iso(now - timedelta(hours=6))}
    assert deliver(client, aws, "github", "workflow_run", run).json_body["commits"] == 1
    github_deploy(client, aws, 2, "a" * 40, now - timedelta(hours=3))  # a redeploy of a
    assert shas(client, 2) == ["a"]
    github_deploy(client, aws, 3, "b" * 40, now - timedelta(hours=2))
    assert shas(client, 3) == ["b"]


def test_a_build_head_commit_gives_lead_time_when_no_push_was_seen(client, aws) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    run = fixture("github/workflow_run.completed.json")["payload"]
    run["repository"]["full_name"] = "Codertocat/Hello-World"
    run["workflow_run"]["head_commit"] |= {"id": "e" * 40, "timestamp": iso(now - timedelta(hours=3))}
    deliver(client, aws, "github", "workflow_run", run)
    github_deploy(client, aws, 1, "e" * 40, now - timedelta(hours=1))
    assert shas(client, 1) == ["e"]


def test_a_push_delivered_again_after_a_failure_is_kept_once(client, aws) -> None:
    from chalicelib.commit_log import CommitLog, log_pk
    from chalicelib.sources import CommitRef, Push

    table = app_module.context().table
    push = Push("Codertocat/Hello-World", (CommitRef("a" * 40, "2026-11-30T10:00:00.000000Z"),))
    now = datetime.now(timezone.utc)
    CommitLog(table).record("github", push, "delivery-x", now)
    CommitLog(table).record("github", push, "delivery-x", now + timedelta(seconds=40))  # the source's retry
    items = table.query(KeyConditionExpression="pk = :pk AND begins_with(sk, :p)", ExpressionAttributeValues={
        ":pk": {"S": log_pk("github", "Codertocat/Hello-World")}, ":p": {"S": "P#"}}).items
    assert len(items) == 1


def test_a_deployment_the_model_refuses_leaves_nothing_in_the_commit_log(client, aws) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    github_push(client, aws, [("a" * 40, now - timedelta(hours=3))])
    before = count_items(aws)
    refused = github_deploy(client, aws, 1, "a" * 40, now + timedelta(days=3))  # more than 24 h ahead
    assert refused.status_code == 400, refused.body
    assert count_items(aws) == before
    assert github_deploy(client, aws, 1, "a" * 40, now).status_code == 200
    assert shas(client, 1) == ["a"]


@pytest.mark.parametrize("change", [
    {"deployment_status": {"state": "success", "created_at": "9999-12-31T23:30:00-01:00"}},
    {"deployment": {"sha": ""}},
    {"deployment": {"sha": None}},
    {"deployment": {"environment": None}, "deployment_status": {"state": "success", "environment": None}},
    {"repository": "not an object"},
])
def test_odd_github_payloads_are_4xx_or_recorded_never_5xx(client, aws, change: dict[str, Any]) -> None:
    payload = fixture("github/deployment_status.created.success.json")["payload"]
    for key, value in change.items():
        payload[key] = value if not isinstance(value, dict) else {**payload[key], **value}
    response = deliver(client, aws, "github", "deployment_status", payload)
    assert response.status_code in (200, 400), response.body
    if response.status_code == 400:
        assert response.json_body["error"]["details"][0]["field"]


def test_a_label_without_a_name_is_no_incident_label(client, aws) -> None:
    payload = fixture("github/issues.labeled.json")["payload"]
    payload["issue"]["labels"] = [{"name": None}, {"id": 3}, "incident", {"name": 5}]
    response = deliver(client, aws, "github", "issues", payload)
    assert response.status_code == 202, response.body


def test_a_cdevents_resolution_without_an_environment_keeps_the_detection_time(client, aws) -> None:
    detected = fixture("cdevents/incident.detected.json")["payload"]
    resolved = fixture("cdevents/incident.resolved.json")["payload"]
    for event in (detected, resolved):
        del event["subject"]["content"]["environment"]
    resolved["context"]["timestamp"] = "2022-11-11T14:52:20.079Z"
    deliver(client, aws, "cdevents", "", detected)
    deliver(client, aws, "cdevents", "", resolved)
    incident = event_of(client, "incident", "incident-123", "myApp")  # the default environment
    assert incident["opened_at"].startswith("2022-11-11T13:52:20")
    assert incident["resolved_at"].startswith("2022-11-11T14:52:20")


def test_a_github_deployment_without_push_data_has_no_commits(client, aws) -> None:
    assert send(client, aws, "github", "github/deployment_status.created.success.json").status_code == 200
    assert "commits" not in event_of(client, "deployment", "145988746", "Hello-World")


def test_a_branch_delete_push_records_no_commit(client, aws) -> None:
    response = send(client, aws, "github", "github/push.tag-deleted.json")
    assert (response.status_code, response.json_body["commits"], response.json_body["ids"]) == (200, 0, [])


@pytest.mark.parametrize("name", ["github/ping.repository-hook.json", "github/star.created.json",
                                  "github/watch.started.json"])
def test_other_github_events_are_ignored_with_202(client, aws, name: str) -> None:
    data = fixture(name)
    response = deliver(client, aws, "github", data["event"], data["payload"])
    assert (response.status_code, response.json_body) == (202, {"ignored": data["event"]})
    assert count_items(aws) == 0


def test_github_form_encoded_deliveries_are_read_too(client, aws) -> None:
    """GitHub's other content type (application/x-www-form-urlencoded): payload=<the JSON>."""
    from urllib.parse import urlencode

    payload = fixture("github/deployment_status.created.success.json")["payload"]
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = headers_for("github", "deployment_status", body, secret(aws, "github"))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = client.http.post("/webhooks/github", headers=headers, body=body)
    assert response.status_code == 200, response.body


def test_the_url_overrides_service_and_environment(client, aws) -> None:
    response = send(client, aws, "github", "github/deployment_status.created.success.json",
                    query="?service=storefront&environment=staging")
    assert response.status_code == 200, response.body
    assert event_of(client, "deployment", "145988746", "storefront", "staging")["status"] == "success"
    bad = send(client, aws, "github", "github/deployment_status.created.success.json", query="?service=a%20b")
    assert bad.status_code == 400 and bad.json_body["error"]["details"][0]["field"] == "service"


# ---- authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["github", "gitlab", "pagerduty", "cdevents"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(client, aws, capsys, source: str) -> None:
    payload = fixture({"github": "github/deployment_status.created.success.json",
                       "gitlab": "gitlab/deployment.success.json",
                       "pagerduty": "pagerduty/incident.triggered.json",
                       "cdevents": "cdevents/service.deployed.json"}[source])
    body = json.dumps(payload["payload"]).encode()
    header = auth.SCHEMES[source].header
    missing = headers_for(source, payload["event"], body, "x")
    del missing[header]
    wrong = headers_for(source, payload["event"], body, "not-the-secret")
    for headers, message in ((missing, "missing"), (wrong, "does not match")):
        response = client.http.post(f"/webhooks/{source}", headers=headers, body=body)
        assert response.status_code == 401, response.body
        error = response.json_body["error"]
        assert error["code"] == "unauthorized" and error["details"][0] == {
            "field": header, "message": message, "type": "webhook_signature"}
    assert count_items(aws) == 0
    logged = capsys.readouterr().out
    assert '"status":401' in logged
    assert secret(aws, source) not in logged and body.decode()[:40] not in logged


def test_a_delivery_signed_with_the_previous_secret_version_is_accepted(client, aws) -> None:
    """Rotation: the source still signs with the old value while the new one is AWSCURRENT."""
    sm = aws.client("secretsmanager", PRIMARY)
    name = names.webhook_secret(STAGE, "github")
    old = secret(aws, "github")
    assert send(client, aws, "github", "github/deployment_status.created.in_progress.json").status_code == 200
    sm.put_secret_value(SecretId=name, SecretString="rotated-" + old[:20])
    try:
        assert secret(aws, "github", stage="AWSPREVIOUS") == old
        # the function still holds the old pair; past the refresh floor, the new value's signature
        # makes it read the secret again
        cache = app_module.webhook_secrets()
        cache.clock = lambda: time.monotonic() + C.SECRET_REFRESH_MIN_SECONDS + 1
        new = send(client, aws, "github", "github/deployment_status.created.success.json", key="rotated-" + old[:20])
        assert new.status_code == 200, new.body
        previous = send(client, aws, "github", "github/workflow_run.completed.json", key=old)
        assert previous.status_code == 200, previous.body
        wrong = send(client, aws, "github", "github/workflow_run.completed.json", key="neither")
        assert wrong.status_code == 401
    finally:
        sm.put_secret_value(SecretId=name, SecretString=old)  # later tests sign with the current value


# ---- replay, limits, bad bodies ------------------------------------------------------------------

def test_a_replayed_delivery_changes_nothing(client, aws) -> None:
    first = send(client, aws, "github", "github/deployment_status.created.success.json", delivery="d-1")
    assert first.json_body["created"] == 1 and first.json_body["replayed"] is False
    items = count_items(aws)
    again = send(client, aws, "github", "github/deployment_status.created.success.json", delivery="d-1")
    assert again.status_code == 200 and again.json_body["replayed"] is True
    assert again.json_body["ids"] == ["145988746"] and again.json_body["created"] == 0
    assert count_items(aws) == items


def test_an_oversized_body_is_413(client, aws) -> None:
    payload = fixture("github/deployment_status.created.success.json")["payload"]
    payload["padding"] = "x" * (1024 * 1024)
    response = deliver(client, aws, "github", "deployment_status", payload)
    assert response.status_code == 413 and response.json_body["error"]["code"] == "body_too_large"
    assert count_items(aws) == 0


def test_a_body_that_is_not_json_is_400(client, aws) -> None:
    body = b"{not json"
    headers = headers_for("github", "deployment_status", body, secret(aws, "github"))
    response = client.http.post("/webhooks/github", headers=headers, body=body)
    assert response.status_code == 400 and response.json_body["error"]["code"] == "invalid_json"


def test_a_payload_the_mapping_cannot_read_is_400_naming_the_field(client, aws) -> None:
    payload = fixture("github/deployment_status.created.success.json")["payload"]
    del payload["deployment"]["sha"]
    response = deliver(client, aws, "github", "deployment_status", payload)
    assert response.status_code == 400, response.body
    assert response.json_body["error"]["details"][0]["field"] == "deployment.sha"
    payload["deployment"]["sha"] = 42
    response = deliver(client, aws, "github", "deployment_status", payload)
    assert response.json_body["error"]["details"][0] == {"field": "deployment.sha", "message": "must be a string",
                                                         "type": "webhook_payload"}
    assert count_items(aws) == 0


def test_an_unknown_source_is_404(client, aws) -> None:
    response = client.http.post("/webhooks/jenkins", headers={"Content-Type": "application/json"}, body=b"{}")
    assert response.status_code == 404 and response.json_body["error"]["code"] == "not_found"


def test_the_standby_answers_webhooks_as_it_answers_writes(standby_client, aws) -> None:
    from tests.conftest import DR

    response = send(standby_client, aws, "github", "github/deployment_status.created.success.json", region=DR)
    assert response.status_code == 503 and response.json_body["error"]["code"] == "standby_region"
    assert count_items(aws, DR) == 0


# ---- PagerDuty -----------------------------------------------------------------------------------

def pagerduty(client: Any, aws: Any, name: str, **changes: Any) -> Any:
    payload = fixture(f"pagerduty/{name}")["payload"]
    payload["event"] |= changes
    return deliver(client, aws, "pagerduty", payload["event"]["event_type"], payload)


def test_pagerduty_incident_lifecycle(client, aws) -> None:
    assert pagerduty(client, aws, "incident.triggered.json").json_body["created"] == 1
    assert pagerduty(client, aws, "incident.acknowledged.json").json_body["updated"] == 1
    acknowledged = event_of(client, "incident", "Q2CKYRLH85UNN4", "Webhook-Tester")
    assert acknowledged["acknowledged_at"].startswith("2025-04-07T03:47:13.546")
    assert pagerduty(client, aws, "incident.resolved.json").json_body["updated"] == 1
    resolved = event_of(client, "incident", "Q2CKYRLH85UNN4", "Webhook-Tester")
    assert resolved["resolved_at"].startswith("2025-04-07T03:49:36.358")
    assert resolved["acknowledged_at"] == acknowledged["acknowledged_at"]  # kept from before the resolve
    assert resolved["opened_at"].startswith("2025-04-07T03:47:13")


def test_pagerduty_events_out_of_order_never_reopen_a_resolved_incident(client, aws) -> None:
    assert pagerduty(client, aws, "incident.resolved.json").json_body["created"] == 1
    late = pagerduty(client, aws, "incident.triggered.json")  # occurred before the resolve
    assert late.json_body["stale"] == 1
    assert pagerduty(client, aws, "incident.acknowledged.json").json_body["stale"] == 1
    assert event_of(client, "incident", "Q2CKYRLH85UNN4", "Webhook-Tester")["resolved_at"].startswith("2025-04-07")
    # a reopen that happened after the resolve does reopen it
    reopened = pagerduty(client, aws, "incident.triggered.json", event_type="incident.reopened",
                         id="01REOPENED", occurred_at="2025-04-07T04:00:00.000Z")
    assert reopened.json_body["updated"] == 1
    assert "resolved_at" not in event_of(client, "incident", "Q2CKYRLH85UNN4", "Webhook-Tester")


@pytest.mark.parametrize("name", ["pagey.ping.json", "incident.annotated.json", "service.updated.json",
                                  "incident.priority_updated.json"])
def test_other_pagerduty_events_are_ignored(client, aws, name: str) -> None:
    payload = fixture(f"pagerduty/{name}")["payload"]
    response = deliver(client, aws, "pagerduty", "", payload)
    assert (response.status_code, response.json_body) == (202, {"ignored": payload["event"]["event_type"]})


def test_a_pagerduty_signature_header_may_hold_several_signatures(client, aws) -> None:
    payload = fixture("pagerduty/incident.triggered.json")["payload"]
    body = json.dumps(payload).encode()
    signed = auth.sign("pagerduty", body, secret(aws, "pagerduty"))["X-PagerDuty-Signature"]
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1=00ff,{signed}"}
    assert client.http.post("/webhooks/pagerduty", headers=headers, body=body).status_code == 200


# ---- GitLab --------------------------------------------------------------------------------------

def test_gitlab_hooks_map_to_deployments_builds_commits_and_incidents(client, aws) -> None:
    push = send(client, aws, "gitlab", "gitlab/push.branch-with-commits.json")
    push_head = fixture("gitlab/push.branch-with-commits.json")["payload"]["commits"][1]["id"]
    assert push.json_body["commits"] == 2
    data = fixture("gitlab/deployment.success.json")
    # the deployment ships the push's second commit (the example deploys another project's)
    data["payload"]["commit_url"] = data["payload"]["commit_url"].rsplit("/", 1)[0] + "/" + push_head
    data["payload"]["project"]["path_with_namespace"] = "mike/diaspora"  # the pushes' project
    assert deliver(client, aws, "gitlab", "Deployment Hook", data["payload"]).status_code == 200
    deployment = event_of(client, "deployment", "15", "diaspora", "staging")
    assert deployment["status"] == "success" and deployment["timestamp"].startswith("2021-04-28T19:50:00")
    assert [c["sha"][:8] for c in deployment["commits"]] == ["b6568db1", "da156088"]

    pipeline = send(client, aws, "gitlab", "gitlab/pipeline.success.json")
    assert pipeline.status_code == 200, pipeline.body
    build = event_of(client, "build", "31", "gitlab-test")
    assert (build["status"], build["duration_seconds"], build["timestamp"][:19]) == (
        "succeeded", 63.0, "2016-08-12T15:26:29")

    issue = fixture("gitlab/issue.open.json")
    assert deliver(client, aws, "gitlab", "Issue Hook", issue["payload"]).status_code == 202  # type Issue
    issue["payload"]["object_attributes"]["type"] = "Incident"
    assert deliver(client, aws, "gitlab", "Issue Hook", issue["payload"]).status_code == 200
    assert event_of(client, "incident", "301", "gitlab-test")["opened_at"].startswith("2013-12-03T17:15:43")


def test_gitlab_deployment_statuses(client, aws) -> None:
    data = fixture("gitlab/deployment.success.json")
    for status, expected in (("running", "in_progress"), ("failed", "failure")):
        data["payload"]["status"] = status
        assert deliver(client, aws, "gitlab", "Deployment Hook", data["payload"]).status_code == 200
        assert event_of(client, "deployment", "15", "test-deployment-webhooks", "staging")["status"] == expected
    data["payload"]["status"] = "canceled"
    assert deliver(client, aws, "gitlab", "Deployment Hook", data["payload"]).status_code == 202


# ---- CDEvents ------------------------------------------------------------------------------------

def test_cdevents_service_deployed_and_incident_detected_then_resolved(client, aws) -> None:
    deployed = send(client, aws, "cdevents", "cdevents/service.deployed.json")
    assert deployed.status_code == 200, deployed.body
    deployment = event_of(client, "deployment", "271069a8-fc18-44f1-b38f-9d70a1695819", "mySubject123", "test123")
    assert deployment["status"] == "success"

    detected = fixture("cdevents/incident.detected.json")["payload"]
    assert deliver(client, aws, "cdevents", "", detected).json_body["created"] == 1
    resolved = fixture("cdevents/incident.resolved.json")["payload"]  # the same context.id, another type
    resolved["context"]["timestamp"] = "2022-11-11T15:52:20.079Z"  # the example resolves as it is detected
    assert deliver(client, aws, "cdevents", "", resolved).json_body["updated"] == 1
    incident = event_of(client, "incident", "incident-123", "myApp", "prod1")
    assert incident["opened_at"].startswith("2022-11-11T13:52:20")  # from the detection
    assert incident["resolved_at"].startswith("2022-11-11T15:52:20")


def test_a_cdevent_in_a_structured_cloudevent_is_read_from_its_data(client, aws) -> None:
    cdevent = fixture("cdevents/service.deployed.json")["payload"]
    cloudevent = {"specversion": "1.0", "id": "ce-1", "source": "/ci", "type": cdevent["context"]["type"],
                  "datacontenttype": "application/json", "data": cdevent}
    assert deliver(client, aws, "cdevents", "", cloudevent).status_code == 200


def test_deliveries_store_their_time_order_as_given(client, aws) -> None:
    """A webhook event keeps the source's times, not the time it arrived."""
    send(client, aws, "github", "github/deployment_status.created.success.json")
    stored = event_of(client, "deployment", "145988746", "Hello-World")
    assert parse_time(stored["timestamp"]) == datetime(2019, 5, 15, 15, 20, 55, tzinfo=timezone.utc)


# ---- the secret cache ----------------------------------------------------------------------------

def test_a_secret_is_kept_at_most_five_minutes_and_read_again_on_a_mismatch(aws) -> None:
    from chalicelib import clients
    from chalicelib.secrets import SecretCache

    calls: list[str] = []
    sm = clients.secretsmanager(PRIMARY, "api")
    sm.meta.events.register("before-call.secretsmanager.GetSecretValue", lambda **kw: calls.append("read"))
    now = [1000.0]
    cache = SecretCache(sm, clock=lambda: now[0])
    name = names.webhook_secret(STAGE, "gitlab")
    current = secret(aws, "gitlab")
    assert cache.versions(name) == (current,)  # never rotated: no AWSPREVIOUS
    reads = len(calls)
    now[0] += C.SECRET_CACHE_SECONDS - 1
    assert cache.verify(name, lambda value: value == current) and len(calls) == reads  # from the cache
    assert not cache.verify(name, lambda value: value == "other") and len(calls) == 2 * reads  # read again
    now[0] += 1
    assert not cache.verify(name, lambda value: value == "other") and len(calls) == 2 * reads  # the floor
    now[0] += C.SECRET_CACHE_SECONDS  # past five minutes since the last read: read again
    assert cache.versions(name) == (current,) and len(calls) == 3 * reads


# ---- both regions --------------------------------------------------------------------------------

def test_dr_sync_secrets_gives_the_standby_the_active_regions_values(standby_client, aws) -> None:
    """Each region's stack generates its own values; a source signs with the active region's, so the
    standby must hold the same to take over."""
    from tests.conftest import DR
    from tests.integration.test_replication import run_dr

    sm = aws.client("secretsmanager", DR)
    name = names.webhook_secret(STAGE, "gitlab")
    sm.put_secret_value(SecretId=name, SecretString="the-standby-s-own-value")
    checked = run_dr(aws, "sync-secrets", "--check")
    assert checked.returncode == 1 and "differs" in checked.stdout, checked.stdout + checked.stderr
    synced = run_dr(aws, "sync-secrets", "--json")
    assert synced.returncode == 0, synced.stderr
    states = {s["source"]: s["state"] for s in json.loads(synced.stdout)["secrets"]}
    assert states["gitlab"] == "copied" and set(states.values()) <= {"copied", "in sync"}
    assert secret(aws, "gitlab", DR) == secret(aws, "gitlab", PRIMARY)
    assert secret(aws, "gitlab", DR, "AWSPREVIOUS") == "the-standby-s-own-value"
    assert run_dr(aws, "sync-secrets", "--check").returncode == 0
    # the standby now authenticates a delivery signed with the active region's value (and refuses the write)
    answer = send(standby_client, aws, "gitlab", "gitlab/deployment.success.json", key=secret(aws, "gitlab"))
    assert answer.status_code == 503 and answer.json_body["error"]["code"] == "standby_region"


def test_a_secret_missing_from_the_region_is_a_503_that_says_which(aws) -> None:
    from chalicelib import clients
    from chalicelib.errors import Unavailable
    from chalicelib.secrets import SecretCache
    from chalicelib.webhooks import authenticate

    cache = SecretCache(clients.secretsmanager(PRIMARY, "api"))
    body = b"{}"
    with pytest.raises(Unavailable, match="devops-metrics-nosuch-webhook-github is not in this region"):
        authenticate(cache, "nosuch", "github", auth.sign("github", body, "x"), body)

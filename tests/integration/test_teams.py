"""Teams: PUT, GET, list and DELETE through the app, a team's summary over its services (counts
added up, medians over the union), bad input, and a team replicating to the standby."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import jobs
from chalicelib.teams import TeamStore
from dr import verify as vf
from ops.regions import Regions
from tests.conftest import DR, JSON, PRIMARY, STAGE, count_items, post

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def put(client: Any, team: str, body: Any) -> Any:
    return client.http.put(f"/teams/{team}", headers=JSON, body=json.dumps(body))


def test_a_team_is_created_read_listed_replaced_and_deleted(client, aws) -> None:
    created = put(client, "payments-team", {"services": ["pay", "ledger", "pay"], "description": "money"})
    assert created.status_code == 201
    assert created.json_body["services"] == ["pay", "ledger"]  # each service once
    assert client.http.get("/teams/payments-team").json_body["description"] == "money"
    replaced = put(client, "payments-team", {"services": ["pay"]})
    assert replaced.status_code == 200 and "description" not in replaced.json_body
    put(client, "web-team", {"services": ["web"]})
    assert [t["team"] for t in client.http.get("/teams").json_body["teams"]] == ["payments-team", "web-team"]
    assert client.http.delete("/teams/web-team").status_code == 204
    assert client.http.get("/teams/web-team").status_code == 404
    assert client.http.delete("/teams/web-team").status_code == 404
    assert [t["team"] for t in client.http.get("/teams").json_body["teams"]] == ["payments-team"]


def test_a_team_of_three_services_adds_counts_and_takes_medians_over_the_union(client, aws) -> None:
    # lead times: a 1 h and 2 h, b 10 h, c 4 h; c also failed once and recovered 6 h later
    deployed = NOW - timedelta(days=2)
    events = []
    for service, leads in (("a", (1, 2)), ("b", (10,)), ("c", (4,))):
        for n, hours in enumerate(leads):
            events.append({"kind": "deployment", "service": service, "status": "success", "id": f"{service}-{n}",
                           "timestamp": iso(deployed + timedelta(minutes=n)),
                           "commit_sha": hashlib.sha1(f"{service}{n}".encode()).hexdigest(),
                           "commit_timestamp": iso(deployed + timedelta(minutes=n) - timedelta(hours=hours))})
    events += [{"kind": "deployment", "service": "c", "status": "failure", "id": "c-bad",
                "timestamp": iso(deployed - timedelta(hours=6))},
               {"kind": "deployment", "service": "elsewhere", "status": "success", "id": "x",
                "timestamp": iso(deployed)}]
    assert post(client, {"events": events}).status_code == 201
    put(client, "trio", {"services": ["a", "b", "c"]})
    summary = client.http.get("/metrics/summary?team=trio&days=7").json_body
    assert (summary["team"], summary["services"]) == ("trio", ["a", "b", "c"])
    # 4 successes over 7 days (not "elsewhere"'s)
    assert summary["deployment_frequency"]["count"] == 4
    # the median of 1, 2, 4, 10 is (2 + 4) / 2 = 3 (a median of the medians 1.5, 10, 4 would be 4)
    assert (summary["change_lead_time"]["value"], summary["change_lead_time"]["count"]) == (3.0, 4)
    # 1 failed of 5 finished deployments; c-bad recovered by c-0, 6 h later
    assert (summary["change_fail_rate"]["value"], summary["change_fail_rate"]["count"]) == (0.2, 5)
    assert summary["failed_deployment_recovery_time"]["value"] == 6.0
    one = client.http.get("/metrics/summary?service=c&days=7").json_body
    assert one["service"] == "c" and "team" not in one and one["change_lead_time"]["value"] == 4.0


@pytest.mark.parametrize(("path", "status"), [
    ("/metrics/summary?service=a&team=trio", 400),
    ("/metrics/summary", 400),
    ("/metrics/summary?team=nobody", 404),
    ("/metrics/summary?team=bad%20name", 400),
    ("/teams/bad%20name", 400),
    ("/teams/nobody", 404),
])
def test_bad_team_reads_get_a_4xx_in_the_error_shape(client, aws, path, status) -> None:
    response = client.http.get(path)
    assert response.status_code == status, response.body
    assert set(response.json_body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(("team", "body"), [
    ("t", {"services": [f"s{i}" for i in range(501)]}),
    ("t", {"services": []}),
    ("t", {"services": ["has space"]}),
    ("t", {"services": ["a"], "surprise": 1}),
    ("t", {"services": "a"}),
    ("has.a space", {"services": ["a"]}),
])
def test_bad_teams_are_refused_and_store_nothing(client, aws, team, body) -> None:
    response = put(client, team.replace(" ", "%20"), body)
    assert response.status_code == 400, response.body
    assert count_items(aws) == 0


def test_the_standby_refuses_team_writes(standby_client, aws) -> None:
    response = put(standby_client, "t", {"services": ["a"]})
    assert response.status_code == 503 and response.json_body["error"]["code"] == "standby_region"


def test_teams_replicate_and_their_deletes_too(client, aws) -> None:
    put(client, "ops", {"services": ["a"]})
    put(client, "gone", {"services": ["b"]})
    jobs.sweep(app_module.context(), datetime.now(timezone.utc))
    client.http.delete("/teams/gone")
    jobs.sweep(app_module.context(), datetime.now(timezone.utc) + timedelta(seconds=1))
    regions = Regions(STAGE, aws.endpoint)
    standby = TeamStore(regions.table(DR))
    assert [t.name for t in standby.all()] == ["ops"]
    assert vf.compare(regions.table(PRIMARY), regions.table(DR)) == []


def test_trends_of_a_team_across_a_month_boundary(client, aws) -> None:
    now = datetime.now(timezone.utc)
    this_month = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    last_month, here = this_month - timedelta(days=2), this_month + (now - this_month) / 2

    def deployment(service: str, when: datetime, status: str = "success", lead: float | None = None) -> dict:
        event = {"kind": "deployment", "service": service, "status": status, "id": f"{service}-{when:%Y%m%d%H%M%S}",
                 "timestamp": iso(when)}
        if lead is not None:
            event["commit_timestamp"] = iso(when - timedelta(hours=lead))
        return event

    # last month: a (lead 2 h) and c (lead 4 h) succeed, b fails; this month b succeeds (lead 10 h)
    assert post(client, {"events": [deployment("a", last_month, lead=2), deployment("b", last_month, "failure"),
                                    deployment("c", last_month, lead=4), deployment("b", here, lead=10)]}
                ).status_code == 201
    put(client, "trio", {"services": ["a", "b", "c"]})
    body = client.http.get("/metrics/trends?team=trio&bucket=month&count=2").json_body
    assert (body["team"], body["bucket"], body["benchmark"]["name"]) == ("trio", "month", "2024")
    before, current = body["buckets"]
    assert before["start"].startswith(last_month.strftime("%Y-%m-01")) and before["partial"] is False
    assert current["start"].startswith(this_month.strftime("%Y-%m-01")) and current["partial"] is True
    assert before["end"] == current["start"]
    assert (before["deployment_frequency"]["count"], current["deployment_frequency"]["count"]) == (2, 1)
    assert before["change_lead_time"]["value"] == 3.0 and current["change_lead_time"]["value"] == 10.0
    assert before["change_fail_rate"]["value"] == 1 / 3 and current["change_fail_rate"]["value"] == 0.0
    # b's failure last month is recovered by its success this month: counted in the month it failed
    recovery = before["failed_deployment_recovery_time"]
    assert recovery["count"] == 1 and recovery["value"] == (here - last_month).total_seconds() / 3600
    weekly = client.http.get("/metrics/trends?service=a&count=3").json_body
    assert weekly["service"] == "a" and len(weekly["buckets"]) == 3 and weekly["bucket"] == "week"


@pytest.mark.parametrize("query", ["service=a&bucket=month&count=25", "service=a&count=53", "service=a&count=0",
                                   "service=a&bucket=day", "service=a&team=trio", "", "team=nobody"])
def test_bad_trend_queries_get_a_4xx(client, aws, query) -> None:
    response = client.http.get(f"/metrics/trends?{query}")
    assert response.status_code in (400, 404), response.body
    assert set(response.json_body["error"]) == {"code", "message", "details"}

"""Fuzzing POST /metrics with hypothesis: whatever the body, the answer is never a 5xx, and a
refused body stores nothing."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import count_items, post

VALID = [
    {"kind": "deployment", "service": "api", "status": "success", "commit_sha": "abc1234",
     "commit_timestamp": "2026-11-01T00:00:00Z", "timestamp": "2026-11-02T00:00:00Z", "pipeline": "p"},
    {"kind": "build", "service": "api", "status": "failed", "duration_seconds": 12.5, "pipeline": "p"},
    {"kind": "incident", "service": "api", "opened_at": "2026-11-01T00:00:00Z",
     "resolved_at": "2026-11-01T02:00:00+00:00", "severity": "sev1", "deployment_id": "d-1"},
    {"kind": "gauge", "service": "api", "name": "queue_depth", "value": 3, "unit": "Count",
     "attributes": {"team": "core"}, "environment": "staging", "id": "g-1"},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from([
    "kind", "service", "status", "timestamp", "environment", "id", "updated_at", "attributes", "commit_sha",
    "commit_timestamp", "commits", "pipeline", "opened_at", "acknowledged_at", "resolved_at", "severity",
    "deployment_id",
    "duration_seconds", "name", "value", "unit", "events", "unexpected",
])


@st.composite
def mutated_event(draw: st.DrawFn) -> dict[str, Any]:
    event = dict(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(field_names)
        if draw(st.booleans()) and name in event:
            del event[name]
        else:
            event[name] = draw(json_values)
    return event


bodies = st.one_of(
    json_values.map(json.dumps),
    mutated_event().map(json.dumps),
    st.lists(mutated_event() | st.sampled_from(VALID), min_size=0, max_size=4).map(
        lambda events: json.dumps({"events": events})),
    st.binary(max_size=200),
    st.text(max_size=200),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                   "text/plain", "application/problem+json", ""]))
def test_post_metrics_never_5xx_and_refusals_store_nothing(client, aws, body, content_type) -> None:
    before = count_items(aws)
    response = post(client, body, {"Content-Type": content_type} if content_type else {})
    assert response.status_code < 500, (body, response.body)
    if response.status_code == 201:
        assert count_items(aws) >= before
    else:
        assert response.status_code in (400, 409, 413, 415), response.status_code
        assert set(response.json_body) == {"error"}
        assert set(response.json_body["error"]) == {"code", "message", "details"}
        assert count_items(aws) == before


# ---- webhooks: the sources' own examples, mutated, and signed as the source would sign them --------

def _fixtures() -> list[tuple[str, str, dict[str, Any]]]:
    from tests.integration.test_webhooks import FIXTURES

    found = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        data = json.loads(path.read_text())
        found.append((path.parent.name, data["event"], data["payload"]))
    return found


WEBHOOK_FIXTURES = _fixtures()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a payload (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_delivery(draw: st.DrawFn) -> tuple[str, str, Any]:
    source, event, payload = draw(st.sampled_from(WEBHOOK_FIXTURES))
    payload = json.loads(json.dumps(payload))
    paths = _paths(payload)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths))
        parent: Any = payload
        for part in path[:-1]:  # an earlier mutation may have removed or replaced part of the path
            if isinstance(parent, dict) and part in parent:
                parent = parent[part]
            elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
                parent = parent[part]
            else:
                parent = None
        if isinstance(parent, dict):
            if draw(st.booleans()):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values | st.sampled_from(
                    ["2026-11-01 10:00:00 +0200", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                     "success", "completed", "incident", "a" * 40, "", "Incident"]))
        elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
            parent[path[-1]] = draw(json_values)
    return source, event, payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=mutated_delivery())
def test_signed_webhook_deliveries_never_5xx_and_refusals_store_nothing(client, aws, delivery) -> None:
    from tests.integration.test_webhooks import deliver

    source, event, payload = delivery
    before = count_items(aws)
    response = deliver(client, aws, source, event, payload)
    assert response.status_code < 500, (source, event, payload, response.body)
    if response.status_code >= 400:
        assert response.status_code == 400, response.body
        assert set(response.json_body["error"]) == {"code", "message", "details"}
        assert response.json_body["error"]["details"][0]["field"]
        assert count_items(aws) == before

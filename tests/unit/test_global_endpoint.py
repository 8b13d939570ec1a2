"""Route 53's failover rule and how a health check changes state (chalicelib.global_endpoint), which the
local Global API routes by."""
from __future__ import annotations

from chalicelib import global_endpoint as ge

PRIMARY, DR = "us-east-1", "us-west-2"
RECORDS = {region: ge.FailoverRecord("Z1", "api.example.com", "CNAME", 60, region, failover, f"hc-{region}",
                                     (f"d-x.execute-api.{region}.amazonaws.com",))
           for region, failover in ((PRIMARY, ge.PRIMARY), (DR, ge.SECONDARY))}
CHECK = ge.HealthCheck("hc", PRIMARY, "x.execute-api.us-east-1.amazonaws.com", "/api/health", '"role":"active"', 10, 3)


def test_the_primary_answers_while_healthy_then_the_secondary_and_both_failing_means_the_primary() -> None:
    assert ge.route(RECORDS, {PRIMARY: True, DR: True}) == PRIMARY
    assert ge.route(RECORDS, {PRIMARY: True, DR: False}) == PRIMARY
    assert ge.route(RECORDS, {PRIMARY: False, DR: True}) == DR
    assert ge.route(RECORDS, {PRIMARY: False, DR: False}) == PRIMARY  # all unhealthy: as if all were healthy
    assert ge.route({}, {}) is None


def test_a_check_passes_only_on_a_2xx_or_3xx_holding_the_search_string_in_its_first_5120_bytes() -> None:
    active = b'{"status":"ok","region":"us-east-1","role":"active","version":"0.2.0"}'
    assert CHECK.passes(200, active)
    assert not CHECK.passes(200, active.replace(b"active", b"fenced"))
    assert not CHECK.passes(200, active.replace(b"active", b"standby"))
    assert not CHECK.passes(503, active)
    assert not CHECK.passes(200, b" " * 5120 + active)


def test_a_health_check_changes_state_only_after_threshold_answers_in_a_row() -> None:
    state = ge.HealthState(3)
    assert state.observe(True) is True
    assert [state.observe(v) for v in (False, False, True, False, False)] == [True] * 5  # the streak broke
    assert state.observe(False) is False  # the third failure in a row
    assert [state.observe(True) for _ in range(3)] == [False, False, True]

"""`python -m dr drill` on the local stack, with a 12 s lease so that the forced failovers' waits
stay short: the outage, partition and crash scenarios all pass, and in the outage the global URL
follows the active region through the failover and the failback."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from chalicelib import constants as C
from tests.e2e.stack import StackProcess

pytestmark = pytest.mark.e2e
LEASE = 12  # renewed every 4 s by the local stack's workers


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = StackProcess(f"--sweep-every 10 --lease-seconds {LEASE} --endpoint-check-every 1")
    try:
        stack.wait_until_ready()
        yield stack
    finally:
        stack.interrupt()


def served_by(stack: StackProcess, timeout: float, region: str) -> str | None:
    """The region the Global API answers from, once it is `region` (or the last seen at the timeout)."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        seen = requests.get(f"{stack.global_url}/health", timeout=5).headers.get("X-Served-By-Region")
        if seen == region:
            return seen
        time.sleep(0.5)
    return seen


def post(stack: StackProcess, event_id: str) -> requests.Response:
    """A write through the global URL, repeated for up to 10 s while it is refused: right after a
    failover the new region's functions may hold the standby role for 5 s more."""
    deadline = time.monotonic() + 10
    while True:
        response = requests.post(f"{stack.global_url}/metrics", timeout=10, json={
            "kind": "build", "service": "global", "status": "succeeded", "id": event_id})
        if response.status_code in (200, 201) or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_the_drill_passes_the_outage_partition_and_crash_scenarios(stack: StackProcess) -> None:
    drill = stack.dr("drill", "--json", "--scenario", "all", "--warmup", "2", "--global-url", stack.global_url,
               "--primary-url", stack.url, "--standby-url", stack.standby_url)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    report = json.loads(drill.stdout)
    outage, partition, crash = report["outage"], report["partition"], report["crash"]
    assert outage["writes_acknowledged"] > 0 and outage["rto_seconds"] < C.RTO_TARGET_SECONDS
    assert outage["rpo_seconds"] < C.RPO_TARGET_SECONDS and outage["fenced_primary_refused_write"] is True
    # the global URL follows the active region: after the failover, writes go to us-west-2 through it,
    # and after the failback to us-east-1
    assert outage["served_by_after_failover"] == C.DR_REGION and outage["served_by_after_failback"] == C.PRIMARY_REGION
    assert outage["differences_after_failback"] == 0
    assert partition["lease_seconds"] == LEASE
    assert partition["overlap_seconds"] == 0 and partition["acknowledged_by_new_primary"] > 0
    last = partition["old_primary_last_ack_after_failover_start"]
    assert last is None or last <= LEASE + C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS
    assert partition["lost_after_heal"] == 0 and partition["differences_after_failback"] == 0
    assert [s["killed_after"] for s in crash["steps"]] == ["intent", "fence", "final sweep", "switch", "notify",
                                                           "incident recorded"]
    assert all(s["problems"] == [] for s in crash["steps"])
    assert [s["to"] for s in crash["steps"]] == [C.DR_REGION, C.PRIMARY_REGION] * 3

"""The write lease and crash-safe failover, against moto's server with the real template: renewal
only while the peer's epoch can be read (with an injected clock), a failover killed after each step
and resumed, two operators at once, a forced failover under a partition, and no cross-region call
on a write."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import app as app_module
from chalicelib import constants as C
from chalicelib import lease
from chalicelib.config import Settings
from chalicelib.errors import LeaseExpired
from chalicelib.role import require_active, role_from_record
from chalicelib.times import format_time, parse_time
from dr import failover as fo
from ops.regions import Regions
from tests.conftest import DR, PRIMARY, STAGE, post
from tests.faults import FaultInjector

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def settings(region: str, seconds: float = C.LEASE_SECONDS) -> Settings:
    return Settings(stage=STAGE, region=region, primary_region=PRIMARY, dr_region=DR,
                    table_name="devops-metrics-dev", alert_topic_arn=None, version="", lease_seconds=seconds)


def renew(regions: Regions, region: str, now: datetime) -> lease.Renewal:
    return lease.renew(settings(region), regions.control(region), regions.control(regions.peer(region)), now)


def role(regions: Regions, region: str, now: datetime) -> Any:
    return role_from_record(settings(region), regions.control(region).get(C.FAILOVER_SK), now)


def unreachable(regions: Regions, region: str) -> FaultInjector:
    return FaultInjector(rate=1.0, kinds=("dropped_connection",)).attach(regions.table(region).client)


def quiet(_: str) -> None:
    pass


def no_wait(_: float) -> None:
    pass


# ---- the lease ----------------------------------------------------------------------------------

def test_the_primary_takes_writes_only_inside_a_lease_it_renews_through_the_peer(regions) -> None:
    assert role(regions, PRIMARY, NOW).name == "fenced"  # named active by configuration, no lease yet
    granted = renew(regions, PRIMARY, NOW)
    assert granted.renewed and granted.lease_until == format_time(NOW + timedelta(seconds=C.LEASE_SECONDS))
    copy = regions.control(DR).get(C.FAILOVER_SK)
    assert copy is not None and (copy["active_region"], copy["lease_until"]) == (PRIMARY, granted.lease_until)
    assert role(regions, PRIMARY, NOW + timedelta(seconds=C.LEASE_SECONDS - 1)).writable
    late = role(regions, PRIMARY, NOW + timedelta(seconds=C.LEASE_SECONDS + 1))
    assert late.is_active and not late.writable and late.name == "fenced"
    with pytest.raises(LeaseExpired, match="write lease ran out"):
        require_active(late)
    # a renewal a minute later extends it
    later = renew(regions, PRIMARY, NOW + timedelta(minutes=1))
    assert role(regions, PRIMARY, NOW + timedelta(seconds=C.LEASE_SECONDS + 1)).writable and later.renewed


def test_a_primary_that_cannot_read_its_peer_does_not_renew_and_its_lease_runs_out(regions) -> None:
    renew(regions, PRIMARY, NOW)
    cut = unreachable(regions, DR)
    refused = renew(regions, PRIMARY, NOW + timedelta(minutes=1))
    cut.detach(regions.table(DR).client)
    assert not refused.renewed and refused.reason.startswith("peer unreachable")
    assert not role(regions, PRIMARY, NOW + timedelta(seconds=C.LEASE_SECONDS + 1)).writable


def test_a_renewal_that_finds_a_newer_epoch_in_the_peer_makes_this_region_the_standby(regions) -> None:
    renew(regions, PRIMARY, NOW)
    regions.control(DR).put_failover_record({"active_region": DR, "epoch": 3, "updated_at": format_time(NOW)})
    adopted = renew(regions, PRIMARY, NOW + timedelta(minutes=1))
    assert not adopted.renewed and "adopted the peer's epoch 3" in adopted.reason
    assert role(regions, PRIMARY, NOW).name == "standby" and role(regions, PRIMARY, NOW).epoch == 3


def test_no_renewal_while_a_failover_into_the_peer_is_in_progress(regions) -> None:
    renew(regions, PRIMARY, NOW)
    fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, stop_after="intent", now=lambda: NOW)
    held = renew(regions, PRIMARY, NOW + timedelta(minutes=1))
    assert not held.renewed and "in progress" in held.reason


def test_a_region_made_active_by_a_failover_renews_alone_when_the_old_one_is_gone(regions) -> None:
    renew(regions, PRIMARY, NOW)
    fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, now=lambda: NOW)
    cut = unreachable(regions, PRIMARY)
    alone = renew(regions, DR, NOW + timedelta(minutes=10))
    cut.detach(regions.table(PRIMARY).client)
    assert alone.renewed and alone.reason == "renewed alone (the peer is fenced)"
    assert role(regions, DR, NOW + timedelta(minutes=11)).writable


def test_after_a_failback_the_primary_renews_only_through_its_peer_again(regions) -> None:
    """Only the DR region renews alone: a failback leaves the primary as it was before any failover,
    so a forced failover away from a primary cut off from everything waits out its lease."""
    renew(regions, PRIMARY, NOW)
    fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, now=lambda: NOW)
    fo.failover(regions, PRIMARY, force=True, step=quiet, sleep=no_wait, now=lambda: NOW)
    assert not (regions.control(PRIMARY).get(C.FAILOVER_SK) or {}).get("sole")
    assert renew(regions, PRIMARY, NOW + timedelta(minutes=1)).renewed
    cut = unreachable(regions, DR)
    held = renew(regions, PRIMARY, NOW + timedelta(minutes=2))
    cut.detach(regions.table(DR).client)
    assert not held.renewed and "peer unreachable" in held.reason
    assert not role(regions, PRIMARY, NOW + timedelta(minutes=5)).writable
    waited: list[float] = []
    cut = unreachable(regions, PRIMARY)
    report = fo.failover(regions, DR, force=True, step=quiet, sleep=waited.append, now=lambda: NOW)
    cut.detach(regions.table(PRIMARY).client)
    assert report.epoch == 3 and waited and not report.fenced_old_region  # no --old-region-down needed


def test_right_after_a_failback_a_forced_failover_waits_out_every_lease_the_primary_holds(regions) -> None:
    """A failover grants the target no lease: its first renewal does, and writes it into the old
    region's copy first. (The switch used to write a lease into the target alone, so a forced
    failover in the minute before the first renewal found no copy to wait out: two writers.)"""
    renew(regions, PRIMARY, NOW)
    fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, now=lambda: NOW)
    back = NOW + timedelta(minutes=1)
    fo.failover(regions, PRIMARY, force=True, step=quiet, sleep=no_wait, now=lambda: back)
    assert not role(regions, PRIMARY, back).writable  # no lease until it has renewed through its peer
    assert renew(regions, PRIMARY, back + timedelta(seconds=1)).renewed
    own = parse_time(str(regions.control(PRIMARY).get(C.FAILOVER_SK)["lease_until"]))  # type: ignore[index]
    waited: list[float] = []
    at = back + timedelta(seconds=2)
    cut = unreachable(regions, PRIMARY)
    fo.failover(regions, DR, force=True, step=quiet, sleep=waited.append, now=lambda: at)
    cut.detach(regions.table(PRIMARY).client)
    assert waited and waited[0] >= (own - at).total_seconds() + C.ROLE_CACHE_SECONDS


def test_a_write_makes_no_call_to_the_other_region(client, aws) -> None:
    assert post(client, {"kind": "build", "service": "ci", "status": "succeeded"}).status_code == 201  # a lease
    calls: list[str] = []
    peer = app_module.context().peer
    assert peer is not None
    peer.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    own: list[str] = []
    app_module.context().table.client.meta.events.register("before-call.dynamodb",
                                                           lambda model, **_: own.append(model.name))
    for i in range(20):
        body = {"kind": "build", "service": "ci", "status": "succeeded", "id": f"b-{i}"}
        assert post(client, body).status_code == 201
    assert calls == []
    assert own.count("GetItem") <= 2  # the role, read at most every ROLE_CACHE_SECONDS
    assert own.count("TransactWriteItems") == 20 and own.count("BatchGetItem") == 20


# ---- crash-safe failover ------------------------------------------------------------------------

@pytest.mark.parametrize("crash_after", fo.STEPS[:-1])
def test_a_failover_killed_after_any_step_converges_when_resumed(client, regions, crash_after: str) -> None:
    assert post(client, {"kind": "build", "service": "ci", "status": "succeeded", "id": "late"}).status_code == 201
    fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, stop_after=crash_after)
    # a plain rerun is told what happened and how to finish
    with pytest.raises(fo.FailoverConflict, match="--resume"):
        fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait)
    status = run_dr_status(regions)
    assert f"after '{crash_after}'" in status and "python -m dr failover --to us-west-2 --yes --resume" in status
    report = fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait, resume=True)
    assert report.resumed and report.epoch == 1
    for region in (PRIMARY, DR):
        record = regions.control(region).get(C.FAILOVER_SK)
        assert record is not None and (record["active_region"], record["epoch"]) == (DR, 1), region
    assert fo.pending_intent(regions, DR) is None
    incidents = regions.events(DR).live_ids(STAGE, C.DELIVERY_SERVICE, "incident", ["failover-epoch-1"])
    assert incidents == {"failover-epoch-1"}
    assert regions.events(DR).live_ids("production", "ci", "build", ["late"]) == {"late"}  # the final sweep ran
    with pytest.raises(fo.FailoverRefused, match="already the active region"):
        fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait)


def run_dr_status(regions: Regions) -> str:
    import subprocess
    import sys

    from ops.templates import ROOT

    result = subprocess.run([sys.executable, "-m", "dr", "status", "--stage", STAGE, "--endpoint-url",
                             str(regions.endpoint_url)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing",
                                 "AWS_SECRET_ACCESS_KEY": "testing"})
    return result.stdout + result.stderr


def test_two_operators_failing_over_at_once_one_wins_and_the_other_is_told(regions) -> None:
    renew(regions, PRIMARY, NOW)
    first = {"epoch": 1, "to_region": DR, "from_region": PRIMARY, "owner": "a", "started_at": format_time(NOW),
             "step": "intent", "done": 0, "notified": 0}
    assert regions.control(DR).put_intent(first)
    assert not regions.control(DR).put_intent({**first, "owner": "b"})  # the same epoch: the second loses
    with pytest.raises(fo.FailoverConflict, match="in progress or was interrupted"):
        fo.failover(regions, DR, force=True, step=quiet, sleep=no_wait)
    with pytest.raises(fo.FailoverConflict, match="finish it first"):
        fo.failover(regions, PRIMARY, force=True, step=quiet, sleep=no_wait)  # the other way, meanwhile


def test_a_forced_failover_waits_out_the_lease_of_an_old_region_it_cannot_reach(regions) -> None:
    renew(regions, PRIMARY, NOW)
    waited: list[float] = []
    cut = unreachable(regions, PRIMARY)
    with pytest.raises(fo.FailoverRefused, match="pass --force"):
        fo.failover(regions, DR, step=quiet, sleep=waited.append, now=lambda: NOW)
    report = fo.failover(regions, DR, force=True, step=quiet, sleep=waited.append, now=lambda: NOW)
    cut.detach(regions.table(PRIMARY).client)
    assert waited == [C.LEASE_SECONDS + C.ROLE_CACHE_SECONDS + C.CLOCK_MARGIN_SECONDS]
    assert report.waited_out_lease_seconds == waited[0] < C.RTO_TARGET_SECONDS
    # us-east-1 returns and learns of the failover at its next renewal
    assert "adopted the peer's epoch 1" in renew(regions, PRIMARY, NOW + timedelta(minutes=5)).reason
    # and a forced failback to it, with us-west-2 (made active by a failover) unreachable, cannot
    # wait us-west-2 out: it renews its lease alone
    cut = unreachable(regions, DR)
    with pytest.raises(fo.FailoverRefused, match="--old-region-down"):
        fo.failover(regions, PRIMARY, force=True, step=quiet, sleep=no_wait, now=lambda: NOW)
    cut.detach(regions.table(DR).client)


def test_under_a_partition_the_isolated_primary_stops_within_a_lease_and_no_epoch_has_two_writers(
        client, aws, regions, monkeypatch) -> None:
    """The two regions cannot reach each other; clients and the operator reach both."""
    monkeypatch.setenv(C.ENV_LEASE_SECONDS, "3")
    monkeypatch.setattr(app_module, "_CONTEXT", None)
    build = {"kind": "build", "service": "ci", "status": "succeeded"}
    assert post(client, {**build, "id": "p-0"}).status_code == 201
    peer = app_module.context().peer
    assert peer is not None
    partition = FaultInjector(rate=1.0, kinds=("dropped_connection",)).attach(peer.client)  # us-east-1 -> us-west-2
    accepted: list[tuple[datetime, int]] = []
    started = datetime.now(timezone.utc)
    while datetime.now(timezone.utc) - started < timedelta(seconds=8):
        response = post(client, {**build, "id": f"p-{len(accepted) + 1}"})
        if response.status_code == 201:
            accepted.append((datetime.now(timezone.utc), 0))
        else:
            assert response.json_body["error"]["code"] == "lease_expired"
    last_primary_ack = max(at for at, _ in accepted)
    assert last_primary_ack - started < timedelta(seconds=3 + C.ROLE_CACHE_SECONDS)  # within one lease
    # the operator reaches us-west-2 only through the forced path: us-east-1's record is not written
    cut = unreachable(regions, PRIMARY)
    report = fo.failover(regions, DR, force=True, step=quiet)
    cut.detach(regions.table(PRIMARY).client)
    assert not report.fenced_old_region and report.epoch == 1
    monkeypatch.setenv("AWS_DEFAULT_REGION", DR)
    monkeypatch.setattr(app_module, "_CONTEXT", None)
    first_dr_ack = datetime.now(timezone.utc)
    assert post(client, {**build, "id": "dr-1"}).status_code == 201
    assert last_primary_ack < first_dr_ack  # epoch 0's writer stopped before epoch 1's began
    partition.detach(peer.client)

"""The README's first command, end to end: start the local stack with `make up`, use it over HTTP
as a new user would, and stop it with Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from dashboards.report import METRICS
from local.harness import free_port
from ops.templates import ROOT
from tests.e2e.stack import StackProcess, descendants, running, wait_gone

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    with running() as stack:
        yield stack


def test_the_banner_prints_the_urls_the_emulator_and_the_table(stack: StackProcess) -> None:
    banner = "".join(stack.output)
    for expected in (stack.url, stack.standby_url, f"Global API   (api.devops-metrics.test)  {stack.global_url}",
                     f"http://127.0.0.1:{stack.moto}", "devops-metrics-dev", "curl", "loaded",
                     f"{stack.global_url}/webhooks/github", "devops-metrics-dev-webhook-pagerduty", "send-webhook",
                     "/_outage/partition", "--scenario partition"):
        assert expected in banner


def test_right_after_the_banner_the_standby_is_whole_and_has_a_heartbeat(stack: StackProcess) -> None:
    """The first thing a user may do after the banner: `dr verify` finds no difference (the stream
    poller read the stream from its start), and `dr status` shows the heartbeat a failover needs."""
    verified = stack.dr("verify", "--stage", "dev", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["differences"] == 0, verified.stdout
    status = stack.dr("status", "--stage", "dev", "--json")
    (standby,) = [row for row in json.loads(status.stdout)["regions"] if row["region"] == "us-west-2"]
    assert standby["last_heartbeat"] is not None and standby["replication_lag_seconds"] is not None


def test_a_new_user_session(stack: StackProcess) -> None:
    deployment = {"kind": "deployment", "service": "e2e-service", "status": "success", "id": "e2e-1"}
    first = requests.post(f"{stack.url}/metrics", json=deployment, timeout=10)
    assert first.status_code == 201
    assert first.json() == {"ids": ["e2e-1"], "created": 1, "updated": 0, "duplicates": 0, "stale": 0}
    again = requests.post(f"{stack.url}/metrics", json=deployment, timeout=10)
    assert again.json()["duplicates"] == 1
    rolled_back = requests.post(f"{stack.url}/metrics", json={**deployment, "status": "rolled_back"}, timeout=10)
    assert rolled_back.json()["updated"] == 1
    listed = requests.get(f"{stack.url}/metrics", params={"service": "e2e-service"}, timeout=10).json()
    assert [(item["id"], item["status"], item["revision"]) for item in listed["items"]] == [
        ("e2e-1", "rolled_back", 2)]
    one = f"{stack.url}/metrics/deployment/e2e-1"
    assert requests.get(one, params={"service": "e2e-service"}, timeout=10).json()["status"] == "rolled_back"
    assert requests.delete(one, params={"service": "e2e-service"}, timeout=10).status_code == 204
    assert requests.get(one, params={"service": "e2e-service"}, timeout=10).status_code == 404
    bad = requests.post(f"{stack.url}/metrics", data="{oops", headers={"Content-Type": "application/json"},
                        timeout=10)
    assert bad.status_code == 400 and set(bad.json()["error"]) == {"code", "message", "details"}
    health = requests.get(f"{stack.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["role"] == "active"
    standby = requests.post(f"{stack.standby_url}/metrics", json=deployment, timeout=10)
    assert standby.status_code == 503 and standby.json()["error"]["code"] == "standby_region"


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    """The pipeline's smoke test (pipeline/smoke.py), as its CodeBuild action runs it, unsigned."""
    return subprocess.run([sys.executable, "-m", "pipeline.smoke", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=StackProcess.environment())


def test_the_pipelines_smoke_test_passes_against_both_regions(stack: StackProcess) -> None:
    active = smoke("--endpoint", stack.url)
    assert active.returncode == 0, active.stdout + active.stderr
    assert "us-east-1 is active" in active.stdout and "DELETE /metrics/deployment/smoke-" in active.stdout
    assert "after the delete: 404" in active.stdout
    standby = smoke("--endpoint", stack.standby_url, "--peer-endpoint", stack.url)
    assert standby.returncode == 0, standby.stdout + standby.stderr
    assert "us-west-2 is standby" in standby.stdout and "503 standby_region" in standby.stdout
    assert "(the probe, replicated): 200" in standby.stdout and "(the delete, replicated): 404" in standby.stdout
    # and the probes left nothing a reader sees
    listed = requests.get(f"{stack.url}/metrics", params={"service": "devops-metrics-smoke", "environment": "smoke"},
                          timeout=10).json()
    assert listed["items"] == []


def test_the_smoke_test_fails_naming_the_check_and_the_answer(stack: StackProcess) -> None:
    # the standby named as the active region's peer: the probe cannot be posted there
    wrong = smoke("--endpoint", stack.standby_url, "--peer-endpoint", stack.standby_url)
    assert wrong.returncode == 1
    assert f"FAIL POST /metrics to {stack.standby_url}: expected 201" in wrong.stderr
    assert "standby_region" in wrong.stderr
    nothing = smoke("--endpoint", f"http://127.0.0.1:{free_port()}")
    assert nothing.returncode == 1 and "FAIL GET" in nothing.stderr and "no answer" in nothing.stderr


def test_signed_webhooks_show_up_in_the_metrics_and_the_summary(stack: StackProcess) -> None:
    """A GitHub deployment_status, then PagerDuty's incident.triggered and incident.resolved, from the
    sources' published examples (their times moved together to the last hour), signed with the
    secrets `make up` created, sent as `python -m local send-webhook` sends them."""
    from datetime import datetime, timezone

    from local import webhooks

    fixtures = ROOT / "tests" / "fixtures" / "webhooks"
    deliveries = [webhooks.load(fixtures / name) for name in (
        "github/deployment_status.created.success.json", "pagerduty/incident.triggered.json",
        "pagerduty/incident.resolved.json")]
    query = "?service=e2e-webhooks"
    now = datetime.now(timezone.utc)
    latest = [webhooks.latest_time(payload) for _, payload in deliveries]
    assert None not in latest
    # the GitHub example moves to now; both PagerDuty examples move by one amount, so they stay 143 s apart
    deltas = [now - latest[0], now - latest[2], now - latest[2]]  # type: ignore[operator]
    sources = ("github", "pagerduty", "pagerduty")
    answers = [webhooks.send(stack.url, stack.endpoint, source, event, webhooks.shift_times(payload, delta), query)
               for source, (event, payload), delta in zip(sources, deliveries, deltas, strict=True)]
    assert [(a.status_code, a.json()["created"], a.json()["updated"]) for a in answers] == [
        (200, 1, 0), (200, 1, 0), (200, 0, 1)]
    listed = requests.get(f"{stack.url}/metrics", params={"service": "e2e-webhooks"}, timeout=10).json()["items"]
    assert sorted((item["kind"], item["id"]) for item in listed) == [
        ("deployment", "145988746"), ("incident", "Q2CKYRLH85UNN4")]
    # the summary reads the daily rollups, which the stream handler updates about a second after a write;
    # a batch's deployment and incident rollups are separate items, so one may show before the other
    deadline = time.monotonic() + 15
    while True:
        summary = requests.get(f"{stack.url}/metrics/summary", params={"service": "e2e-webhooks", "days": 1},
                               timeout=10).json()
        counts = (summary["deployment_frequency"]["count"], summary["time_to_restore"]["count"])
        if counts == (1, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counts == (1, 1), summary
    assert summary["deployment_frequency"]["value"] > 0
    # triggered 03:47:13, resolved 03:49:36.358 in the example: 143 s
    assert summary["time_to_restore"]["value"] * 3600 == pytest.approx(143.358, abs=1)
    unsigned = requests.post(f"{stack.url}/webhooks/github", json={}, headers={"X-GitHub-Event": "push"}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "unauthorized"


def test_the_demo_data_is_loaded(stack: StackProcess) -> None:
    summary = requests.get(f"{stack.url}/metrics/summary", params={"service": "checkout"}, timeout=10).json()
    assert summary["deployment_frequency"]["tier"] == "elite"
    teams = requests.get(f"{stack.url}/teams", timeout=10).json()["teams"]
    assert sorted(t["team"] for t in teams) == ["back-office", "storefront"]
    team = requests.get(f"{stack.url}/metrics/summary", params={"team": "storefront"}, timeout=10).json()
    assert team["deployment_frequency"]["count"] == summary["deployment_frequency"]["count"] + requests.get(
        f"{stack.url}/metrics/summary", params={"service": "inventory"}, timeout=10).json()[
        "deployment_frequency"]["count"]
    assert team["deployment_rework_rate"]["value"] > 0 and team["failed_deployment_recovery_time"]["count"] > 0


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_the_report_make_up_writes_shows_the_five_metrics_in_a_real_browser(stack: StackProcess,
                                                                            tmp_path: Path) -> None:
    (line,) = [line for line in stack.output if "wrote the DORA report" in line]
    report = Path(line.split(": ", 1)[1].split(" (", 1)[0].strip())
    page = report.read_text()
    # self-contained: no script, and nothing fetched from the network
    assert "<script" not in page and "src=" not in page and "@import" not in page and "<link" not in page
    for _, title, _ in METRICS:
        assert title in page
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1100,1400", f"--screenshot={shot}", report.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    counts = Counter(image.get_flattened_data())
    # each metric's card is drawn in its own colour: its top border and its weekly bars
    for key, title, colour in METRICS:
        shown = counts[hex_rgb(colour)]
        assert shown > 1500, f"{title} ({key}) is not on the screenshot: {shown} pixels of {colour}"


def test_ctrl_c_stops_everything(stack: StackProcess) -> None:
    # make itself dies of the SIGINT (status -2) once the stack below it has shut down cleanly
    assert stack.interrupt() in (0, -signal.SIGINT, 128 + signal.SIGINT)
    output = "".join(stack.output)
    assert "==> stopping" in output and "==> stopped" in output and "error:" not in output
    for port in (stack.moto, stack.primary, stack.standby):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def test_sigint_stops_a_stack_started_with_sigint_ignored() -> None:
    """A stack started in the background inherits SIGINT ignored; it must stop on SIGINT all the same
    (it used to outlive the test that started it, ports and processes included)."""
    stack = StackProcess("--no-demo-data", sigint_ignored=True)
    try:
        stack.wait_until_ready()
        os.killpg(stack.process.pid, signal.SIGINT)
        stack.process.wait(timeout=60)
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGTERM)
    for port in (stack.moto, stack.primary, stack.standby, stack.global_):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def test_a_killed_runner_leaves_no_process_and_sigterm_to_the_group_stops_the_next_stack_within_15_s() -> None:
    """SIGKILL to the runner (`python -m local up`, below make): its children (moto, both apps, both
    workers) die with it, and `make up` on the same ports starts again. Then SIGTERM to that stack's
    process group, as `docker stop`, systemd, a CI runner or a closed terminal send it: make passes
    the signal on, so the runner gets it twice, and everything still stops within 15 s."""
    first = StackProcess("--no-demo-data")
    try:
        first.wait_until_ready()
        (runner,) = [pid for pid in descendants(first.process.pid) if pid in _children(first.process.pid)]
        children = descendants(runner)
        assert len(children) >= 5, children  # moto, two apps, two workers
        os.kill(runner, signal.SIGKILL)
        assert wait_gone(children, timeout=5) == set(), "children outlived the runner"
    finally:
        if first.process.poll() is None:
            os.killpg(first.process.pid, signal.SIGKILL)
        first.process.communicate(timeout=30)

    second = StackProcess("--no-demo-data", ports=(first.moto, first.primary, first.standby, first.global_))
    try:
        second.wait_until_ready()
        assert requests.get(f"{second.url}/health", timeout=10).status_code == 200
        everything = descendants(second.process.pid)
        started = time.monotonic()
        os.killpg(second.process.pid, signal.SIGTERM)
        assert wait_gone(everything, timeout=15) == set(), "processes outlived SIGTERM by 15 s"
        took = time.monotonic() - started
    finally:
        if second.process.poll() is None:
            os.killpg(second.process.pid, signal.SIGKILL)
    out, _ = second.process.communicate(timeout=30)
    output = "".join(second.output) + (out or "")
    assert "==> stopping" in output and "==> stopped" in output and "Traceback" not in output, output[-3000:]
    assert took < 15
    for port in (second.moto, second.primary, second.standby, second.global_):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def _children(pid: int) -> set[int]:
    return {child for child in descendants(pid) if open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[1]
            == str(pid)}

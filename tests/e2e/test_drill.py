"""`python -m dr drill` on the local stack: RTO under 5 minutes, RPO under 1 minute, the returning
primary fenced, and both tables equal after failback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from chalicelib import constants as C
from local.emulator import ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.e2e


def test_the_drill_meets_the_rto_and_rpo_targets() -> None:
    moto, primary, standby = free_port(), free_port(), free_port()
    stack = subprocess.Popen(
        ["make", "up", f"ARGS=--moto-port {moto} --port {primary} --standby-port {standby} --sweep-every 10"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    try:
        assert stack.stdout is not None
        for line in stack.stdout:
            if "Press Ctrl-C to stop" in line:
                break
        else:
            raise AssertionError("the local stack did not start")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
        drill = subprocess.run(
            [sys.executable, "-m", "dr", "drill", "--json", "--primary-url", f"http://127.0.0.1:{primary}",
             "--standby-url", f"http://127.0.0.1:{standby}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert drill.returncode == 0, drill.stdout + drill.stderr
        result = json.loads(drill.stdout)
        assert result["writes_acknowledged"] > 0
        assert result["rto_seconds"] < C.RTO_TARGET_SECONDS
        assert result["rpo_seconds"] < C.RPO_TARGET_SECONDS
        assert result["fenced_primary_refused_write"] is True
        assert result["differences_after_failback"] == 0
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        stack.communicate(timeout=60)

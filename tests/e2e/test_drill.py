"""`python -m dr drill` on the local stack: RTO under 5 minutes, RPO under 1 minute, the returning
primary fenced, and both tables equal after failback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chalicelib import constants as C
from ops.templates import ROOT
from tests.e2e.stack import StackProcess

pytestmark = pytest.mark.e2e


def test_the_drill_meets_the_rto_and_rpo_targets() -> None:
    stack = StackProcess("--sweep-every 10")
    try:
        stack.wait_until_ready()
        env = {**stack.environment(), "AWS_ENDPOINT_URL": stack.endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
        drill = subprocess.run(
            [sys.executable, "-m", "dr", "drill", "--json", "--primary-url", stack.url,
             "--standby-url", stack.standby_url],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert drill.returncode == 0, drill.stdout + drill.stderr
        result = json.loads(drill.stdout)
        assert result["writes_acknowledged"] > 0
        assert result["rto_seconds"] < C.RTO_TARGET_SECONDS
        assert result["rpo_seconds"] < C.RPO_TARGET_SECONDS
        assert result["fenced_primary_refused_write"] is True
        assert result["differences_after_failback"] == 0
    finally:
        stack.interrupt()

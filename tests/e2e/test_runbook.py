"""dr/RUNBOOK.md, run as written: every command of every sh block, in order, against the local
stack started with the README's command on its default ports. Clients use the Global API, as the
runbook says, so the test also shows the global endpoint following the failover and the failback."""
from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from ops.templates import ROOT
from tests.e2e.stack import StackProcess

pytestmark = pytest.mark.e2e
RUNBOOK = ROOT / "dr" / "RUNBOOK.md"


def runbook_commands() -> list[tuple[str, str | None]]:
    """(command, expected text) for each line of the sh blocks; '# expect: X' names the expectation."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), re.S):
        for line in block.strip().splitlines():
            expect = re.search(r"#\s*expect:\s*(.+)$", line)
            command = line.split("   #")[0].strip()
            commands.append((command, expect.group(1).strip() if expect else None))
    return commands


def test_the_runbook_has_every_step() -> None:
    text = " ".join(c for c, _ in runbook_commands())
    for step in ("dr status", "dr replicate", "dr failover --to us-west-2", "dr verify", "dr failback",
                 "verify --repair", "http://127.0.0.1:8002/metrics"):
        assert step in text


def test_every_runbook_command_works_against_the_local_stack() -> None:
    # The runbook's commands name the default ports. The Global API checks each region every 2 s
    # instead of 10 s, so the global endpoint moves within the retries below (about 6 s, not 30 s).
    stack = StackProcess("--sweep-every 5 --endpoint-check-every 2", default_ports=True)
    try:
        stack.wait_until_ready()
        env = stack.environment()
        env["PATH"] = f"{Path(ROOT / '.venv' / 'bin')}:{env['PATH']}"
        for command, expect in runbook_commands():
            if command.startswith("export "):
                env.update(dict(part.split("=", 1) for part in shlex.split(command)[1:]))
                continue
            for _attempt in range(15):  # the runbook says: rerun while replication catches up
                result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                                        text=True, timeout=120)
                output = result.stdout + result.stderr
                if result.returncode == 0 and (expect is None or expect in output):
                    break
                time.sleep(1)
            else:
                raise AssertionError(f"{command!r} -> exit {result.returncode}, expected {expect!r}:\n{output}")
    finally:
        stack.interrupt()

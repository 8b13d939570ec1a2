"""The local stack's children die with their parent, and `make up` names and stops the leftovers of
a run whose children could not (local.lifeline, local.stack.clear_leftovers)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from local import lifeline
from local.harness import free_port
from local.stack import clear_leftovers
from ops.templates import ROOT
from tests.e2e.stack import wait_gone

# A parent that starts one child through local.lifeline (an HTTP server on a port), prints the
# child's pid, and waits to be killed.
PARENT = """
import subprocess, sys, time
from local import lifeline
child = subprocess.Popen(lifeline.command("http.server", "--bind", "127.0.0.1", sys.argv[1]),
                         env=lifeline.child_env(__import__("os").environ), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(600)
"""


def _listening(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_a_child_started_through_the_lifeline_dies_when_its_parent_is_killed() -> None:
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    _listening(port)
    assert child not in {p.pid for p in lifeline.leftovers()}  # its parent runs it: not a leftover
    parent.kill()  # SIGKILL: nothing of the parent runs, no cleanup
    parent.wait()
    assert wait_gone({child}, timeout=3) == set(), "the child outlived its parent"


def test_make_up_names_and_stops_a_leftover_and_names_a_foreign_port_holder(capsys: pytest.CaptureFixture[str]
                                                                            ) -> None:
    """A leftover: a child of ours (its environment names its parent) whose parent is gone and which
    did not stop (it has no watcher: started before there was one, say)."""
    ours, foreign = free_port(), free_port()
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(ours)],
                                env={**os.environ, lifeline.PARENT_ENV: str(gone.pid)}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    other = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(foreign)],
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _listening(ours)
        _listening(foreign)
        found = {p.pid: p for p in lifeline.leftovers()}
        assert leftover.pid in found and other.pid not in found
        assert found[leftover.pid].ports == (ours,) and found[leftover.pid].parent == gone.pid

        clear_leftovers((ours,))  # stops it, then finds the port free
        printed = capsys.readouterr().out
        assert f"stopping a leftover of an earlier run: pid {leftover.pid}" in printed
        assert f"listening on {ours}" in printed
        assert leftover.wait(timeout=5) == -signal.SIGTERM

        with pytest.raises(RuntimeError) as refused:
            clear_leftovers((foreign,))
        assert f"port {foreign} is in use by pid {other.pid}" in str(refused.value)
        assert f"kill {other.pid}" in str(refused.value)
        assert other.poll() is None  # not ours: named, not stopped
    finally:
        for process in (leftover, other):
            if process.poll() is None:
                process.kill()
            process.wait()

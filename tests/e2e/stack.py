"""The local stack as the README starts it (`make up`), in the background, for end-to-end tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from local.harness import free_port
from ops.templates import ROOT


class StackProcess:
    """`make up ARGS=...`; ports are picked free unless given, or `default_ports`."""

    def __init__(self, extra_args: str = "", default_ports: bool = False, sigint_ignored: bool = False,
                 ports: tuple[int, int, int, int] | None = None) -> None:
        self.moto, self.primary, self.standby, self.global_ = (5000, 8000, 8001, 8002) if default_ports else (
            ports or (free_port(), free_port(), free_port(), free_port()))
        ports = "" if default_ports else (f"--moto-port {self.moto} --port {self.primary} --standby-port "
                                          f"{self.standby} --global-port {self.global_}")
        self.output: list[str] = []
        self.process = subprocess.Popen(
            ["make", "up", f"ARGS={ports} {extra_args}".strip()], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=self.environment(),
            # as a shell starts a background job (nohup, `&`, some CI runners): SIGINT ignored
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None)

    @staticmethod
    def environment() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.primary}"

    @property
    def standby_url(self) -> str:
        return f"http://127.0.0.1:{self.standby}"

    @property
    def global_url(self) -> str:
        return f"http://127.0.0.1:{self.global_}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto}"

    def operator_env(self) -> dict[str, str]:
        """What an operator's shell holds to run `python -m dr` against this stack's emulator."""
        return {**self.environment(), "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing"}

    def dr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m dr ARGS` against this stack, as dr/RUNBOOK.md runs it."""
        return subprocess.run([sys.executable, "-m", "dr", *args], cwd=ROOT, env=self.operator_env(),
                              capture_output=True, text=True, timeout=900)

    def wait_until_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "Press Ctrl-C to stop" in line:
                return
            if time.monotonic() > deadline:
                break
        raise AssertionError("the stack did not start:\n" + "".join(self.output))

    def follow(self) -> None:
        """Keep reading what the stack prints (alerts arrive after the banner)."""
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def wait_for_output(self, text: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "".join(self.output).count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} printed fewer than {count} times:\n" + "".join(self.output[-80:]))
            time.sleep(0.2)

    def interrupt(self) -> int:
        """What Ctrl-C in the terminal does; returns make's exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        reader = getattr(self, "_reader", None)
        if reader is not None:
            self.process.wait(timeout=60)
            reader.join(timeout=10)
            return self.process.returncode
        out, _ = self.process.communicate(timeout=60)
        self.output.append(out or "")
        return self.process.returncode


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command, or None once the process is gone (a zombie
    is gone: it runs nothing and holds no port)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields


def descendants(pid: int) -> set[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    parents = {int(entry): int(fields[1]) for entry in os.listdir("/proc") if entry.isdigit()
               if (fields := _stat(int(entry))) is not None}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Those of `pids` still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := {pid for pid in pids if _stat(pid) is not None}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@contextmanager
def running(extra_args: str = "", follow: bool = False) -> Iterator[StackProcess]:
    """A stack started with `make up ARGS=...`, ready, and stopped with Ctrl-C afterwards (unless a
    test stopped it itself)."""
    stack = StackProcess(extra_args)
    try:
        stack.wait_until_ready()
        if follow:
            stack.follow()
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.interrupt()

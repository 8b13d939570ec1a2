"""The local stack as the README starts it (`make up`), in the background, for end-to-end tests."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from local.emulator import ROOT
from tests.conftest import free_port


class StackProcess:
    """`make up ARGS=...`; ports are picked free unless `default_ports`."""

    def __init__(self, extra_args: str = "", default_ports: bool = False) -> None:
        self.moto, self.primary, self.standby = (5000, 8000, 8001) if default_ports else (
            free_port(), free_port(), free_port())
        ports = "" if default_ports else f"--moto-port {self.moto} --port {self.primary} --standby-port {self.standby}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            ["make", "up", f"ARGS={ports} {extra_args}".strip()], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=self.environment())

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
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto}"

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

    def interrupt(self) -> int:
        """What Ctrl-C in the terminal does; returns make's exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        self.output.append(out or "")
        return self.process.returncode

"""The local stack's child processes die with the process that started them, and the leftovers of a
run that could not clean up (from before this existed, or a machine without it) are found by name.

Every child (moto's server, both `chalice local` apps, both workers, a test's moto server) starts
through this module: `python -m local.lifeline MODULE[:FUNCTION] ARGS...`. It records its parent's
pid in the environment (PARENT_ENV) and watches it: once the parent is gone (SIGKILL, a crash, a
closed terminal), the child sends itself SIGTERM, so it stops as it would when asked to.

A watcher thread is used rather than Linux's PR_SET_PDEATHSIG: that signal follows the thread that
forked the child, not the process, so a child started from a short-lived thread would be killed with
that thread; it is also Linux only. The watcher checks twice a second.
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

PARENT_ENV = "DEVOPS_METRICS_LOCAL_PARENT"  # the pid of the process that started this child
WATCH_EVERY = 0.5  # seconds between checks of the parent
GRACE = 10.0  # seconds a child has to stop after its SIGTERM before it exits regardless
PROC = Path("/proc")


def command(target: str, *args: str) -> list[str]:
    """The command line that runs `target` (a module, or module:function) as a child that dies with
    this process."""
    return [sys.executable, "-m", "local.lifeline", target, *args]


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env`, naming this process as the child's parent."""
    return {**env, PARENT_ENV: str(os.getpid())}


def watch_parent(parent: int, every: float = WATCH_EVERY) -> threading.Thread:
    """A daemon thread that sends this process SIGTERM once `parent` is no longer its parent, and
    ends it GRACE seconds later if it is still running."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE)
        os._exit(1)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread


def run(target: str, args: list[str]) -> None:
    """Run `target` as `python -m` would (a module), or call it (module:function), with `args` as argv."""
    module, _, function = target.partition(":")
    sys.argv = [target, *args]
    if function:
        result = getattr(import_module(module), function)()
        sys.exit(result)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# ---- leftovers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """A child of the local stack (or of a test) whose parent is gone."""

    pid: int
    parent: int
    command: str
    ports: tuple[int, ...]

    def describe(self) -> str:
        ports = f", listening on {', '.join(map(str, self.ports))}" if self.ports else ""
        return f"pid {self.pid} ({self.command}){ports}; its parent, pid {self.parent}, is gone"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited, and waits only to be reaped)."""
    stat = _read(PROC / str(pid) / "stat").decode()
    if stat:
        return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile, or is not ours to read
        return b""


def _parent_of(pid: int) -> int | None:
    """The parent a child of ours recorded, or None for any other process."""
    for entry in _read(PROC / str(pid) / "environ").split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name == PARENT_ENV.encode() and value.isdigit():
            return int(value)
    return None


def _command_line(pid: int) -> str:
    parts = [part.decode(errors="replace") for part in _read(PROC / str(pid) / "cmdline").split(b"\0") if part]
    if parts[2:3] == ["local.lifeline"]:  # python -m local.lifeline TARGET ARGS: name the target
        parts = parts[3:]
    return " ".join(parts)[:120]


def listening_ports() -> dict[int, int]:
    """socket inode -> port, for every TCP socket listening on this machine (Linux's /proc/net)."""
    inodes: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        for line in _read(PROC / "net" / table).decode().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # 0A: LISTEN
                inodes[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return inodes


def ports_of(pid: int, inodes: Mapping[int, int]) -> tuple[int, ...]:
    ports = set()
    try:
        descriptors = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return ()
    for descriptor in descriptors:
        try:
            link = os.readlink(descriptor)
        except OSError:
            continue
        if link.startswith("socket:[") and int(link[8:-1]) in inodes:
            ports.add(inodes[int(link[8:-1])])
    return tuple(sorted(ports))


def leftovers() -> list[Leftover]:
    """Children of ours whose parent is gone (they outlived it: started before this module existed,
    or their watcher could not run). Linux only: elsewhere, none are found."""
    if not (PROC / "self" / "environ").exists():
        return []
    inodes = listening_ports()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        parent = _parent_of(pid)
        if parent is None or _is_parent(pid, parent):
            continue  # not ours, or its parent still runs it
        found.append(Leftover(pid, parent, _command_line(pid), ports_of(pid, inodes)))
    return found


def _is_parent(pid: int, parent: int) -> bool:
    """Whether `parent` is still `pid`'s parent (the recorded pid may have been reused since)."""
    stat = _read(PROC / str(pid) / "stat").decode()
    fields = stat.rsplit(")", 1)[-1].split()
    return len(fields) > 1 and fields[1] == str(parent)


def holder_of(port: int) -> str | None:
    """Who listens on `port` here: 'pid N (command)', or None when no process of ours can be named."""
    if not (PROC / "net" / "tcp").exists():
        return None
    inodes = {inode: p for inode, p in listening_ports().items() if p == port}
    if not inodes:
        return None
    for entry in PROC.iterdir():
        if entry.name.isdigit() and ports_of(int(entry.name), inodes):
            return f"pid {entry.name} ({_command_line(int(entry.name))})"
    return None


def stop(processes: list[Leftover], timeout: float = 10.0) -> list[Leftover]:
    """SIGTERM each, SIGKILL those still running after `timeout`; returns those that survived both."""
    for process in processes:
        try:
            os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p.pid) for p in processes):
        time.sleep(0.1)
    for process in processes:
        if _alive(process.pid):
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.2)
    return [p for p in processes if _alive(p.pid) and _parent_of(p.pid) == p.parent]


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m local.lifeline MODULE[:FUNCTION] [ARGS...]")
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and parent.isdigit():
        watch_parent(int(parent))
    run(argv[0], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])

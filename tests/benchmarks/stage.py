"""The stage the benchmarks deploy, in which regions, and moto's server holding it.

Every benchmark works on the dev stage's table in the primary region (the app's, the replication
source) and the DR region (the peer, the replica). bench_api deploys it into moto in-process
(mock_aws); bench_cold_start and bench_replication into moto's server in a subprocess, with `emulated()`;
bench_local_stack and the load test run the whole local stack, with `local_stack()`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib import constants as C
from chalicelib import names
from local.emulator import Emulator, deploy_all
from local.harness import free_port

if TYPE_CHECKING:
    from local.stack import LocalStack

STAGE = "dev"
PRIMARY_REGION: str = C.PRIMARY_REGION
DR_REGION: str = C.DR_REGION
TABLE = names.table(STAGE)


@contextmanager
def emulated() -> Iterator[Emulator]:
    """moto's server on a free port with the stage's regional stack (dr/regional.yaml) deployed in
    both regions; stopped on the way out."""
    emulator = Emulator.start(free_port())
    try:
        deploy_all(emulator, STAGE, (PRIMARY_REGION, DR_REGION))
        yield emulator
    finally:
        emulator.stop()


@contextmanager
def local_stack(demo_data: bool = False, sweep_every: float = 60.0) -> Iterator[LocalStack]:
    """The local stack `make up` starts (local.stack.LocalStack), on free ports, with its logs in a
    directory of its own (a running `make up` is left alone); its "==>" lines go to that directory's
    stack.log. Stopped on the way out."""
    from local.stack import LocalStack

    log_dir = Path(tempfile.mkdtemp(prefix="devops-metrics-bench-"))
    stack = LocalStack(free_port(), free_port(), free_port(), free_port(), demo_data=demo_data,
                       sweep_every=sweep_every, log_dir=log_dir)
    started = time.perf_counter()
    try:
        with open(log_dir / "stack.log", "w") as out, contextlib.redirect_stdout(out):
            stack.start()
        print(f"(the local stack started in {time.perf_counter() - started:.0f} s; logs in {log_dir}{os.sep})")
        yield stack
    finally:
        stack.stop()

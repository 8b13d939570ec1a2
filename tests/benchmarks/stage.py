"""The stage the benchmarks deploy, in which regions, and moto's server holding it.

Every benchmark works on the dev stage's table in the primary region (the app's, the replication
source) and the DR region (the peer, the replica). bench_api deploys it into moto in-process
(mock_aws); bench_cold_start and bench_replication into moto's server in a subprocess, with `emulated()`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chalicelib import constants as C
from chalicelib import names
from local.emulator import Emulator, deploy_all
from local.harness import free_port

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

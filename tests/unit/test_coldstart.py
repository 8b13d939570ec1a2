"""The garbage collector around what a cold start loads (chalicelib/coldstart.py)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from chalicelib import coldstart
from ops.templates import ROOT


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_loading_pauses_the_collector_then_freezes_what_was_made_and_collects_again() -> None:
    gc.enable()
    frozen_before = gc.get_freeze_count()
    with coldstart.loading():
        assert not gc.isenabled()
        kept = [_Cycle() for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(kept)


def test_a_failing_block_is_not_frozen_and_its_garbage_stays_collectable() -> None:
    gc.enable()
    frozen_before = gc.get_freeze_count()
    refs = []
    with pytest.raises(RuntimeError), coldstart.loading():
        for _ in range(1000):
            refs.append(weakref.ref(_Cycle()))  # a garbage cycle each, only the collector frees
        raise RuntimeError("the region is misconfigured")
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen_before
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with coldstart.loading():
        pass
    assert not gc.isenabled()
    with pytest.raises(ValueError), coldstart.loading():
        raise ValueError("boom")
    assert not gc.isenabled()


def test_importing_the_app_leaves_the_collector_running_with_what_it_loaded_frozen() -> None:
    """app.py pauses the collector at its top and must resume it at its end (a fresh process: this
    one imported app long ago)."""
    probe = ("import gc; assert gc.isenabled(); import app; "
             "print(gc.isenabled(), gc.get_freeze_count() > 10000)")
    env = {**os.environ, "AWS_XRAY_SDK_ENABLED": "false", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_a_cold_start_loads_only_what_a_post_needs() -> None:
    """app.py imports the read routes, the jobs and the health check's modules when first used, so
    a cold start (whose first request is usually a POST) does not load them."""
    probe = "import sys, app; print(' '.join(sorted(m for m in sys.modules if m.startswith('chalicelib'))))"
    env = {**os.environ, "AWS_XRAY_SDK_ENABLED": "false", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert {"chalicelib.ingest", "chalicelib.events", "chalicelib.role"} <= loaded
    later = {"chalicelib.reads", "chalicelib.jobs", "chalicelib.replication", "chalicelib.health_check",
             "chalicelib.checks", "chalicelib.delivery", "chalicelib.dora", "chalicelib.pagination",
             "chalicelib.probes", "chalicelib.alerts"}
    assert loaded & later == set()

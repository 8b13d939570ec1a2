"""The cyclic garbage collector during a cold start.

A cold start makes some 60,000 objects that live as long as the container: the modules, botocore's
service models and clients, pydantic's validators. CPython's collector runs on allocation counts, so
making them sets off about 150 young collections and one or two full ones, and a full collection
walks every object the process has (25 to 30 ms each, timed with gc.callbacks in a cold-start child
like those of tests/benchmarks/bench_cold_start.py) to free next to nothing. So app.py pauses the
collector while its modules load, and the functions pause it while they make their clients; then
gc.freeze() moves what was made into the permanent generation, which later collections skip, and the
collector runs again. The garbage cycles that requests make are collected as before. Frozen objects
are still freed by reference counting, but a garbage cycle that is frozen is never collected:
gc.freeze() takes every object the collector tracks, so that is a cycle made during a pause (loading
makes few: about 700 objects at the end of app.py's imports) or one not yet collected when a block
ends. The blocks run in a function's first invocation, so the latter is what that invocation made
before it (in one process serving every function, as chalice local does, at most one such freeze per
block over the process's life). A block that fails is not frozen: its garbage stays collectable. If
app.py itself fails to import, the collector stays paused; Lambda discards such a process.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def pause() -> bool:
    """Stop automatic collection. True when it was running: pass that to resume()."""
    running = gc.isenabled()
    gc.disable()
    return running


def resume(was_running: bool) -> None:
    """Keep everything made so far out of later collections, and collect again if it was on."""
    gc.freeze()
    if was_running:
        gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    """pause() for the block, then resume(): for code that makes what the container keeps. When the
    block raises, the collector runs again without freezing what the block left behind."""
    running = pause()
    try:
        yield
    except BaseException:
        if running:
            gc.enable()
        raise
    resume(running)

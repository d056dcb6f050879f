"""Fixtures for the scheduling tests: one real `coflux server` and one real `coflux worker` (all the
`schedapps.*` modules, 8 warm processes) for the whole session, and a single-slot worker for
`schedapps.oneslot` when a test asks for it. Workers only one module needs (tags, another
workspace) are started by that module with `Sched.start_worker`.

Tests share the server: every test uses its own log files (tmp_path) and salts, so cache, memo and
defer keys of one test never meet those of another.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Server

from .sched_helpers import MODULES, Sched, SchedWorker


@pytest.fixture(scope="session")
def sched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sched]:
    base = tmp_path_factory.mktemp("sched")
    server = Server(base / "data").start()
    worker = SchedWorker(server, MODULES, concurrency=8, log=base / "main-worker.log").start()
    cluster = Sched(server, worker, base)
    try:
        worker.wait_registered()
        yield cluster
    finally:
        cluster.close()
        worker.stop()
        server.stop()


@pytest.fixture(scope="session")
def one_slot(sched: Sched) -> Iterator[SchedWorker]:
    """The only worker for schedapps.oneslot, with a single process (so one execution at a time)."""
    worker = sched.start_worker("one-slot", ["schedapps.oneslot"], concurrency=1)
    try:
        worker.wait_registered()
        yield worker
    finally:
        worker.stop()

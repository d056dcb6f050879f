"""Fixtures that start REAL processes: one `coflux server` and two `coflux worker`s for the whole
session, the CLI as a subprocess, and a `coflux.client.Client`. See harness.py."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Server, Worker, run_cli, stop_all

# pytest only honours `pytest_plugins` in the rootdir conftest; the tests in tests/jupyter/ need
# these fixtures (they are only activated for tests that request them).
pytest_plugins = ["pytest_jupyter.jupyter_server"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_all()


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `coflux server` for the whole session (tests that need their own start one)."""
    base = tmp_path_factory.mktemp("server")
    srv = Server(base / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def workers(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Worker]]:
    """A worker for myapp.workflows (4 warm processes: workflows block a slot while they wait)
    and one for other.workflows (the target of myapp's stubs), started in parallel."""
    logs = tmp_path_factory.mktemp("workers")
    started = {
        "myapp": Worker(server, ["myapp.workflows"], concurrency=4, log=logs / "myapp.log").start(),
        "other": Worker(server, ["other.workflows"], concurrency=2, log=logs / "other.log").start(),
    }
    try:
        for worker in started.values():
            worker.wait_registered()
        yield started
    finally:
        for worker in started.values():
            worker.stop()


@pytest.fixture(scope="session")
def worker(workers: dict[str, Worker]) -> Worker:
    return workers["myapp"]


@pytest.fixture()
def cli(server: Server, workers: dict[str, Worker]) -> Callable[..., subprocess.CompletedProcess]:
    """`cli("submit", "myapp.workflows/process", '"x"')`: the CLI against the session server
    (COFLUX_SERVER and COFLUX_TOKEN in its environment), with the workers running."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        return run_cli(*args, env=env if env is not None else server.env(), timeout=timeout, cwd=cwd)

    return run


@pytest.fixture(scope="session")
def client(server: Server, workers: dict[str, Worker]) -> Iterator[Any]:
    from coflux.client import Client

    c = Client(server.url, server.token)
    yield c
    c.close()

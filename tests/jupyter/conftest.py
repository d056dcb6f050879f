"""Fixtures for the Jupyter-side tests: pytest-jupyter's server fixtures, the coflux extension
started as Jupyter would start it, kernels, and standalone `coflux server` / `coflux worker`
subprocesses.

pytest only honours `pytest_plugins` in the rootdir conftest, so pytest-jupyter's fixtures and
hooks are imported here instead: they then apply to this directory only (its autouse event-loop
fixture and async-test hooks do not leak into the other tests).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from jx_helpers import env_for_subprocess, stop_process
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures and hooks, see above)


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"coflux_jupyter": True}},
            "CofluxExtension": {"reconnect_grace": 2.0}}


@pytest.fixture
def coflux_ext(jp_serverapp, jp_asyncio_loop, http_server):
    """The CofluxExtension app, started, with the server accepting connections (pytest-jupyter's
    `http_server` only serves when requested; it never calls `_start_jupyter_server_extension`, and
    async fixtures are unsupported, so the loop is driven from this sync fixture)."""
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_extension("coflux_jupyter"))
    (app,) = jp_serverapp.extension_manager.extension_apps["coflux_jupyter"]
    assert app.state is not None and app.state.started
    return app


@pytest.fixture(scope="module")
def coflux_server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A standalone `coflux server` subprocess: yields (url, token)."""
    data = tmp_path_factory.mktemp("coflux-server")
    token = "test-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coflux", "server", "--port", "0", "--token", token, "--data-dir", str(data)],
        cwd=data, env=env_for_subprocess(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"coflux server ready at (\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        stop_process(proc)
        pytest.fail("coflux server did not start:\n" + "".join(lines))
    try:
        yield url, token
    finally:
        stop_process(proc)



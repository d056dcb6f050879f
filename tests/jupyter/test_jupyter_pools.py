"""A notebook cell's task that needs what the kernel lacks (`requires={"gpu": True}`) runs on a
worker that a pool launches: the Jupyter server's coflux extension is configured with the
process launcher (`c.CofluxExtension.launchers = ["process"]`), a pool that provides the tag
and sets `acceptCode=true` launches `coflux worker --accept-code`, and the kernel's function is
shipped to it by value. Real Jupyter server, real kernel, real launched worker process."""

from __future__ import annotations

import asyncio
import os

import pytest
from jx_helpers import HERE, start_kernel
from test_jupyter_shipping import SETUP, _fetch_json, _report, _wait_for

from coflux.client import Client


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"coflux_jupyter": True}},
            "CofluxExtension": {"reconnect_grace": 2.0, "launchers": ["process"]}}


async def test_a_cell_task_requiring_a_gpu_runs_on_a_worker_a_pool_launched(coflux_ext, jp_serverapp, jp_fetch):
    url, token = os.environ["COFLUX_SERVER"], jp_serverapp.identity_provider.token
    loop = asyncio.get_running_loop()

    def create_pool() -> dict:
        with Client(url, token, workspace="default") as client:
            return client.pools.create("gpu", "process", provides={"gpu": ["x"]},
                                       set={"directory": str(HERE), "acceptCode": True, "idleTimeout": 60})
    created = await loop.run_in_executor(None, create_pool)
    assert created["modules"] == [] and created["config"]["acceptCode"] is True
    try:
        _, k = await start_kernel(jp_serverapp)
        kernel_pid = int((await k.ok("import os; print(os.getpid())"))["stdout"])
        await k.ok(SETUP)
        out = await _report(k, "r = flow.run(3); v = r.result(timeout=90); report(r, value=v)", timeout=120)
        assert [c["value"] for c in out["value"]] == [0, 2, 4]
        launches = (await _fetch_json(jp_fetch, "pools", "gpu", "launches"))["launches"]
        assert len(launches) == 1, launches
        [launch] = launches
        # Run by the worker the pool launched (its processes are its children), not by the kernel.
        assert {c["worker"] for c in out["value"]} == {launch["worker"]["pid"]}
        assert all(c["pid"] != kernel_pid for c in out["value"])
        workers = (await _fetch_json(jp_fetch, "workers"))["workers"]
        [session] = [w for w in workers if w["id"] == launch["session"]]
        assert session["accepts_code"] is True and session["connected"]
        steps = [s for s in out["run"]["steps"] if s["target"] == "where"]
        assert len({s["executions"][0]["code_hash"] for s in steps}) == 1
    finally:
        # As a user stops a pool: disabling it drains and stops its launched workers.
        def disable() -> None:
            with Client(url, token, workspace="default") as client:
                client.pools.disable("gpu")
        await loop.run_in_executor(None, disable)

        async def all_exited() -> bool:
            launched = (await _fetch_json(jp_fetch, "pools", "gpu", "launches"))["launches"]
            return all(launch["state"] in ("exited", "failed", "lost") for launch in launched)
        await _wait_for(all_exited, timeout=30, what="the pool's workers to stop")


async def test_an_unknown_launcher_type_is_refused_in_one_line(jp_serverapp):
    from traitlets import TraitError

    from coflux_jupyter.extension import CofluxExtension

    with pytest.raises(TraitError, match="c.CofluxExtension.launchers must be process, docker or kubernetes, not 'ftp'"):
        CofluxExtension(launchers=["ftp"])

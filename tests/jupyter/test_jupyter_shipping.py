"""A task defined in a cell runs where it needs to (issue 21, item 1): a cell task with
`requires={"gpu": True}` (the kernel provides no tags) or `remote=True` is shipped by value to a
headless `coflux worker --accept-code` (under a host name of its own where the system allows);
a step's code is compared with the cell as it is now; a worker without `--accept-code` never gets it, even one
that provides the tag; editing the cell ships the new code under a new hash; a package missing on
the worker fails the step naming the package and the worker. Real Jupyter server (with the coflux
extension), real kernel, real worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request

from jx_helpers import own_host_name_possible, start_kernel, start_worker, stop_process

SETUP = """
%load_ext coflux
import json, os, socket
import coflux as cf

@cf.task(requires={"gpu": True})
def where(x):
    # os.getppid(): the worker whose process ran this (its processes are its children)
    return {"value": x * 2, "worker": os.getppid(), "pid": os.getpid(), "host": socket.gethostname()}

@cf.workflow()
def flow(n):
    return [where(i) for i in range(n)]

def report(run, **extra):
    print(json.dumps({"run": run.inspect(), **extra}))
"""

EDITED = """
@cf.task(requires={"gpu": True})
def where(x):
    return {"value": x * 3, "worker": os.getppid(), "pid": os.getpid(), "host": socket.gethostname()}
"""


async def _fetch_json(jp_fetch, *path: str) -> dict:
    return json.loads((await jp_fetch("coflux", "api", *path)).body)


async def _wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        found = await predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _registered(jp_fetch, proc) -> dict:
    async def session():
        assert proc.poll() is None, stop_process(proc)
        for worker in (await _fetch_json(jp_fetch, "workers"))["workers"]:
            if worker["connected"] and worker["name"].endswith(f":{proc.pid}"):
                return worker
        return None
    return await _wait_for(session, what="the worker to register")


async def _report(k, code: str, timeout: float = 60) -> dict:
    out = await k.ok(code, timeout)
    return json.loads(out["stdout"].strip().splitlines()[-1])


async def test_a_cell_task_requiring_a_gpu_runs_on_a_worker_that_accepts_code(coflux_ext, jp_serverapp, jp_fetch):
    url, token = os.environ["COFLUX_SERVER"], jp_serverapp.identity_provider.token
    loop = asyncio.get_running_loop()
    # Provides the tag but did not opt in: never given shipped code.
    plain = start_worker(url, token, "cfjx_remote", extra=("--provides", "gpu:x"))
    accepting = None
    try:
        plain_session = await _registered(jp_fetch, plain)
        assert plain_session["accepts_code"] is False
        _, k = await start_kernel(jp_serverapp)
        kernel_pid, kernel_host = (await k.ok("import os, socket; print(os.getpid(), socket.gethostname())")
                                   )["stdout"].split()
        kernel_pid = int(kernel_pid)
        await k.ok(SETUP)
        await k.ok("r = flow.run(3)")

        async def waiting_reason():
            queue = await _fetch_json(jp_fetch, "queue")
            return [e["waiting"] for e in queue["queue"] if e["target"] == "where"]
        reasons = await _wait_for(waiting_reason, what="the shipped step to queue")
        assert reasons == ["no worker accepts shipped code (start one with --accept-code)"]

        # As on another machine: a host name of its own, where the system allows one (CI runs as root).
        other_host = "gpu-box-7" if own_host_name_possible() else None
        accepting = start_worker(url, token, "cfjx_remote", extra=("--provides", "gpu:x", "--accept-code"),
                                 host_name=other_host)
        await _registered(jp_fetch, accepting)
        first = await _report(k, "v = r.result(timeout=60); report(r, value=v)")
        assert [c["value"] for c in first["value"]] == [0, 2, 4]
        assert {c["worker"] for c in first["value"]} == {accepting.pid}  # not the plain worker
        assert all(c["pid"] != kernel_pid for c in first["value"])
        if other_host is not None:
            assert kernel_host != other_host and {c["host"] for c in first["value"]} == {other_host}
        steps = [s for s in first["run"]["steps"] if s["target"] == "where"]
        hashes = {s["executions"][0]["code_hash"] for s in steps}
        assert len(hashes) == 1 and len(next(iter(hashes))) == 64

        # Editing the cell: the next run ships the new code, under a new hash.
        await k.ok(EDITED)
        second = await _report(k, "r2 = flow.run(2); v = r2.result(timeout=60); report(r2, value=v)")
        assert [c["value"] for c in second["value"]] == [0, 3]
        new_hashes = {s["executions"][0]["code_hash"] for s in second["run"]["steps"] if s["target"] == "where"}
        assert len(new_hashes) == 1 and new_hashes.isdisjoint(hashes)
        # Re-running a step of the first run from the edited cell ships the new code too.
        old_step = max((s["id"] for s in first["run"]["steps"] if s["target"] == "where"),
                       key=lambda sid: int(sid.split(":")[1]))  # where(2): 4 before the edit
        again = await _report(k, f"a = r.rerun({old_step!r}); v = a.result(timeout=60); report(r, value=v)")
        assert again["value"]["value"] == 6 and again["value"]["worker"] == accepting.pid
        rerun_step = next(s for s in again["run"]["steps"] if s["id"] == old_step)
        assert [e["code_hash"] in new_hashes for e in rerun_step["executions"]] == [False, True]
        # The step's code as the step panel reads it, against the cell as it is now (the kernel
        # declares its targets' code each time a cell defines one).
        async def step_code(step_id: str) -> dict:
            request = urllib.request.Request(f"{url.rstrip('/')}/api/steps/{step_id}/code",
                                             headers={"Authorization": f"token {token}"})
            return json.loads(await loop.run_in_executor(
                None, lambda: urllib.request.urlopen(request, timeout=10).read()))
        step_id = next(s["id"] for s in second["run"]["steps"] if s["target"] == "where")
        code = await step_code(step_id)
        assert code["code_hash"] in new_hashes
        assert code["current"]["kind"] == "kernel" and code["current"]["code_hash"] in new_hashes
        assert code["matches"] is True
        stale_step = next(s["id"] for s in first["run"]["steps"] if s["target"] == "where" and s["id"] != old_step)
        stale = await step_code(stale_step)
        assert stale["code_hash"] in hashes and stale["current"]["code_hash"] in new_hashes
        assert stale["matches"] is False
    finally:
        await loop.run_in_executor(None, stop_process, plain)
        if accepting is not None:
            await loop.run_in_executor(None, stop_process, accepting)


MISSING = """
import sys, pathlib, tempfile
folder = pathlib.Path(tempfile.mkdtemp())
(folder / "kernel_only_helpers.py").write_text("def triple(x):\\n    return x * 3\\n")
sys.path.insert(0, str(folder))
from kernel_only_helpers import triple

@cf.task(remote=True)
def uses_a_package(x):
    return triple(x)

@cf.workflow()
def needs_package(x):
    return uses_a_package(x)

@cf.task()
def in_kernel():
    return os.getpid()

@cf.task(remote=True)
def hop():
    return [os.getpid(), in_kernel()]

@cf.workflow()
def hops():
    return hop()
"""


async def test_a_package_missing_on_the_worker_is_named(coflux_ext, jp_serverapp, jp_fetch):
    url, token = os.environ["COFLUX_SERVER"], jp_serverapp.identity_provider.token
    loop = asyncio.get_running_loop()
    accepting = start_worker(url, token, extra=("--accept-code",))  # no module: shipped code only
    try:
        session = await _registered(jp_fetch, accepting)
        _, k = await start_kernel(jp_serverapp)
        await k.ok(SETUP)
        await k.ok(MISSING)
        assert (await k.ok("print(uses_a_package(2))"))["stdout"].strip() == "6"  # the kernel has it
        # A shipped task calling a plain cell task: that one runs back in the kernel.
        out = await k.ok("print(json.dumps(hops.run().result(timeout=60)), os.getpid())")
        hopped, kernel_pid = out["stdout"].rsplit(" ", 1)
        worker_pid, called_pid = json.loads(hopped)
        assert called_pid == int(kernel_pid) and worker_pid != int(kernel_pid)
        out = await k.run("needs_package.run(1).result(timeout=60)")
        assert out["error"] is not None
        message = json.dumps(out["error"])
        assert "needs package 'kernel_only_helpers'" in message, message
        assert f"not installed on worker {session['name']}" in message, message
    finally:
        await loop.run_in_executor(None, stop_process, accepting)

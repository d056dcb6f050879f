"""Kernels started by the Jupyter server run cell-defined targets; headless workers join the same
server. Everything runs for real: the extension in this process, kernels and workers as processes."""

from __future__ import annotations

import asyncio
import json
import os
import time

from jx_helpers import start_kernel, start_worker, stop_process

DEFINE = """
import threading
import coflux as cf

FACTOR = 2
gate = threading.Event()

@cf.task()
def fetch(url: str) -> int:
    return len(url) * FACTOR

@cf.workflow()
def process(url: str) -> int:
    return fetch(url) + 1

@cf.task()
def held(x: int) -> int:
    gate.wait(30)
    return x

@cf.workflow()
def waits(x: int) -> int:
    return held(x) * 10
"""

FAILING = """
class PaymentDeclined(Exception):
    pass

@cf.task()
def charge(amount: int) -> int:
    if amount > 100:
        raise PaymentDeclined(f"{amount} is over the limit")
    return amount

@cf.workflow()
def checkout(amount: int) -> int:
    return charge(amount)

try:
    checkout.run(500).result(timeout=30)
except PaymentDeclined as e:
    print("caught", type(e).__name__, isinstance(e, cf.ExecutionError), isinstance(e, PaymentDeclined), str(e))
"""

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


async def test_cell_defined_targets_run_in_the_kernel(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    out = await k.ok("import os; print(os.environ['COFLUX_SERVER'], os.environ['COFLUX_TOKEN'])")
    assert out["stdout"].split() == [os.environ["COFLUX_SERVER"], coflux_ext.state.token]

    out = await k.ok("%load_ext coflux")
    assert f"coflux: kernel attached to {os.environ['COFLUX_SERVER']}" in out["stdout"]
    await k.ok(DEFINE)

    # `run()` returns at once; `result()` waits. len("https://x") * 2 + 1
    out = await k.ok("run = process.run('https://x'); print(type(run).__name__, run.id)")
    assert out["stdout"].startswith("Run R")
    assert (await k.ok("run.result(timeout=30)"))["results"] == ["19"]
    # who ran it: the Jupyter user (JupyterHub's, else the account's), not the kernel's internal token
    import getpass

    out = await k.ok("print(run.client.get_run(run.id)['by'])")
    assert out["stdout"].strip() == (os.environ.get("JUPYTERHUB_USER") or getpass.getuser())

    # Executions run in kernel threads while the notebook stays usable: this run blocks on an
    # Event that only a later cell sets.
    out = await k.ok("run2 = waits.run(4)\nrun2")
    (display,) = out["displays"]  # the live run view (it follows the run from the browser)
    assert WIDGET_MIME in display and display["text/plain"].startswith("coflux run R")
    # The status table follows the run from the kernel's threads.
    out = await k.ok("from coflux.widgets import RunWidget\ndisplay(RunWidget(run2))")
    (display,) = out["displays"]
    assert "<RunWidget R" in display["text/plain"]
    comm_id = display[WIDGET_MIME]["model_id"]
    out = await k.ok("import threading\nprint(run2.poll(), sorted(t.name.split('_')[0] for t in threading.enumerate() "
                     "if t.name.startswith('coflux-exec')))")
    assert out["stdout"].startswith("None ['coflux-exec")  # not finished, a worker thread is busy
    assert coflux_ext.current_activity()  # keeps Jupyter's idle shutdown away
    assert (await k.ok("gate.set(); run2.result(timeout=30)"))["results"] == ["40"]

    # The widget was updated live from the kernel's background threads.
    update = await k.wait_comm_msg(lambda c: c["comm_id"] == comm_id
                                   and c["data"].get("state", {}).get("status") == "value")
    assert [s["status"] for s in update["content"]["data"]["state"]["steps"]] == ["value", "value"]
    assert not coflux_ext.current_activity()
    out = await k.ok("w = RunWidget(run2); print(w.status, [(s['target'], s['status']) for s in w.steps])")
    assert out["stdout"].strip() == "value [('waits', 'value'), ('held', 'value')]"

    # Executions see the notebook's live globals ...
    await k.ok("FACTOR = 10")
    assert (await k.ok("process.run('https://x').result(timeout=30)"))["results"] == ["91"]
    # ... and re-running a cell with a changed definition makes the next run use the new code.
    await k.ok("@cf.task()\ndef fetch(url: str) -> int:\n    return len(url) * FACTOR + 1000\n")
    assert (await k.ok("process.run('https://x').result(timeout=30)"))["results"] == ["1091"]

    # A failing task raises, in run.result(), both cf.ExecutionError and the original type.
    out = await k.ok(FAILING)
    assert out["stdout"].strip() == "caught PaymentDeclined True True 500 is over the limit"


async def test_headless_worker_joins_the_jupyter_server(coflux_ext, jp_serverapp, jp_fetch):
    url = os.environ["COFLUX_SERVER"]
    jupyter_token = jp_serverapp.identity_provider.token
    worker = start_worker(url, jupyter_token, "cfjx_remote")  # Jupyter's own token works too
    client = None
    try:
        async def registered() -> bool:
            r = await jp_fetch("coflux", "api", "workflows")
            return any(w["module"] == "cfjx_remote" for w in json.loads(r.body)["workflows"])

        deadline = time.monotonic() + 30
        while not await registered():
            assert worker.poll() is None, stop_process(worker)
            assert time.monotonic() < deadline, "worker did not register"
            await asyncio.sleep(0.1)

        # From a kernel: a cell-defined workflow fans out to tasks that only the headless worker
        # hosts (stubs), and a stub workflow runs entirely on the worker.
        _, k = await start_kernel(jp_serverapp)
        await k.ok("%load_ext coflux")
        await k.ok("""
import coflux as cf

@cf.stub("cfjx_remote")
def square(x: int) -> int: ...

@cf.stub("cfjx_remote")
def where() -> int: ...

@cf.stub("cfjx_remote", type="workflow")
def sum_of_squares(n: int) -> int: ...

@cf.workflow()
def total(n: int) -> list:
    import os
    return [sum(e.result() for e in [square.submit(i) for i in range(n)]), where() != os.getpid()]
""")
        assert (await k.ok("total.run(5).result(timeout=30)"))["results"] == ["[30, True]"]
        assert (await k.ok("sum_of_squares.run(3).result(timeout=30)"))["results"] == ["14"]

        # From a plain Client (in a thread: it blocks), with the internal token.
        from coflux.client import Client

        loop = asyncio.get_running_loop()

        def submit() -> int:
            nonlocal client
            client = Client(url, coflux_ext.state.token)
            return client.submit("cfjx_remote", "sum_of_squares", 4).result(timeout=30)

        assert await loop.run_in_executor(None, submit) == 30
    finally:
        # Off the event loop: closing sockets needs the in-process server to answer.
        loop = asyncio.get_running_loop()
        if client is not None:
            await loop.run_in_executor(None, client.close)
        output = await loop.run_in_executor(None, stop_process, worker)
    assert "coflux worker: cfjx_remote" in output

"""Code-aware caching, resume and edit-and-continue from a notebook kernel (issue 21, items 2-4):
a task cached with `cf.Cache(version=cf.CODE)` hits after a kernel restart when its cells are the
same (comments and whitespace aside) and misses once a helper it calls is edited; a failed run
resumes re-running only its failed calls; `run.rerun(step)` runs a step with the cell's new
definition. Kernels are started by the Jupyter server with the coflux extension."""

from __future__ import annotations

import json

from jx_helpers import start_kernel

SETUP = """
%load_ext coflux
import json
import coflux as cf

calls = []

def report(run, **extra):
    print(json.dumps({"run": run.inspect(), **extra}))
"""

CELLS = """
def scale(x):
    return x * 10

@cf.task(cache=cf.Cache(version=cf.CODE))
def compute(x):
    calls.append(x)
    return scale(x) + 1

@cf.workflow()
def flow(x):
    return compute(x)
"""

# The same code with comments, blank lines, other spacing and a docstring.
CELLS_COSMETIC = """
def scale(x):
    # ten times, as before
    return x*10


@cf.task(cache=cf.Cache(version=cf.CODE))
def compute(x):
    '''The same computation, documented.'''
    calls.append( x )   # count real runs
    return scale(x) + 1

@cf.workflow()
def flow(x):
    return compute(x)
"""

CELLS_HELPER_EDITED = CELLS_COSMETIC.replace("return x*10", "return x*100")


async def report(k, code: str, timeout: float = 60) -> dict:
    out = await k.ok(code, timeout)
    return json.loads(out["stdout"].strip().splitlines()[-1])


def step_of(run: dict, target: str) -> dict:
    (step,) = [s for s in run["steps"] if s["target"] == target]
    return step


async def test_a_code_cache_hits_across_a_kernel_restart_and_misses_after_an_edit(coflux_ext, jp_serverapp):
    kernel_id, k = await start_kernel(jp_serverapp)
    await k.ok(SETUP)
    await k.ok(CELLS)
    first = await report(k, "r = flow.run(4); v = r.result(timeout=30)\nreport(r, value=v, ran=len(calls))")
    assert first["value"] == 41 and first["ran"] == 1
    computed = step_of(first["run"], "compute")["executions"][0]
    assert computed["result"]["kind"] == "value" and len(computed["code_hash"]) == 64

    # A restarted kernel (a new process) with cosmetically different cells: a hit.
    await jp_serverapp.kernel_manager.restart_kernel(kernel_id)
    await k.client.wait_for_ready(timeout=60)
    await k.ok(SETUP)
    await k.ok(CELLS_COSMETIC)
    again = await report(k, "r = flow.run(4); v = r.result(timeout=30)\nreport(r, value=v, ran=len(calls))")
    assert again["value"] == 41 and again["ran"] == 0
    hit = step_of(again["run"], "compute")["executions"][0]
    assert hit["result"]["kind"] == "cached" and hit["result"]["successor"] == computed["id"]
    assert hit["code_hash"] == computed["code_hash"]

    # The helper's cell edited (the task's cell untouched): a miss, with the new code.
    await k.ok(CELLS_HELPER_EDITED.split("@cf.task")[0])
    edited = await report(k, "r = flow.run(4); v = r.result(timeout=30)\nreport(r, value=v, ran=len(calls))")
    assert edited["value"] == 401 and edited["ran"] == 1
    miss = step_of(edited["run"], "compute")["executions"][0]
    assert miss["result"]["kind"] == "value" and miss["code_hash"] != computed["code_hash"]


async def test_resume_and_rerun_a_step_from_cells(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok(SETUP)
    await k.ok("""
broken = {3}

@cf.task()
def item(i):
    calls.append(i)
    if i in broken:
        raise ValueError(f"item {i} is broken")
    return i + 1

@cf.workflow()
def fan(n):
    handles = [item.submit(i) for i in range(n)]
    values, failed = [], 0
    for h in handles:
        try:
            values.append(h.result())
        except cf.ExecutionError:
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} failed")
    return sum(values)
""")
    failed = await k.run("r = fan.run(10); r.result(timeout=60)")
    assert failed["error"] is not None and "1 failed" in failed["error"]
    # The broken input is fixed in the notebook's state; resume runs only the failed call.
    resumed = await report(k, "broken.clear(); calls.clear()\n"
                              "a = r.resume(); v = a.result(timeout=60)\n"
                              "report(r, value=v, ran=sorted(calls), attempt=a.id)")
    assert resumed["value"] == sum(range(1, 11)) and resumed["ran"] == [3]
    assert resumed["attempt"].endswith(":1:2")
    children = [s for s in resumed["run"]["steps"] if s["parent"] == resumed["attempt"]]
    assert sorted(s["executions"][0]["reused_from"] or 0 for s in children) == [0] + [1] * 9

    # Edit and continue: the task's cell redefined, one step re-run with the new definition.
    await k.ok("""
@cf.task()
def item(i):
    calls.append(i)
    return i * 1000
""")
    step = [s for s in children if s["executions"][0]["reused_from"]][0]  # a call the resume reused
    rerun = await report(k, f"calls.clear(); a = r.rerun({step['id']!r}); v = a.result(timeout=60)\n"
                            "report(r, value=v, ran=calls, attempt=a.id)")
    index = step["arguments"][0]["v"]
    assert rerun["value"] == index * 1000 and rerun["ran"] == [index]
    assert rerun["attempt"] == f"{step['id']}:2"
    attempts = [s for s in rerun["run"]["steps"] if s["id"] == step["id"]][0]["executions"]
    assert [e["cause"] for e in attempts] == [None, "rerun"]
    assert attempts[1]["code_hash"] and attempts[1]["code_hash"] != attempts[0]["code_hash"]
    # The workflow used the old result: it is marked stale, as after any re-run.
    assert [s for s in rerun["run"]["steps"] if s["id"].endswith(":1")][0]["stale"] is True

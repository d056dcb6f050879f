"""Options on a kernel worker (design.md section 3): cell-defined targets with cache, memo, retries,
timeout, cancel and suspend behave as on a headless worker. The kernel is started by the Jupyter
server with the coflux extension; its cells count what ran in plain Python globals, and report
runs as `run.inspect()` JSON."""

from __future__ import annotations

import json

from jx_helpers import start_kernel

SETUP = """
%load_ext coflux
import json, threading, time
import coflux as cf

calls = []
progress = {}

def ran(name):
    return sum(1 for c in calls if c == name)

def report(run, **extra):
    snapshot = run.inspect()
    print(json.dumps({"run": snapshot, **extra}))
"""


async def kernel(jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok(SETUP)
    return k


async def report(k, code: str, timeout: float = 60) -> dict:
    """Run a cell whose last line is `report(run, ...)`; return what it printed."""
    out = await k.ok(code, timeout)
    return json.loads(out["stdout"].strip().splitlines()[-1])


def executions(run: dict, target: str) -> list[dict]:
    return [e for step in run["steps"] if step["target"] == target for e in step["executions"]]


def kinds(run: dict, target: str) -> list[str | None]:
    return [e["result"]["kind"] if e["result"] else None for e in executions(run, target)]


async def test_cache_memo_and_retries_in_a_kernel(coflux_ext, jp_serverapp):
    k = await kernel(jp_serverapp)
    await k.ok("""
@cf.task(cache=True)
def cached(x):
    calls.append("cached")
    return x * 2

@cf.workflow()
def use_cache(x):
    return cached(x)

@cf.task(memo=True)
def memoised(x):
    calls.append("memoised")
    return x + 1

@cf.workflow()
def use_memo(x):
    a, b = memoised.submit(x), memoised.submit(x)
    return [a.id == b.id, a.result(), b.result(), memoised(x)]

@cf.task(retries=cf.Retries(2, backoff=(0.2, 0.4)))
def flaky():
    calls.append("flaky")
    if ran("flaky") < 3:
        raise RuntimeError("flake %d" % ran("flaky"))
    return "ok"

@cf.workflow()
def use_flaky():
    return flaky()
""")
    # cache: the second run does not execute the task.
    first = await report(k, "r1 = use_cache.run(3); v1 = r1.result(timeout=30)\n"
                            "r2 = use_cache.run(3); v2 = r2.result(timeout=30)\n"
                            "report(r2, values=[v1, v2], ran=ran('cached'), first=r1.id)")
    assert first["values"] == [6, 6] and first["ran"] == 1
    (hit,) = executions(first["run"], "cached")
    assert hit["result"]["kind"] == "cached" and hit["result"]["successor"] == f"{first['first']}:2:1"

    # memo: equal calls in a run are one execution and one step.
    memo = await report(k, "r = use_memo.run(1); v = r.result(timeout=30)\nreport(r, value=v, ran=ran('memoised'))")
    assert memo["value"] == [True, 2, 2, 2] and memo["ran"] == 1
    assert len(executions(memo["run"], "memoised")) == 1

    # retries: three attempts, 0.2 s then 0.4 s apart; the caller sees the success only.
    retried = await report(k, "r = use_flaky.run(); v = r.result(timeout=30)\nreport(r, value=v, ran=ran('flaky'))")
    assert retried["value"] == "ok" and retried["ran"] == 3
    attempts = executions(retried["run"], "flaky")
    assert [e["result"]["kind"] for e in attempts] == ["error", "error", "value"]
    for previous, retry, wait in zip(attempts[:-1], attempts[1:], (0.2, 0.4), strict=True):
        assert abs(retry["execute_after"] - retry["created_at"] - wait) < 0.02
        assert wait - 0.02 <= retry["started_at"] - previous["result"]["at"] < wait + 1.5


async def test_timeout_and_cancel_stop_kernel_threads(coflux_ext, jp_serverapp):
    k = await kernel(jp_serverapp)
    await k.ok("""
@cf.task(timeout=0.5)
def spin(key):
    progress[key] = 0
    for _ in range(1000):
        progress[key] += 1
        time.sleep(0.01)
    calls.append("finished " + key)
    return "finished"

@cf.workflow()
def catch_timeout():
    try:
        return spin("timeout")
    except cf.ExecutionTimeout as e:
        return "timed out: %s" % isinstance(e, cf.ExecutionTerminated)

@cf.workflow()
def catch_cancel():
    try:
        return spin.with_timeout(0)("cancel")
    except cf.ExecutionCancelled:
        return "cancelled"

@cf.workflow()
def whole_run():
    return spin.with_timeout(0)("run")
""")
    # timeout: reported at once as `timeout`, the waiter gets ExecutionTimeout, the thread stops.
    timed = await report(k, "r = catch_timeout.run(); v = r.result(timeout=30)\n"
                            "before = progress['timeout']; time.sleep(0.3)\n"
                            "report(r, value=v, before=before, after=progress['timeout'])")
    assert timed["value"] == "timed out: True"
    (execution,) = executions(timed["run"], "spin")
    assert execution["result"]["kind"] == "timeout"
    assert 0.5 - 0.02 <= execution["result"]["at"] - execution["assigned_at"] < 2.5
    assert 0 < timed["before"] == timed["after"] < 1000  # stopped, not finished

    # cancel one execution (the HTTP/CLI way: by id): its waiter gets ExecutionCancelled.
    await k.ok("r = catch_cancel.run()\n"
               "deadline = time.monotonic() + 20\n"
               "while progress.get('cancel', 0) < 5 and time.monotonic() < deadline: time.sleep(0.01)\n"
               "print(r.client.cancel(r.id + ':2:1'))")
    cancelled = await report(k, "v = r.result(timeout=30); before = progress['cancel']; time.sleep(0.3)\n"
                                "report(r, value=v, before=before, after=progress['cancel'])")
    assert cancelled["value"] == "cancelled"
    assert kinds(cancelled["run"], "spin") == ["cancelled"]
    assert cancelled["before"] == cancelled["after"] < 1000

    # cancel the whole run: the workflow and its task stop.
    whole = await report(k, "r = whole_run.run()\n"
                            "deadline = time.monotonic() + 20\n"
                            "while progress.get('run', 0) < 5 and time.monotonic() < deadline: time.sleep(0.01)\n"
                            "cancelled = sorted(r.cancel())\n"
                            "try:\n    r.result(timeout=30)\nexcept cf.ExecutionCancelled:\n    outcome = 'cancelled'\n"
                            "before = progress['run']; time.sleep(0.3)\n"
                            "report(r, cancelled=cancelled, outcome=outcome, before=before, after=progress['run'])")
    assert whole["cancelled"] == sorted([f"{whole['run']['id']}:1:1", f"{whole['run']['id']}:2:1"])
    assert whole["outcome"] == "cancelled" and whole["before"] == whole["after"] < 1000
    assert [s["executions"][0]["result"]["kind"] for s in whole["run"]["steps"]] == ["cancelled", "cancelled"]
    calls = json.loads((await k.ok("print(json.dumps(calls))"))["stdout"])
    assert [c for c in calls if c.startswith("finished")] == []  # no spin ran to its end


async def test_suspend_and_suspense_in_a_kernel(coflux_ext, jp_serverapp):
    k = await kernel(jp_serverapp)
    await k.ok("""
@cf.workflow()
def nap():
    calls.append("nap")
    if ran("nap") == 1:
        try:
            cf.suspend(0.4)
        finally:
            calls.append("finally")
    return ran("nap")

@cf.task()
def slow_child():
    calls.append("slow_child")
    time.sleep(0.6)
    return "slow"

@cf.workflow(memo=True)
def resumable():
    calls.append("resumable")
    with cf.suspense(0.2):
        value = slow_child()
    return [value, ran("resumable"), ran("slow_child")]
""")
    napped = await report(k, "r = nap.run(); v = r.result(timeout=30)\nreport(r, value=v, finally_=ran('finally'))")
    assert napped["value"] == 2 and napped["finally_"] == 1
    first, second = napped["run"]["steps"][0]["executions"]
    assert first["result"]["kind"] == "suspended" and first["result"]["successor"] == second["id"]
    assert 0.4 - 0.01 <= second["execute_after"] - first["started_at"] < 1.0
    assert second["started_at"] >= second["execute_after"]

    resumed = await report(k, "r = resumable.run(); v = r.result(timeout=30)\nreport(r, value=v)")
    assert resumed["value"] == ["slow", 2, 1]  # two attempts, the child ran once
    first, second = resumed["run"]["steps"][0]["executions"]
    assert [first["result"]["kind"], second["result"]["kind"]] == ["suspended", "value"]
    (child,) = executions(resumed["run"], "slow_child")
    assert second["started_at"] >= child["result"]["at"]


async def test_with_copies_of_a_cell_workflow_run_with_their_options(coflux_ext, jp_serverapp):
    """`flow.with_requires(...).run()` and `flow.with_retries(...).run()` from a cell: the copy's
    options are the run's root step's (and its requires the run's), not the decorator's."""
    k = await kernel(jp_serverapp)
    await k.ok("""
@cf.workflow()
def flow():
    calls.append("flow")
    if ran("flow") == 1:
        raise RuntimeError("first attempt fails")
    return ran("flow")
""")
    # No worker provides gpu (the kernel provides nothing): the run waits and never runs here.
    out = await report(k, "r = flow.with_requires({'gpu': 'A100'}).run()\n"
                          "report(r, polled=r.poll(1.0, default='waiting'), ran=ran('flow'))")
    assert out["polled"] == "waiting" and out["ran"] == 0
    assert out["run"]["requires"] == {"gpu": ["A100"]}
    (waiting,) = executions(out["run"], "flow")
    assert waiting["assigned_at"] is None and waiting["result"] is None
    await k.ok("r.cancel()")
    # The decorator has no retries; the copy's one retry lets the second attempt succeed.
    out = await report(k, "r = flow.with_retries(1).run()\nreport(r, value=r.result(timeout=30))")
    assert out["value"] == 2 and kinds(out["run"], "flow") == ["error", "value"]

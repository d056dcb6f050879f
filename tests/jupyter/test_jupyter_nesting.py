"""Nested waits in a kernel: cell-defined tasks calling tasks deeper and wider than the kernel's
threads complete (a blocked execution parks and gives its slot back), with the default
concurrency of `%load_ext coflux` (8) and with `cf.attach(concurrency=1)`."""

from __future__ import annotations

import json

import pytest
from jx_helpers import start_kernel

DEFINITIONS = """
import json, threading, time
import coflux as cf

running = [0]
most = [0]
lock = threading.Lock()

def busy():
    with lock:
        running[0] += 1
        most[0] = max(most[0], running[0])
    time.sleep(0.01)
    with lock:
        running[0] -= 1

@cf.task()
def leaf(x):
    busy()
    return x + 1

@cf.task()
def descend(depth):
    busy()
    return 0 if depth == 0 else 1 + descend(depth - 1)

@cf.task()
def pair(i):
    busy()
    return leaf(i) + leaf(i * 10)

@cf.workflow()
def recursion(depth):
    return descend(depth)

@cf.workflow()
def wide(n):
    return sum(e.result() for e in [pair.submit(i) for i in range(n)])

@cf.task()
def middle(x):
    busy()
    return leaf(x) * 2

@cf.workflow()
def chain(x):
    return middle(x)

@cf.workflow()
def sub_flow(x):
    return leaf(x) + leaf(x + 1)

@cf.task()
def starts_child(x):
    return sub_flow(x)

@cf.workflow()
def via_child_run(x):
    return starts_child(x)

@cf.task(cache=True)
def fib(n):
    if n <= 1:
        return n
    a, b = fib.submit(n - 1), fib.submit(n - 2)
    return a.result() + b.result()

@cf.workflow()
def fibonacci(n):
    return fib(n)
"""


@pytest.mark.parametrize("attach", ["%load_ext coflux", "import coflux as cf\ncf.attach(concurrency=1)"],
                         ids=["default", "concurrency-1"])
async def test_nested_waits_complete_in_a_kernel(coflux_ext, jp_serverapp, attach):
    _, k = await start_kernel(jp_serverapp)
    await k.ok(attach)
    await k.ok(DEFINITIONS)
    out = await k.ok("values = [recursion.run(12).result(timeout=60), wide.run(50).result(timeout=60),\n"
                     "          fibonacci.run(12).result(timeout=60), chain.run(1).result(timeout=60),\n"
                     "          via_child_run.run(3).result(timeout=60)]\n"
                     "print(json.dumps({'values': values, 'most': most[0]}))", timeout=120)
    report = json.loads(out["stdout"].strip().splitlines()[-1])
    assert report["values"] == [12, sum((i + 1) + (i * 10 + 1) for i in range(50)), 144, 4, 9]
    limit = 1 if "concurrency=1" in attach else 8
    assert 1 <= report["most"] <= limit, report  # parked threads do not count, running ones are bounded


async def test_the_parking_bound_is_told_in_the_notebook(coflux_ext, jp_serverapp):
    """A run stuck because the kernel may park no more says why, in its widget."""
    _, k = await start_kernel(jp_serverapp)
    await k.ok("import coflux as cf\ncf.attach(concurrency=1, max_parked=0)")
    await k.ok(DEFINITIONS)
    out = await k.ok("import time\nr = recursion.run(3)\nfrom coflux.widgets import RunWidget\nw = RunWidget(r)\n"
                     "deadline = time.time() + 30\n"
                     "while not w.warning and time.time() < deadline:\n    time.sleep(0.05)\n"
                     "print(json.dumps({'warning': w.warning}))\nr.cancel()", timeout=60)
    report = json.loads(out["stdout"].strip().splitlines()[-1])
    assert "--max-parked" in report["warning"] and "holding a slot" in report["warning"]

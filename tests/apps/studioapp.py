"""Workflows for tests/test_studio_server.py: a signature for Studio's run dialog, a group, a
child run, dependencies, and a task no worker can take (the queue)."""

import os
import time

import coflux as cf


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.workflow()
def child(x: int) -> int:
    return square(x)


@cf.workflow()
def shapes(n: int, scale: float = 1.5, *, label: str = "run", gate: str = "") -> int:
    """Squares in a group, then a child run.

    The run dialog shows this docstring. With `gate`, it starts once that file exists (so a test
    can subscribe first)."""
    deadline = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    with cf.group("squares"):
        handles = [square.submit(i) for i in range(n)]
    return sum(h.result() for h in handles) + child(n)


@cf.task(requires={"gpu": ["a100"]})
def on_gpu() -> int:
    return 1


@cf.workflow()
def wants_gpu() -> int:
    """Waits in the queue: no worker provides gpu:a100."""
    return on_gpu()

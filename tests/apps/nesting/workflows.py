"""Nested waits deeper and wider than a worker's slots (issue: workers that never hang)."""

import coflux as cf


@cf.task()
def leaf(x: int) -> int:
    return x + 1


@cf.task()
def middle(x: int) -> int:
    return leaf(x) * 2


@cf.workflow()
def chain(x: int) -> int:
    """workflow -> task -> task"""
    return middle(x)


@cf.task()
def descend(depth: int) -> int:
    return 0 if depth == 0 else 1 + descend(depth - 1)


@cf.workflow()
def recursion(depth: int) -> int:
    return descend(depth)


@cf.task()
def pair(i: int) -> int:
    return leaf(i) + leaf(i * 10)


@cf.workflow()
def wide(n: int) -> int:
    """A fan-out of n tasks that each call two tasks."""
    return sum(e.result() for e in [pair.submit(i) for i in range(n)])


@cf.workflow()
def sub_flow(x: int) -> int:
    return leaf(x) + leaf(x + 1)


@cf.task()
def starts_child(x: int) -> int:
    return sub_flow(x)


@cf.workflow()
def via_child_run(x: int) -> int:
    """A task that starts a child workflow that calls tasks."""
    return starts_child(x)


@cf.task(cache=True)
def fib(n: int) -> int:
    if n <= 1:
        return n
    a = fib.submit(n - 1)
    b = fib.submit(n - 2)
    return a.result() + b.result()


@cf.workflow()
def fibonacci(n: int) -> int:
    """The docs' cached fibonacci (in-flight cache linking)."""
    return fib(n)


@cf.workflow()
def nested_fanout(n: int) -> int:
    """n tasks that each call a task (the nested fan-out benchmark)."""
    return sum(e.result() for e in [middle.submit(i) for i in range(n)])


def _busy(directory: str, name: str) -> None:
    """Run code for a while and record when (to check how many ran at once)."""
    import os
    import time

    start = time.time()
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        pass
    with open(os.path.join(directory, name), "w") as f:
        f.write(f"{start} {time.time()}")


@cf.task()
def busy_leaf(directory: str, i: int, j: int) -> int:
    _busy(directory, f"leaf-{i}-{j}")
    return 1


@cf.task()
def busy_task(directory: str, i: int) -> int:
    _busy(directory, f"task-{i}")
    return busy_leaf(directory, i, 0) + busy_leaf(directory, i, 1)


@cf.workflow()
def overlapping(directory: str, n: int) -> int:
    return sum(e.result() for e in [busy_task.submit(directory, i) for i in range(n)])

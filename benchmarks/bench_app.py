"""Workflows the benchmarks run (imported by the benchmark's worker)."""

import coflux as cf


@cf.task()
def inc(x: int) -> int:
    return x + 1


@cf.workflow()
def chain(n: int) -> int:
    value = 0
    for _ in range(n):
        value = inc(value)
    return value


@cf.workflow()
def fan_out(n: int) -> int:
    executions = [inc.submit(i) for i in range(n)]
    return sum(e.result() for e in executions)


@cf.workflow()
def one_task(x: int) -> int:
    return inc(x)


@cf.task(cache=True)
def expensive(x: int, salt: str) -> int:
    """Stands in for real work worth caching (2 ms, as a small query or file read would take)."""
    import time

    time.sleep(0.002)
    return x * 2


@cf.workflow()
def cached_fan_out(n: int, salt: str) -> int:
    executions = [expensive.submit(i, salt) for i in range(n)]
    return sum(e.result() for e in executions)


@cf.task()
def inc_twice(x: int) -> int:
    """A task that calls a task: it waits (parked) while its child runs."""
    return inc(x) + 1


@cf.workflow()
def nested_fan_out(n: int) -> int:
    executions = [inc_twice.submit(i) for i in range(n)]
    return sum(e.result() for e in executions)


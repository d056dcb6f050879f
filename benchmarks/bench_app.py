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

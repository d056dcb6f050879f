"""Workflows of the observability benchmark (logs and metrics on the step path)."""

import coflux as cf

_points = cf.Metric("points", throttle=None)


@cf.task()
def chatty_inc(x: int) -> int:
    """inc, plus 10 log lines and 10 metric points (the observability benchmark)."""
    for k in range(10):
        cf.log_info("step {k} of {x}", k=k, x=x)
        _points.record(k, at=k)
    return x + 1


@cf.workflow()
def observed_fan_out(n: int) -> int:
    executions = [chatty_inc.submit(i) for i in range(n)]
    return sum(e.result() for e in executions)


@cf.task()
def flood(i: int, lines: int) -> int:
    for k in range(lines):
        if k % 100_000 == 7:
            cf.log_info("needle {k} in task {i}", k=k, i=i)
        else:
            cf.log_info("hay {k} of task {i}", k=k, i=i)
    return lines


@cf.workflow()
def log_flood(tasks: int, lines: int) -> int:
    return sum(e.result() for e in [flood.submit(i, lines) for i in range(tasks)])

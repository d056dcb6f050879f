"""Re-running a step: a new attempt that ignores cache and memo; the rest of the run is left alone."""

from __future__ import annotations

import os

import coflux as cf

from .common import count, mark, wait_for


@cf.task(cache=True)
def produce(log: str, x: int) -> int:
    mark(log, f"produce {x}")
    return 100 * count(log, "produce") + x


@cf.task()
def consume(log: str, value: int) -> int:
    mark(log, f"consume {value}")
    return value + 1


@cf.workflow()
def pipeline(log: str, x: int) -> int:
    mark(log, "pipeline")
    return consume(log, produce(log, x))


@cf.task()
def blocker(log: str, gate: str) -> int:
    mark(log, f"blocker {os.getpid()}")
    wait_for(gate)
    return count(log, "blocker")


@cf.workflow()
def blocked(log: str, gate: str) -> int:
    mark(log, "blocked")
    return blocker(log, gate)


@cf.task(memo=True)
def memoised(log: str, x: int) -> int:
    mark(log, f"memoised {x}")
    return count(log, "memoised")


@cf.workflow()
def memo_twice(log: str) -> list:
    return [memoised(log, 1), memoised(log, 1)]


@cf.task(retries=cf.Retries(1, backoff=(0, 0)))
def always_fails(log: str) -> None:
    mark(log, "always_fails")
    raise ValueError(f"failure {count(log, 'always_fails')}")


@cf.workflow()
def failing(log: str) -> None:
    always_fails(log)


@cf.workflow()
def child_flow(log: str, gate: str) -> int:
    mark(log, f"child_flow {os.getpid()}")
    started = count(log, "child_flow")  # 1 for the first child run, 2 for the re-run's
    wait_for(gate)
    return started


@cf.workflow()
def spawns(log: str, gate: str) -> int:
    return child_flow(log, gate)

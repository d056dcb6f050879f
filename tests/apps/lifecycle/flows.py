"""Workflows for the worker lifecycle tests (drain); their tasks live in lifecycle.tasks, hosted by
other workers."""

import coflux as cf


@cf.stub("lifecycle.tasks")
def slow(directory: str, i: int, seconds: float) -> int: ...


@cf.stub("lifecycle.tasks", retries=1)
def slow_retried(directory: str, i: int, seconds: float) -> int: ...


@cf.workflow()
def fanout(directory: str, n: int, seconds: float) -> list[int]:
    return [e.result() for e in [slow.submit(directory, i, seconds) for i in range(n)]]


@cf.workflow()
def one_retried(directory: str, seconds: float) -> int:
    return slow_retried(directory, 0, seconds)

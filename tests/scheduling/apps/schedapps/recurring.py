"""recurrent: re-run after None; stop on a value, on an error past its retries, or on cancel."""

from __future__ import annotations

import coflux as cf

from .common import count, mark


@cf.task(recurrent=True, delay=0.3)
def until(log: str, n: int):
    mark(log, "until")
    return None if count(log) < n else count(log)


@cf.task(recurrent=True, retries=1)
def recur_then_fail(log: str):
    mark(log, "recur_then_fail")
    if count(log) >= 2:
        raise ValueError(f"broken at {count(log)}")
    return None


@cf.task(recurrent=True, delay=0.2)
def forever_none(log: str):
    mark(log, "forever_none")
    return None


@cf.workflow(recurrent=True)
def recurring_flow(log: str):
    mark(log, "flow")
    return None if count(log) < 3 else "done"


@cf.workflow()
def call(name: str, args: list):
    return globals()[name](*args)


@cf.task(recurrent=True)
def falsy(log: str, value):
    """Only exactly None recurs: 0, "" and [] are values that stop it."""
    mark(log, "falsy")
    return value

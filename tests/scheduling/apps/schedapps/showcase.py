"""One run whose executions end in (almost) every result kind, for `coflux runs inspect`."""

from __future__ import annotations

import time

import coflux as cf

from .common import count, mark


@cf.task()
def value(x: int) -> int:
    return x


@cf.task()
def broken() -> None:
    raise ValueError("broken on purpose")


@cf.task(cache=True)
def cached(log: str) -> str:
    mark(log, "cached")
    return "cached value"


@cf.task(memo=True)
def memoised(log: str) -> str:
    mark(log, "memoised")
    return "memo value"


@cf.task(defer=True, delay=0.2)
def deferred(log: str) -> str:
    mark(log, "deferred")
    return "deferred value"


@cf.workflow()
def child_flow(x: int) -> int:
    return x * 2


@cf.task()
def suspends(log: str) -> str:
    mark(log, "suspends")
    if count(log, "suspends") == 1:
        cf.suspend(0.1)
    return "resumed"


@cf.task(recurrent=True)
def recurs(log: str):
    mark(log, "recurs")
    return None if count(log, "recurs") < 2 else "recurred enough"


@cf.task(timeout=0.3)
def too_slow() -> None:
    time.sleep(30)


@cf.task()
def hangs() -> None:
    time.sleep(30)


@cf.workflow()
def showcase(log: str) -> dict:
    out: dict = {"value": value(1)}
    try:
        broken()
    except ValueError as e:
        out["error"] = str(e)
    out["cached"] = [cached(log), cached(log)]
    out["memoised"] = [memoised(log), memoised(log)]
    first, second = deferred.submit(log), deferred.submit(log)
    out["deferred"] = [first.result(), second.result()]
    out["spawned"] = child_flow(21)
    out["suspended"] = suspends(log)
    out["recurred"] = recurs(log)
    try:
        too_slow()
    except cf.ExecutionTimeout:
        out["timeout"] = True
    handle = hangs.submit()
    handle.cancel()
    try:
        handle.result()
    except cf.ExecutionCancelled:
        out["cancelled"] = True
    return out

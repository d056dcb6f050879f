"""defer (+ delay = debounce) and delay."""

from __future__ import annotations

import datetime as dt

import coflux as cf

from .common import mark


@cf.task(defer=True, delay=0.4)
def debounced(log: str, key: str) -> str:
    mark(log, f"debounced {key}")
    return key


@cf.task(defer=cf.Defer(params=["key"]), delay=0.4)
def save(log: str, key: str, payload: str) -> str:
    mark(log, f"save {key}={payload}")
    return payload


@cf.workflow()
def burst(log: str, salt: str) -> dict:
    handles = [debounced.submit(log, "same") for _ in range(3)]
    handles += [save.submit(log, f"k-{salt}", f"v{i}") for i in range(3)]
    handles.append(save.submit(log, f"other-{salt}", "w"))
    return {"ids": [h.id for h in handles], "values": [h.result() for h in handles]}


@cf.task(delay=0.5)
def later(log: str, label: str) -> str:
    mark(log, label)
    return label


@cf.workflow()
def delays(log: str) -> list:
    a = later.submit(log, "seconds")
    b = later.with_delay(dt.timedelta(seconds=0.8)).submit(log, "timedelta")
    c = later.with_delay(0).submit(log, "none")
    return [a.result(), b.result(), c.result()]


@cf.workflow(delay=0.5)
def delayed_flow(log: str) -> str:
    mark(log, "flow")
    return "flow"

"""cancel: the execution and every unfinished descendant, child runs included."""

from __future__ import annotations

import os
import time

import coflux as cf

from .common import count, mark


@cf.task()
def hang(log: str, name: str) -> str:
    mark(log, f"{name} {os.getpid()}")
    time.sleep(60)
    mark(log, f"finished {name}")
    return name


@cf.task()
def hang_inside(log: str) -> str:
    inner = hang.submit(log, "inner")
    mark(log, f"middle {os.getpid()}")
    return inner.result()


@cf.workflow()
def hang_flow(log: str) -> str:
    return hang(log, "child-run")


@cf.workflow()
def tree(log: str) -> list:
    a = hang.submit(log, "a")
    b = hang_flow.submit(log)
    c = hang_inside.submit(log)
    return [a.result(), b.result(), c.result()]


@cf.workflow()
def waiter(log: str) -> str:
    try:
        return hang(log, "w")
    except cf.ExecutionCancelled as e:
        mark(log, "waiter saw the cancel")
        return f"cancelled: {isinstance(e, cf.ExecutionTerminated)}"


@cf.workflow()
def self_cancel(log: str) -> str:
    handle = hang.submit(log, "x")
    while count(log) == 0:
        time.sleep(0.01)
    handle.cancel()
    try:
        handle.result()
    except cf.ExecutionCancelled:
        return "cancelled"
    return "not cancelled"


@cf.task(retries=3)
def hang_retried(log: str) -> str:
    mark(log, f"retried {os.getpid()}")
    time.sleep(60)
    return "never"


@cf.workflow()
def retried_waiter(log: str) -> str:
    try:
        return hang_retried(log)
    except cf.ExecutionCancelled:
        return "cancelled"

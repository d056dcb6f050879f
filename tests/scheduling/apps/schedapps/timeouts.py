"""timeout: the process is killed, the result is `timeout`, descendants are cancelled, retries apply."""

from __future__ import annotations

import datetime as dt
import os
import time

import coflux as cf

from .common import mark


@cf.task(timeout=0.5)
def sleepy(log: str, seconds: float) -> str:
    mark(log, f"pid {os.getpid()}")
    time.sleep(seconds)
    mark(log, "finished")
    return "done"


@cf.task(timeout=dt.timedelta(seconds=0.5))
def sleepy_timedelta(log: str, seconds: float) -> str:
    mark(log, f"pid {os.getpid()}")
    time.sleep(seconds)
    mark(log, "finished")
    return "done"


@cf.task()
def long_child(log: str) -> str:
    mark(log, f"child {os.getpid()}")
    time.sleep(30)
    mark(log, "child finished")
    return "child"


@cf.task(timeout=0.8)
def parent_of_child(log: str) -> str:
    long_child.submit(log)
    mark(log, f"parent {os.getpid()}")
    time.sleep(30)
    mark(log, "parent finished")
    return "parent"


@cf.task(timeout=0.4, retries=cf.Retries(1, backoff=(0.1, 0.1)))
def sleepy_retried(log: str) -> str:
    mark(log, f"pid {os.getpid()}")
    time.sleep(30)
    return "done"


CALLS = {
    "sleepy": lambda log: sleepy(log, 30),
    "sleepy_timedelta": lambda log: sleepy_timedelta(log, 30),
    "parent_of_child": parent_of_child,
    "sleepy_retried": sleepy_retried,
}


@cf.workflow()
def catch_timeout(name: str, log: str) -> dict:
    try:
        return {"value": CALLS[name](log)}
    except cf.ExecutionTimeout as e:
        return {"caught": type(e).__name__, "terminated": isinstance(e, cf.ExecutionTerminated)}

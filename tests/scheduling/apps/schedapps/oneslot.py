"""Hosted only by a worker with a single slot: suspension must free it."""

from __future__ import annotations

import os
import time

import coflux as cf

from .common import count, mark


@cf.workflow()
def sleeper(log: str, seconds: float) -> str:
    mark(log, "sleeper attempt")
    if count(log, "sleeper attempt") == 1:
        cf.suspend(seconds)
    return "rested"


@cf.workflow()
def quick(log: str) -> str:
    mark(log, "quick")
    return "quick"


@cf.task()
def child(log: str, seconds: float) -> str:
    mark(log, "child")
    time.sleep(seconds)
    return "child done"


@cf.workflow(memo=True)
def waits_in_suspense(log: str) -> list:
    """With one slot, the child can only run once this workflow has suspended."""
    mark(log, "parent attempt")
    with cf.suspense(0.2):
        value = child(log, 0.3)
    return [value, count(log, "parent attempt"), count(log, "child")]


@cf.workflow()
def hold(log: str, name: str, seconds: float) -> str:
    mark(log, f"{name} {os.getpid()}")
    time.sleep(seconds)
    mark(log, f"done {name}")
    return name


@cf.workflow(timeout=0.6)
def brief(log: str) -> str:
    """Its timeout counts from its start, not from when it was queued behind `hold`."""
    mark(log, "brief")
    time.sleep(0.1)
    return "brief"

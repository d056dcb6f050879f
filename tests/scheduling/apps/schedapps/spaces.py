"""Workspaces: cache and memo of a base are visible in its children, never the reverse."""

from __future__ import annotations

import os

import coflux as cf

from .common import count, mark


@cf.task(cache=True)
def cached_where(log: str, x: int) -> dict:
    mark(log, f"cached_where {x}")
    return {"x": x, "worker": os.getppid(), "run": count(log)}


@cf.workflow()
def use_cache(log: str, x: int) -> dict:
    return cached_where(log, x)


@cf.task()
def produce(log: str, x: int) -> dict:
    mark(log, f"produce {x}")
    return {"n": count(log, "produce"), "worker": os.getppid()}


@cf.workflow(memo=True)
def uses_memo(log: str, x: int) -> dict:
    return produce(log, x)


@cf.workflow()
def whereami() -> int:
    return os.getppid()

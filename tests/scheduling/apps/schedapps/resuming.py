"""Resume from failure: a fan-out whose chosen items fail until a flag file exists."""

from __future__ import annotations

import os

import coflux as cf

from .common import mark


@cf.task()
def item(log: str, i: int, failing: list, flag: str) -> int:
    mark(log, f"item {i}")
    if i in failing and not os.path.exists(flag):
        raise ValueError(f"item {i} fails until {flag} exists")
    return 2 * i


@cf.workflow()
def fan_out(log: str, n: int, failing: list, flag: str) -> int:
    """Every item is waited for (the failures are counted, not raised at the first), so a run
    with failures has run all of its items once before it fails."""
    mark(log, "fan_out")
    handles = [item.submit(log, i, failing, flag) for i in range(n)]
    total, failed = 0, 0
    for handle in handles:
        try:
            total += handle.result()
        except cf.ExecutionError:
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} of {n} items failed")
    return total

"""A fan-out whose chosen items fail until a flag file exists, for the resume browser test
(tests/ui/test_resume_browser.py)."""

import os

import coflux as cf


@cf.task()
def part(i: int, failing: list, flag: str) -> int:
    if i in failing and not os.path.exists(flag):
        raise ValueError(f"part {i} fails until the flag file exists")
    return i * i


@cf.workflow()
def fan(n: int, failing: list, flag: str) -> int:
    """Runs every part, then fails if any did."""
    handles = [part.submit(i, failing, flag) for i in range(n)]
    total, failed = 0, 0
    for handle in handles:
        try:
            total += handle.result()
        except cf.ExecutionError:
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} parts failed")
    return total


@cf.task(cache=cf.Cache(version=cf.CODE))
def square(x: int) -> int:
    return x * x


@cf.workflow()
def squares(x: int) -> int:
    return square(x)

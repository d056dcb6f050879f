"""suspend / suspense / poll."""

from __future__ import annotations

import datetime as dt
import time

import coflux as cf

from .common import count, mark


@cf.workflow()
def nap(log: str, how: str, seconds: float) -> int:
    mark(log, "attempt")
    if count(log, "attempt") == 1:
        try:
            if how == "seconds":
                cf.suspend(seconds)
            elif how == "timedelta":
                cf.suspend(dt.timedelta(seconds=seconds))
            else:
                cf.suspend(dt.datetime.now() + dt.timedelta(seconds=seconds))
        except Exception:
            mark(log, "swallowed")
        finally:
            mark(log, "finally")
    return count(log, "attempt")


@cf.task()
def slow(log: str, seconds: float) -> str:
    mark(log, "slow")
    time.sleep(seconds)
    return "slow done"


@cf.task()
def fast(log: str, x: int) -> int:
    mark(log, f"fast {x}")
    return x


@cf.workflow(memo=True)
def resumable(log: str) -> list:
    mark(log, "attempt")
    first = fast(log, 1)
    with cf.suspense(0.2):
        second = slow(log, 0.8)
    return [first, second, count(log, "attempt")]


@cf.workflow()
def polls(log: str) -> list:
    mark(log, "attempt")
    handle = slow.submit(log, 0.8)
    with cf.suspense(0.1):
        early = handle.poll(0.3, default="not yet")
        once = handle.poll(default="still not")
    with cf.suspense(10):
        ready = fast(log, 7)  # ready well within the suspense timeout: no suspension
    return [early, once, ready, handle.result(), count(log, "attempt")]


@cf.task()
def naps_in_a_task(log: str) -> str:
    mark(log, "task attempt")
    if count(log, "task attempt") == 1:
        cf.suspend(0.3)
    return "rested"


@cf.workflow()
def calls_napping_task(log: str) -> str:
    return naps_in_a_task(log)


@cf.workflow()
def bad_suspends() -> list:
    """Wrong delays are clear errors raised where cf.suspend is called (nothing is suspended)."""
    out = []
    for delay in ("soon", -1, True):
        try:
            cf.suspend(delay)
        except (TypeError, ValueError) as e:
            out.append(f"{type(e).__name__}: {e}")
    return out

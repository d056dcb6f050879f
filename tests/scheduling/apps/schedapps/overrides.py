"""Call-site overrides (`with_*` copies) change the step they submit, not the target."""

from __future__ import annotations

import os
import time

import coflux as cf

from .common import count, mark


@cf.task()
def plain(log: str, x: int) -> int:
    mark(log, f"plain {x}")
    return count(log)


@cf.task()
def flaky(log: str, tag: str) -> int:
    mark(log, f"flaky {tag}")
    if count(log, f"flaky {tag}") == 1:
        raise RuntimeError(f"first {tag} call fails")
    return count(log, f"flaky {tag}")


@cf.task()
def slow(log: str) -> str:
    mark(log, f"slow {os.getpid()}")
    time.sleep(30)
    return "slow"


@cf.task()
def where() -> int:
    return os.getppid()


@cf.workflow()
def cached_call(log: str, x: int) -> int:
    return plain.with_cache(True)(log, x)


@cf.workflow()
def uncached_call(log: str, x: int) -> int:
    return plain(log, x)


@cf.workflow()
def memo_calls(log: str) -> dict:
    memo = plain.with_memo(True)
    a, b = memo.submit(log, 1), memo.submit(log, 1)
    c, d = plain.submit(log, 1), plain.submit(log, 1)  # the original is not memoised
    return {"memo_ids": [a.id, b.id], "plain_ids": [c.id, d.id], "values": [e.result() for e in (a, b, c, d)]}


@cf.workflow()
def retry_calls(log: str) -> dict:
    out: dict = {"with_retries": flaky.with_retries(1)(log, "override")}
    try:
        flaky(log, "plain")  # the original has no retries: its first failure is final
    except RuntimeError as e:
        out["plain"] = str(e)
    return out


@cf.workflow()
def defer_delay_calls(log: str) -> dict:
    debounced = plain.with_defer(True).with_delay(0.3)
    handles = [debounced.submit(log, 5) for _ in range(3)]
    return {"ids": [h.id for h in handles], "values": [h.result() for h in handles]}


@cf.workflow()
def timeout_call(log: str) -> str:
    try:
        return slow.with_timeout(0.4)(log)
    except cf.ExecutionTimeout:
        return "timed out"


@cf.workflow()
def requires_call() -> dict:
    handle = where.with_requires({"gpu": "A100"}).submit()  # no worker provides gpu
    waiting = handle.poll(0.3, default="waiting")
    handle.cancel()
    return {"required": waiting, "plain": where() > 0}


@cf.stub("schedapps.overrides", name="plain", cache=True)
def plain_cached_stub(log: str, x: int) -> int:
    return -1


@cf.workflow()
def stub_call(log: str, x: int) -> int:
    """The caller's (stub's) options are the step's: cached although `plain` is not."""
    return plain_cached_stub(log, x)

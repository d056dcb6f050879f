"""retries: an int (no delay), True, cf.Retries(limit, backoff, when)."""

from __future__ import annotations

import os

import coflux as cf

from .common import count, mark

ERRORS = {"key": KeyError, "index": IndexError, "value": ValueError, "runtime": RuntimeError}


@cf.task(retries=cf.Retries(3, backoff=(0.2, 0.6)))
def always_fails(log: str) -> None:
    mark(log, "always_fails")
    raise ValueError(f"still broken after {count(log)}")


@cf.task(retries=2)
def flaky(log: str, failures: int) -> int:
    mark(log, "flaky")
    if count(log) <= failures:
        raise RuntimeError(f"flake {count(log)}")
    return count(log)


@cf.task(retries=cf.Retries(2, backoff=(0, 0), when=KeyError))
def only_key(log: str, kind: str) -> None:
    mark(log, f"only_key {kind}")
    raise ERRORS[kind](kind)


@cf.task(retries=cf.Retries(2, backoff=(0, 0), when=(KeyError, IndexError)))
def key_or_index(log: str, kind: str) -> None:
    mark(log, f"key_or_index {kind}")
    raise ERRORS[kind](kind)


@cf.task(retries=cf.Retries(2, backoff=(0, 0), when=lambda e: "transient" in str(e)))
def by_predicate(log: str, message: str) -> None:
    mark(log, f"by_predicate {message}")
    raise RuntimeError(message)


@cf.task(retries=True)
def retried_forever(log: str) -> None:
    mark(log, "retried_forever")
    raise ValueError("never works")


@cf.task(retries=cf.Retries(backoff=(0.1, 0.3)))
def unlimited(log: str, failures: int) -> int:
    mark(log, "unlimited")
    if count(log) <= failures:
        raise RuntimeError(f"flake {count(log)}")
    return count(log)


@cf.task(retries=1)
def crashes_once(log: str) -> str:
    mark(log, "crashes_once")
    if count(log) == 1:
        os._exit(3)  # the process dies: a crash, which is retryable
    return "survived"


@cf.task()
def no_retries(log: str, kind: str) -> None:
    mark(log, f"no_retries {kind}")
    raise ERRORS[kind](kind)


VARIANTS = {
    # A call-site override whose `when` says: only KeyError is worth a retry.
    "override_when": no_retries.with_retries(cf.Retries(2, backoff=(0, 0), when=KeyError)),
}


@cf.workflow()
def attempt(name: str, args: list) -> dict:
    """Call a task; report its value or the error the caller finally saw."""
    try:
        return {"value": (VARIANTS.get(name) or globals()[name])(*args)}
    except cf.ExecutionError as e:
        return {"error": e.error_type, "message": str(e)}
    except cf.ExecutionTerminated as e:
        return {"terminated": type(e).__name__}

"""cache: True, a max age (seconds or timedelta), cf.Cache(max_age, params, namespace, version)."""

from __future__ import annotations

import datetime as dt

import coflux as cf

from .common import count, mark, wait_for


@cf.task(cache=True)
def forever(log: str, x: int) -> dict:
    mark(log, f"forever {x}")
    return {"x": x, "run": count(log)}


@cf.task(cache=30)
def thirty_seconds(log: str, x: int) -> dict:
    mark(log, f"thirty {x}")
    return {"x": x, "run": count(log)}


@cf.task(cache=dt.timedelta(seconds=1.5))
def brief(log: str, x: int) -> dict:
    mark(log, f"brief {x}")
    return {"x": x, "run": count(log)}


SHARED = cf.Cache(params=["key"], namespace="sched-shared", version="1")


@cf.task(cache=SHARED)
def keyed(log: str, key: str, noise: int) -> dict:
    mark(log, f"keyed {key} {noise}")
    return {"by": "keyed", "noise": noise, "run": count(log)}


@cf.task(cache=SHARED)
def keyed_twin(log: str, key: str, noise: int) -> dict:
    """Another target in the same namespace and version: it shares `keyed`'s entries."""
    mark(log, f"twin {key} {noise}")
    return {"by": "twin", "noise": noise, "run": count(log)}


@cf.task(cache=True)
def gated(log: str, x: int, gate: str) -> dict:
    mark(log, f"gated {x}")
    wait_for(gate)
    return {"x": x, "run": count(log)}


@cf.task(cache=True)
def gated_failure(log: str, x: int, gate: str) -> dict:
    mark(log, f"gated_failure {x}")
    wait_for(gate)
    raise ValueError(f"gated failure {x}")


@cf.task(cache=True)
def fails(log: str, x: int) -> dict:
    mark(log, f"fails {x}")
    raise ValueError(f"failure {x}")


VARIANTS = {
    "keyed_v2": keyed.with_cache(cf.Cache(params=["key"], namespace="sched-shared", version="2")),
    "keyed_other_namespace": keyed.with_cache(cf.Cache(params="key", namespace="sched-other", version="1")),
}


@cf.workflow()
def call(name: str, args: list):
    """Call one task of this module (or a with_cache variant) with `args`."""
    return (VARIANTS.get(name) or globals()[name])(*args)


@cf.workflow()
def twice(log: str, x: int) -> list:
    """Two steps with equal arguments in one run: the second is a cache hit."""
    return [forever(log, x), forever(log, x)]


@cf.workflow()
def by_keyword(log: str, x: int) -> list:
    """The same call written three ways: arguments are bound to the signature, so one key."""
    return [forever(log, x), forever(log=log, x=x), forever(log, x=x)]


@cf.workflow(cache=True)
def cached_flow(log: str, x: int) -> dict:
    mark(log, f"cached_flow {x}")
    return {"x": x, "run": count(log)}


@cf.task(cache=True, retries=cf.Retries(1, backoff=(1.0, 1.0)))
def retried(log: str, x: int) -> dict:
    mark(log, f"retried {x}")
    if count(log) == 1:
        raise RuntimeError("first attempt fails")
    return {"x": x, "run": count(log)}

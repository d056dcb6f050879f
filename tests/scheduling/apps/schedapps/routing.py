"""requires / provides / accepts: which worker runs what."""

from __future__ import annotations

import os

import coflux as cf


@cf.task()
def where(label: str) -> dict:
    return {"label": label, "worker": os.getppid()}


@cf.stub("schedapps.nowhere", name="where")
def unhosted(label: str) -> dict:
    return {}


VARIANTS = {
    "unhosted": unhosted,
    "none": where,
    "a100": where.with_requires({"gpu": "A100"}),
    "any_gpu": where.with_requires({"gpu": True}),
    "one_of": where.with_requires({"gpu": ["H100", "A100"]}),
    "h100": where.with_requires({"gpu": "H100"}),
    "region": where.with_requires({"region": "eu"}),
}


@cf.workflow()
def route(name: str) -> dict:
    return VARIANTS[name](name)


@cf.workflow(requires={"gpu": "A100"})
def on_gpu() -> dict:
    inherited = where("inherited")
    removed = where.with_requires({"gpu": []})("removed")
    overridden = where.with_requires({"gpu": "H100"}).submit("overridden")
    pending = overridden.poll(0.5, default="still waiting")
    overridden.cancel()
    return {"self": os.getppid(), "inherited": inherited["worker"], "removed": removed["worker"],
            "overridden": pending}


# ------------------------------------------------------------------ per-run overrides (test_run_overrides.py)

@cf.workflow()
def here() -> int:
    """The pid of the worker that ran the run's root step."""
    return os.getppid()


@cf.workflow(requires={"gpu": "A100"})
def here_on_gpu() -> int:
    return os.getppid()


@cf.workflow()
def twice() -> bool:
    """Whether two equal calls gave one execution (they do when the run is memoised)."""
    first, second = where.submit("twice"), where.submit("twice")
    return first.id == second.id


@cf.workflow(memo=True)
def twice_memo() -> bool:
    first, second = where.submit("twice"), where.submit("twice")
    return first.id == second.id


@cf.workflow()
def flaky_root(log: str) -> int:
    """Fails on its first attempt."""
    with open(log, "a") as f:
        f.write("attempt\n")
    with open(log) as f:
        attempts = len(f.read().splitlines())
    if attempts == 1:
        raise RuntimeError("first attempt fails")
    return attempts

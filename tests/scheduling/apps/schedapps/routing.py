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

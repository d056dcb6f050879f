"""Workflows that ask people (cf.Prompt), for tests/test_inputs.py."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

import coflux as cf

deployed: list[str] = []


@cf.task()
def do_deploy(service: str) -> str:
    deployed.append(service)
    return f"deployed {service}"


# Coflux's inputs.md `deploy` example, unchanged:
approve = cf.Prompt("Approve deployment of {service}?", title="Deployment")

@cf.workflow()
def deploy(service: str):
    approve(service=service)  # blocks until approved; raises InputDismissed if dismissed
    do_deploy(service)


class Label(BaseModel):
    sentiment: Literal["positive", "neutral", "negative"]
    topic: Literal["product", "shipping", "support", "other"]
    confidence: int = Field(ge=1, le=5)
    notes: str | None = None


label = cf.Prompt("Label this feedback:\n\n{text}", model=Label, title="Label")


@cf.workflow()
def annotate(text: str) -> dict:
    result = label(text=text)
    assert isinstance(result, Label)
    return {"sentiment": result.sentiment, "topic": result.topic, "confidence": result.confidence}


@cf.workflow()
def approve_or_not(service: str) -> str:
    try:
        approve.with_actions("Ship it", "Stop").with_requires({"role": "release-manager"})(service=service)
    except cf.InputDismissed:
        return "dismissed"
    return "approved"


@cf.task()
def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


when = cf.Prompt("When should {job} run?", model=int, title="When")


@cf.workflow()
def race(seconds: float) -> dict:
    asked = when.submit(job="race")
    napping = nap.submit(seconds)
    winner, remaining = cf.select([asked, napping])
    if winner is asked:
        cf.cancel(remaining)
        return {"winner": "input", "value": asked.result()}
    cf.cancel(remaining)
    try:
        asked.result()
    except cf.ExecutionCancelled:
        return {"winner": "task", "input": "cancelled"}
    return {"winner": "task", "input": "not cancelled"}


@cf.workflow()
def keyed(n: int) -> dict:
    handle = when.with_key("fixed").submit(job=f"keyed at {time.time()}")
    return {"input": handle.id, "value": handle.result(), "n": n}


@cf.workflow()
def suspended(job: str) -> dict:
    handle = when.submit(job=job)
    with cf.suspense():
        value = handle.result()
    return {"input": handle.id, "value": value}


@cf.workflow()
def quick() -> str:
    return "quick"


@cf.workflow()
def polling() -> str:
    handle = when.submit(job="poll")
    first = handle.poll(default="none yet")
    value = handle.poll(timeout=60)
    return f"{first} then {value}"


@cf.task()
def read_answer(handle: cf.Input) -> int:
    return handle.result() + 1


@cf.workflow()
def handed_over() -> int:
    return read_answer(when.submit(job="handed over"))

"""wait: True, a name, names; handles nested inside resolved values count; errors count as resolved."""

from __future__ import annotations

import coflux as cf

from .common import mark, wait_for


@cf.task()
def gated(log: str, name: str, gate: str) -> str:
    mark(log, f"start {name}")
    wait_for(gate)
    mark(log, f"end {name}")
    return name


@cf.task()
def gated_failure(log: str, name: str, gate: str) -> str:
    mark(log, f"start {name}")
    wait_for(gate)
    raise ValueError(f"{name} failed")


@cf.task(wait=True)
def wait_all(log: str, a, b) -> list:
    mark(log, "consumer")
    return [a.result(), b.result()]


@cf.task(wait=["a", "b"])
def wait_names(log: str, a, b) -> list:
    mark(log, "consumer")
    return [a.result(), b.result()]


@cf.task(wait="a")
def wait_a(log: str, a, b) -> dict:
    mark(log, "consumer")
    return {"a": a.result(), "b": b.poll(default="not ready")}


@cf.task()
def wait_none(log: str, a, b) -> list:
    mark(log, "consumer")
    return [a.result(), b.result()]


CONSUMERS = {"wait_all": wait_all, "wait_names": wait_names, "wait_a": wait_a, "wait_none": wait_none}


@cf.workflow()
def two_inputs(log: str, consumer: str, gate_a: str, gate_b: str):
    a = gated.submit(log, "a", gate_a)
    b = gated.submit(log, "b", gate_b)
    return CONSUMERS[consumer](log, a, b)


@cf.task()
def wrap(log: str, gate: str) -> dict:
    """Returns at once a value that holds a handle to work still running."""
    return {"inner": gated.submit(log, "inner", gate)}


@cf.task(wait=True)
def wait_nested(log: str, outer) -> str:
    mark(log, "consumer")
    return outer.result()["inner"].result()


@cf.workflow()
def nested(log: str, gate: str) -> str:
    return wait_nested(log, wrap.submit(log, gate))


@cf.task(wait=True)
def wait_error(log: str, a) -> str:
    mark(log, "consumer")
    try:
        return a.result()
    except ValueError as e:
        return f"caught {e}"


@cf.workflow()
def error_input(log: str, gate: str) -> str:
    return wait_error(log, gated_failure.submit(log, "a", gate))


@cf.task(wait=True)
def wait_list(log: str, inputs: list) -> list:
    mark(log, "consumer")
    return [e.result() for e in inputs]


@cf.workflow()
def listed(log: str, gate_a: str, gate_b: str) -> list:
    """Handles inside a list argument count too."""
    return wait_list(log, [gated.submit(log, "a", gate_a), gated.submit(log, "b", gate_b)])

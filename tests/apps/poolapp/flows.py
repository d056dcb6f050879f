"""Workflows for the pool tests (tests/test_pools.py): hosted by workers the server launches."""

import os

import coflux as cf


@cf.task()
def where() -> dict:
    return {"pid": os.getpid(), "launch": os.environ.get("COFLUX_LAUNCH")}


@cf.workflow()
def hello(name: str) -> str:
    return f"hello {name} from {os.environ.get('COFLUX_LAUNCH')}"


@cf.task(requires={"gpu": "A100"})
def train() -> str:
    return f"trained on {os.environ.get('COFLUX_LAUNCH')}"


@cf.workflow()
def needs_gpu() -> str:
    return train()


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.workflow()
def fan_out(n: int) -> int:
    return sum(e.result() for e in [square.submit(i) for i in range(n)])


@cf.workflow()
def credential() -> str:
    """The launch credential this worker was given (the tests check what it may do)."""
    return os.environ["COFLUX_TOKEN"]

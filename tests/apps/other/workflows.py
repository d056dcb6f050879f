"""The documentation's `other.workflows` module, hosted by its own worker in the tests."""

import os
import random

import coflux as cf


@cf.task()
def random_int(max: int) -> int:
    return random.randint(1, max)


@cf.task()
def whoami() -> dict:
    return {"module": __name__, "pid": os.getpid()}


@cf.workflow()
def other_flow(x: int) -> int:
    return x * 3

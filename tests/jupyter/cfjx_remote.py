"""A module hosted by a headless `coflux worker` in the Jupyter tests."""

import os

import coflux as cf


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.task()
def where() -> int:
    return os.getpid()


@cf.workflow()
def sum_of_squares(n: int) -> int:
    """Sum of i*i for i in 1..n, one task per term."""
    return sum(e.result() for e in [square.submit(i) for i in range(1, n + 1)])

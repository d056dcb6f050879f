"""Workflows the PostgreSQL tests (tests/postgres) run (hosted by a real `coflux worker`)."""

import time

import coflux as cf


def mark(log: str, text: str) -> None:
    with open(log, "a") as f:
        f.write(text + "\n")


@cf.task(cache=True)
def cached_square(log: str, x: int) -> int:
    mark(log, f"square {x}")
    return x * x


@cf.task(memo=True)
def memo_double(log: str, x: int) -> int:
    mark(log, f"double {x}")
    return 2 * x


@cf.task(retries=cf.Retries(2, backoff=(0.1, 0.2)))
def flaky(log: str) -> int:
    mark(log, "flaky")
    attempts = open(log).read().count("flaky")
    if attempts < 3:
        raise ValueError(f"attempt {attempts}")
    return attempts


@cf.task()
def divide(a: int, b: int) -> float:
    return a / b


@cf.task()
def slow(x: int) -> int:
    time.sleep(0.05)
    return x


@cf.workflow()
def everything(log: str) -> dict:
    squares = [cached_square.submit(log, i) for i in range(5)]
    doubled = [memo_double(log, 3), memo_double(log, 3)]
    try:
        divide(1, 0)
        caught = None
    except ZeroDivisionError as e:
        caught = type(e).__name__
    return {"squares": [s.result() for s in squares], "doubled": doubled, "flaky": flaky(log),
            "caught": caught, "fan": sum(e.result() for e in [slow.submit(i) for i in range(50)])}


@cf.workflow()
def long_chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += slow(i)
    return total

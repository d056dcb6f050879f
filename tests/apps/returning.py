"""Workflows that return `Execution` handles instead of values (the docs' wikipedia and
map-reduce examples do), and a long one to inspect while it runs. None of them waits on a
child, so they work on a single worker slot (tests/test_clean_failures.py)."""

import time

import coflux as cf


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.task()
def fail(message: str) -> int:
    raise ValueError(message)


@cf.task()
def count_words(text: str) -> dict:
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@cf.task()
def merge(parts: list) -> dict:  # `Execution` handles: resolved here, not in the workflow
    total: dict[str, int] = {}
    for part in parts:
        for word, n in part.result().items():
            total[word] = total.get(word, 0) + n
    return total


@cf.task()
def square_later(x: int):
    return square.submit(x)  # a task whose result is itself a handle


@cf.workflow()
def one(x: int):
    return square.submit(x)


@cf.workflow()
def many(n: int) -> dict:
    handles = [square.submit(i) for i in range(n)]
    return {"squares": handles, "first": handles[0], "pair": (handles[0], n), "plain": "text"}


@cf.workflow()
def chained(x: int):
    return square_later.submit(x)  # a handle to a task that returns a handle


@cf.workflow()
def map_reduce(lines: list[str]) -> dict:
    with cf.group("count"):
        parts = [count_words.submit(line) for line in lines]
    return {"parts": parts, "total": merge.submit(parts)}


@cf.workflow()
def failing(message: str) -> list:
    return [square.submit(2), fail.submit(message)]


@cf.workflow()
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds

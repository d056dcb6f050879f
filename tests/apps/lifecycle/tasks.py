"""Tasks that take a while and record each body run (with the worker's pid) as a file."""

import os
import time

import coflux as cf


@cf.task()
def slow(directory: str, i: int, seconds: float) -> int:
    marker = os.path.join(directory, f"{i}-{os.getppid()}-{time.time_ns()}")
    open(marker + ".start", "w").close()
    time.sleep(seconds)
    open(marker + ".end", "w").close()
    return i * 10


@cf.task(retries=1)
def slow_retried(directory: str, i: int, seconds: float) -> int:
    return slow.fn(directory, i, seconds)

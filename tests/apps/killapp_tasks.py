"""A task that waits on a gate file (the worker-crash test kills its worker meanwhile)."""

import os
import time

import coflux as cf


@cf.task(retries=1)
def guarded(log: str, gate: str) -> int:
    with open(log, "a") as f:
        f.write(f"started {os.getpid()}\n")
    while not os.path.exists(gate):
        time.sleep(0.02)
    return os.getpid()

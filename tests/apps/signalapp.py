"""Workflows for tests/test_worker_signals.py: one that takes a while and leaves a side effect,
and one that stops a program it started (the usual signals still work in what a task starts)."""

import os
import subprocess
import time

import coflux as cf


@cf.workflow()
def slow_write(directory: str, seconds: float) -> int:
    marker = os.path.join(directory, str(os.getpid()))
    open(marker + ".start", "w").close()
    time.sleep(seconds)
    with open(marker + ".end", "w") as f:
        f.write("finished")
    return 42


@cf.workflow()
def terminate_child() -> int:
    child = subprocess.Popen(["sleep", "30"])
    time.sleep(0.2)
    child.terminate()
    return child.wait(10)

"""The task of the fault test under load (tests/fault_scenario.py): a body that leaves a start and
an end marker, named after its execution id, so the test counts how often each body ran and
whether it ran to its end."""

import os
import time
import uuid

import coflux as cf


def _mark(log: str, what: str) -> None:
    context = cf.current_context()
    execution = context.execution_id if context is not None else "local"
    with open(os.path.join(log, f"{what}.{execution}.{os.getpid()}.{uuid.uuid4().hex[:8]}"), "w"):
        pass


@cf.task(retries=0)
def work(log: str, i: int, k: int, seconds: float) -> int:
    _mark(log, "start")
    time.sleep(seconds)
    _mark(log, "end")
    return i * 100 + k

"""The workflow of the fault test under load (tests/fault_scenario.py); its task lives on other
workers (faulttasks), so a task worker can be killed or frozen without losing workflows."""

import coflux as cf


@cf.stub("faulttasks", retries=0)
def work(log: str, i: int, k: int, seconds: float) -> int: ...


@cf.workflow(retries=0)
def job(log: str, i: int, tasks: int, seconds: float) -> int:
    """The sum of `tasks` sequential tasks. A task lost with its worker (it crashed mid-way, or its
    worker froze past the reconnect grace) is called again: the only re-run the test allows."""
    total = 0
    for k in range(tasks):
        for _ in range(5):
            try:
                total += work(log, i, k, seconds)
                break
            except (cf.ExecutionAbandoned, cf.ExecutionCrashed):
                continue
        else:
            raise RuntimeError(f"task {i}/{k} was lost five times")
    return total

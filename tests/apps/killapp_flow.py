"""A workflow whose task lives on other workers (see killapp_tasks)."""

import coflux as cf


@cf.stub("killapp_tasks", retries=1)  # the caller's options apply: the stub's, not the task's
def guarded(log: str, gate: str) -> int: ...


@cf.workflow()
def survive(log: str, gate: str) -> int:
    return guarded(log, gate)

"""The workflow of the server-kill test (tests/server_kills.py): a wave of tasks that fills every
slot of the task worker with slow bodies and leaves trivial ones queued behind them on that
worker (given to it ahead of time), which is what a worker hands back while the server is down.
The task is faulttasks.work: each body leaves a marker named after its execution id."""

import coflux as cf


@cf.stub("faulttasks", retries=0)
def work(log: str, i: int, k: int, seconds: float) -> int: ...


@cf.workflow(retries=0)
def wave(log: str, i: int, slow: int, quick: int, seconds: float) -> int:
    """`slow` tasks of `seconds`, then `quick` trivial ones; the sum of their values."""
    handles = [work.submit(log, i, k, seconds) for k in range(slow)]
    handles += [work.submit(log, i, slow + k, 0.0) for k in range(quick)]
    return sum(handle.result() for handle in handles)


def expected(i: int, slow: int, quick: int) -> int:
    return sum(i * 100 + k for k in range(slow + quick))

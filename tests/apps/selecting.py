"""cf.select: race executions (issue: observability, item 7)."""

import time

import coflux as cf


@cf.task()
def nap(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    return tag


@cf.workflow()
def race(delays: list[float]) -> dict:
    handles = [nap.submit(d, f"t{i}") for i, d in enumerate(delays)]
    winner, remaining = cf.select(handles)
    return {"winner": handles.index(winner), "value": winner.result(), "remaining": [handles.index(h) for h in remaining]}


@cf.workflow()
def race_and_cancel(delays: list[float]) -> dict:
    handles = [nap.submit(d, f"t{i}") for i, d in enumerate(delays)]
    winner, remaining = cf.select(handles, cancel_remaining=True)
    outcomes = []
    for h in remaining:
        try:
            h.result()
            outcomes.append("value")
        except cf.ExecutionCancelled:
            outcomes.append("cancelled")
    return {"value": winner.result(), "losers": outcomes}


@cf.workflow()
def resolved_first_in_order() -> str:
    handles = [nap.submit(0, "a"), nap.submit(0, "b")]
    for h in handles:
        h.result()
    winner, _ = cf.select(list(reversed(handles)))
    return winner.result()


@cf.workflow()
def race_within_suspense(seconds: float) -> str:
    slow = nap.submit(seconds, "slow")
    try:
        with cf.suspense(0.3):
            cf.select([slow])
    except TimeoutError:
        slow.cancel()
        return "timed out"
    return "no timeout"

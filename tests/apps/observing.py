"""Logs, captured output and metrics (issue: observe every run)."""

import sys
import time

import coflux as cf

loss = cf.Metric("loss", group=cf.MetricGroup("training", units="epoch"), scale="loss")
accuracy = cf.Metric("accuracy", group="training", scale=cf.MetricScale("ratio", lower=0, upper=1))


@cf.task()
def chatty(i: int, lines: int) -> int:
    cf.log_info("task {i} starting with {lines} lines", i=i, lines=lines)
    for k in range(lines):
        cf.log_debug("line {k} of task {i}", k=k, i=i)
    print(f"printed by task {i}")
    print("partial ", end="")
    print("line joined")
    sys.stderr.write(f"stderr of task {i}\n")
    cf.log_warning("no placeholder here", extra=i, other=[1, 2])
    return i


@cf.workflow()
def observed(n: int, lines: int) -> int:
    cf.log_info("fanning out {n} tasks", n=n)
    return sum(e.result() for e in [chatty.submit(i, lines) for i in range(n)])


@cf.task()
def train(epochs: int) -> float:
    value = 1.0
    for epoch in cf.progress(range(epochs), key="epochs"):
        value *= 0.5
        loss.record(value, at=epoch)
        accuracy.record(1 - value, at=epoch)
    return value


@cf.workflow()
def training(epochs: int) -> float:
    return train(epochs)


@cf.task()
def conflicting() -> str:
    cf.Metric("m", scale="a").record(1)
    try:
        cf.Metric("m", scale="b").record(2)
    except ValueError as e:
        return f"ValueError: {e}"
    return "no error"


@cf.task()
def bad_metric(value: str) -> str:
    try:
        cf.Metric("bad").record(float(value) if value != "text" else value)
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return "recorded"


@cf.task()
def bad_log_value() -> str:
    import threading

    cf.log_info("a lock {lock}", lock=threading.Lock())  # cannot be serialised: recorded as its repr
    cf.log_info("after a bad value the run goes on")
    return "logged"


@cf.task()
def numpy_and_huge() -> list:
    import numpy as np

    out = []
    cf.Metric("np").record(np.float32(1.5))
    cf.Metric("np0d").record(np.array(2.5))
    try:
        cf.Metric("huge").record(10**400)
    except ValueError as e:
        out.append(f"ValueError: {e}"[:60])
    for i in cf.progress((i for i in range(3)), key="unsized"):
        out.append(i)
    return out


@cf.workflow()
def bad_inputs() -> list:
    return [conflicting(), bad_metric("nan"), bad_metric("text"), bad_metric("1.5"), bad_log_value(),
            numpy_and_huge()]


@cf.workflow()
def slow_logger(n: int, pause: float) -> int:
    ticks = cf.Metric("ticks", throttle=None)
    for i in range(n):
        cf.log_info("tick {i}", i=i)
        ticks.record(i * 1.5, at=i)
        time.sleep(pause)
    return n


@cf.workflow()
def fails() -> int:
    cf.log_error("about to fail")
    raise RuntimeError("boom")


@cf.task()
def nap(i: int, pause: float) -> int:
    time.sleep(pause)
    return i


@cf.workflow()
def slow_steps(n: int, pause: float) -> int:
    return sum(nap(i, pause) for i in range(n))


@cf.task()
def threaded(n: int) -> list:
    """Work fanned out to threads inside a task: the calls are steps, their output is the task's."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        print(f"thread {i}")
        cf.log_info("from thread {i}", i=i)
        return nap(i, 0)

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(one, range(n)))


@cf.workflow()
def uses_threads(n: int) -> list:
    return threaded(n)

"""Nested waits never deadlock a worker: an execution blocked on a result parks and gives its slot
back (coflux/worker/slots.py). Real `coflux worker` processes with the default concurrency (the
CPU count) and with `--concurrency 1`, each in its own workspace; `coflux submit` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from harness import Server, Worker, inspect_run, run_cli, wait_until


def fib(n: int) -> int:
    return n if n <= 1 else fib(n - 1) + fib(n - 2)


CASES = [
    ("chain", [1], 4),  # workflow -> task -> task: (1 + 1) * 2
    ("recursion", [12], 12),
    ("wide", [50], sum((i + 1) + (i * 10 + 1) for i in range(50))),
    ("via_child_run", [3], 9),  # a task starting a child workflow that calls tasks
    ("fibonacci", [15], fib(15)),  # the docs' cached fibonacci
]

CONFIGS = {"default": None, "one": 1}


@pytest.fixture(scope="module")
def nesting_workers(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Worker]]:
    logs = tmp_path_factory.mktemp("nesting")
    started = {name: Worker(server, ["nesting.workflows"], concurrency=concurrency, log=logs / f"{name}.log",
                            extra=["--workspace", f"nest-{name}"]).start()
               for name, concurrency in CONFIGS.items()}
    try:
        for worker in started.values():
            worker.wait_registered()
        yield started
    finally:
        for worker in started.values():
            worker.stop()


def submit(server: Server, workspace: str, workflow: str, *args: object, timeout: float = 90) -> \
        subprocess.CompletedProcess:
    return run_cli("submit", "--workspace", workspace, f"nesting.workflows/{workflow}",
                   *[json.dumps(a) for a in args], env=server.env(), timeout=timeout)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("workflow", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_nested_waits_complete(server: Server, nesting_workers: dict[str, Worker], config: str,
                               workflow: str, args: list, expected: int) -> None:
    result = submit(server, f"nest-{config}", workflow, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_concurrency_still_bounds_running_code(server: Server, nesting_workers: dict[str, Worker],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--concurrency 1`: while tasks park, never more than one execution runs code at a time."""
    marks = tmp_path_factory.mktemp("overlap")
    result = run_cli("submit", "--workspace", "nest-one", "nesting.workflows/overlapping",
                     json.dumps(str(marks)), json.dumps(6), env=server.env(), timeout=90)
    assert result.returncode == 0, result.stderr
    spans = []
    for path in marks.iterdir():
        start, end = (float(x) for x in path.read_text().split())
        spans.append((start, end))
    assert len(spans) == 6 * 2 + 6  # each of the 6 tasks and its two leaves
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.002, f"two executions ran code at once: {spans}"


def test_the_pool_shrinks_back_after_deep_nesting(server: Server, nesting_workers: dict[str, Worker]) -> None:
    worker = nesting_workers["one"]
    assert submit(server, "nest-one", "recursion", 8).returncode == 0

    def pool_size() -> int:
        out = subprocess.run(["pgrep", "-g", str(worker.proc.pid), "-f", "multiprocessing"],  # type: ignore[union-attr]
                             capture_output=True, text=True).stdout.split()
        return len(out)

    grown = pool_size()
    assert grown >= 8, f"expected extra processes for the parked executions, found {grown}"
    wait_until(lambda: pool_size() <= 3, timeout=40, interval=0.5, message="the extra processes to stop")


def test_parking_bound_reached_is_reported_not_silent(server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With nothing left to park into, the user is told why the run does not move: in
    `coflux submit`'s progress and in `coflux runs inspect`."""
    log = tmp_path_factory.mktemp("bound") / "worker.log"
    worker = Worker(server, ["nesting.workflows"], concurrency=1, log=log,
                    extra=["--workspace", "nest-bound", "--max-parked", "0"]).start()
    try:
        worker.wait_registered()
        proc = subprocess.Popen(
            [*_cli(), "submit", "--workspace", "nest-bound", "nesting.workflows/chain", "1"],
            env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
        try:
            stderr = _read_until(proc, "warning:", timeout=30)
        finally:
            proc.kill()
            proc.communicate(timeout=10)
        assert "--max-parked" in stderr and "holding a slot" in stderr
        run_id = stderr.split("run ", 1)[1].split()[0]
        run = inspect_run(lambda *a: run_cli(*a, env=server.env()), run_id)
        reasons = [e.get("waiting", "") for step in run["steps"] for e in step["executions"]]
        assert any("--max-parked" in r for r in reasons), reasons
        text = run_cli("runs", "inspect", "--no-wait", run_id, env=server.env()).stdout
        assert "--max-parked" in text
        run_cli("runs", "cancel", run_id, env=server.env())
    finally:
        worker.stop()


def _cli() -> list[str]:
    import sys
    return [sys.executable, "-m", "coflux"]


def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)  # type: ignore[arg-type]
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} within {timeout} s; stderr so far:\n{seen}")
        if selector.select(0.5):
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            seen += line
    # The rest of the warning line.
    return seen

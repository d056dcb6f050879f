"""`cf.select(handles, *, cancel_remaining=False) -> (winner, remaining)` through a real worker."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from harness import Server, Worker, inspect_run, run_cli


@pytest.fixture(scope="module")
def select_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(server, ["selecting"], concurrency=4, log=tmp_path_factory.mktemp("select") / "w.log",
                    extra=["--workspace", "select"]).start()
    worker.wait_registered()
    yield worker
    worker.stop()


def submit(server: Server, workflow: str, *args: object) -> tuple[object, str]:
    result = run_cli("submit", "--workspace", "select", f"selecting/{workflow}", *[json.dumps(a) for a in args],
                     env=server.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr.split("run ", 1)[1].split()[0]


def test_the_first_to_resolve_wins(server: Server, select_worker: Worker) -> None:
    value, run_id = submit(server, "race", [3.0, 0.2, 2.0])
    assert value == {"winner": 1, "value": "t1", "remaining": [0, 2]}
    # It did not wait for the slower ones: the workflow ended before either of them (told by the
    # server's own clock, so a slow start of the worker's processes on a loaded machine is no matter).
    run = inspect_run(lambda *a: run_cli(*a, env=server.env()), run_id)
    ended = {s["arguments"][1]["v"] if s["target"] == "nap" else "workflow": s["executions"][-1]["result"]
             for s in run["steps"]}
    assert ended["t1"]["kind"] == "value"
    for slower in ("t0", "t2"):
        assert ended[slower] is None or ended[slower]["at"] > ended["workflow"]["at"], (slower, ended)


def test_cancel_remaining_cancels_the_losers(server: Server, select_worker: Worker) -> None:
    value, run_id = submit(server, "race_and_cancel", [5.0, 0.1, 5.0])
    assert value == {"value": "t1", "losers": ["cancelled", "cancelled"]}
    run = inspect_run(lambda *a: run_cli(*a, env=server.env()), run_id)
    kinds = sorted(s["executions"][-1]["result"]["kind"] for s in run["steps"] if s["target"] == "nap")
    assert kinds == ["cancelled", "cancelled", "value"]


def test_already_resolved_handles_win_in_input_order(server: Server, select_worker: Worker) -> None:
    assert submit(server, "resolved_first_in_order")[0] == "b"


def test_select_inside_suspense_times_out(server: Server, select_worker: Worker) -> None:
    started = time.monotonic()
    assert submit(server, "race_within_suspense", 10.0)[0] == "timed out"
    assert time.monotonic() - started < 5


def test_select_needs_handles() -> None:
    code = "import coflux as cf\ntry:\n    cf.select([])\nexcept ValueError as e:\n    print('ValueError', e)\n"
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.startswith("ValueError"), out

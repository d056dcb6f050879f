"""Resume from failure (issue 21, item 3) through a real server, worker and command line: a new
attempt of the workflow step in which every call an earlier attempt completed resolves at once
to that value ("reused from attempt 1"), and only the failed calls run again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .sched_helpers import SchedWorker, lines

MODULE = "schedapps.resuming"


@pytest.fixture(scope="module")
def resume_worker(sched) -> Iterator[SchedWorker]:
    worker = sched.start_worker("resuming", [MODULE], concurrency=8)
    try:
        worker.wait_registered()
        yield worker
    finally:
        worker.stop()


def _items(log: Path) -> list[str]:
    return lines(log, "item ")


def _fail_then_resume(sched, tmp_path: Path, n: int, failing: list[int]) -> tuple[str, Path, Path]:
    log, flag = tmp_path / "log", tmp_path / "flag"
    run = sched.client().submit(MODULE, "fan_out", str(log), n, failing, str(flag))
    with pytest.raises(Exception, match=f"{len(failing)} of {n} items failed"):
        run.result(timeout=120)
    assert len(_items(log)) == n  # every item ran once
    flag.touch()  # the failing items succeed from now on
    return run.id, log, flag


def test_resume_from_failure_reruns_exactly_the_failed_calls_of_a_300_task_fan_out(
        sched, resume_worker, tmp_path: Path) -> None:
    failing = [7, 150, 299]
    run_id, log, _ = _fail_then_resume(sched, tmp_path, 300, failing)

    run = sched.client().run(run_id)
    started = time.monotonic()
    attempt = run.resume()
    assert attempt.id == f"{run_id}:1:2" and attempt.attempt == 2
    assert attempt.result(timeout=120) == sum(2 * i for i in range(300))
    elapsed = time.monotonic() - started
    assert run.result(timeout=10) == sum(2 * i for i in range(300))  # the run follows its latest attempt

    # 300 items the first time, 3 the second: nothing else ran again.
    items = _items(log)
    assert len(items) == 303 and sorted(items[300:]) == sorted(f"item {i}" for i in failing)
    assert lines(log, "fan_out") == ["fan_out", "fan_out"]

    snapshot = sched.inspect(run_id)
    root = snapshot["steps"][0]
    assert [e["cause"] for e in root["executions"]] == [None, "resume"]
    second = [s for s in snapshot["steps"] if s["parent"] == f"{run_id}:1:2"]
    assert len(second) == 300
    reused = [s for s in second if s["executions"][0]["reused_from"] == 1]
    assert len(reused) == 297
    assert all(s["executions"][0]["result"]["kind"] == "cached" for s in reused)
    ran = [s for s in second if s["executions"][0]["reused_from"] is None]
    assert len(ran) == 3 and all(s["executions"][0]["result"]["kind"] == "value" for s in ran)
    # What 297 reused calls cost, end to end (benchmarks/resume.md keeps the figure).
    print(f"\nresume of a 300-item fan-out with 3 failures: {elapsed:.2f} s")


def test_coflux_runs_rerun_from_failure_resumes_on_the_command_line(sched, resume_worker, tmp_path: Path) -> None:
    run_id, log, _ = _fail_then_resume(sched, tmp_path, 20, [3])
    result = sched.cli("runs", "rerun", "--from-failure", f"{run_id}:1", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(2 * i for i in range(20)))
    assert f"resuming {run_id}:1 as {run_id}:1:2" in result.stderr
    assert len(_items(log)) == 21 and _items(log)[-1] == "item 3"
    inspected = sched.cli("runs", "inspect", "--no-wait", run_id).stdout
    assert inspected.count("(reused from attempt 1)") == 19

    # Resuming what did not fail is refused in one line, and nothing is recorded.
    refused = sched.cli("runs", "rerun", "--from-failure", f"{run_id}:1")
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "did not fail" in refused.stderr
    assert len(sched.inspect(run_id)["steps"][0]["executions"]) == 2


def test_a_plain_rerun_after_a_resume_runs_every_call_again(sched, resume_worker, tmp_path: Path) -> None:
    run_id, log, _ = _fail_then_resume(sched, tmp_path, 5, [1])
    client = sched.client()
    assert client.run(run_id).resume().result(timeout=60) == 20
    assert len(_items(log)) == 6
    execution = client.rerun(f"{run_id}:1")
    assert sched.wait_outcome(execution)["value"] == {"v": 20}
    assert len(_items(log)) == 11  # a re-run computes afresh: all five items ran again

"""requires / provides / accepts (design.md section 3). A worker matches when, for every required
key, it provides one of the values (True = any value); a worker with `--accepts k` only takes
work that requires k. Run-level requires are inherited by every step; a step can override a key
and an empty list removes it. With no matching worker the execution waits, and says why.

Two workers host schedapps.routing: the suite's main worker (no tags) and one started with
`--provides gpu:A100 --accepts gpu`. Tasks report their worker's pid (their parent process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import coflux as cf

from .sched_helpers import SchedWorker, executions, wait_snapshot

MODULE = "routing"


@pytest.fixture(scope="module")
def gpu_worker(sched) -> Iterator[SchedWorker]:
    worker = sched.start_worker("gpu", ["schedapps.routing"], extra=["--provides", "gpu:A100", "--accepts", "gpu"])
    try:
        session = worker.wait_registered()
        assert session["provides"] == {"gpu": ["A100"]} and session["accepts"] == {"gpu": ["true"]}
        yield worker
    finally:
        worker.stop()


@pytest.mark.parametrize(("variant", "host"), [
    ("a100", "gpu"),  # {"gpu": "A100"}
    ("one_of", "gpu"),  # {"gpu": ["H100", "A100"]}
    ("any_gpu", "gpu"),  # {"gpu": True}
    ("none", "main"),  # the gpu worker accepts only work that requires gpu
])
def test_steps_go_to_a_matching_worker(sched, gpu_worker, variant, host):
    expected = {"gpu": gpu_worker.pid, "main": sched.worker.pid}[host]
    for _ in range(3):
        _, value = sched.run(MODULE, "route", variant)
        assert value == {"label": variant, "worker": expected}


@pytest.mark.parametrize(("variant", "reason"), [
    ("h100", "no worker matches requires gpu:H100"),
    ("region", "no worker matches requires region:eu"),
    ("unhosted", "no connected worker hosts schedapps.nowhere/where"),
])
def test_without_a_matching_worker_the_step_waits_and_says_why(sched, gpu_worker, variant, reason):
    run = sched.submit(MODULE, "route", variant)
    snapshot = wait_snapshot(sched, run.id, lambda r: len(r["steps"]) == 2 and "waiting" in r["steps"][1]["executions"][0],
                             message="the step to wait")
    (execution,) = snapshot["steps"][1]["executions"]
    assert execution["waiting"] == reason and execution["assigned_at"] is None
    text = sched.cli("runs", "inspect", "--no-wait", run.id)
    assert text.returncode == 0, text.stderr
    assert f"{execution['id']}  attempt 1  pending" in text.stdout and f"({reason})" in text.stdout
    assert run.poll(0.2, default="waiting") == "waiting"
    sched.client().cancel(run.id)
    with pytest.raises(cf.ExecutionCancelled):
        run.result(timeout=10)


def test_run_level_requires_are_inherited_overridden_and_removed(sched, gpu_worker):
    run_id, value = sched.run(MODULE, "on_gpu")
    assert value == {"self": gpu_worker.pid, "inherited": gpu_worker.pid, "removed": sched.worker.pid,
                     "overridden": "still waiting"}
    run = sched.inspect(run_id)
    assert run["requires"] == {"gpu": ["A100"]}
    overridden = executions(run, "where")[2]
    assert overridden["result"]["kind"] == "cancelled" and overridden["assigned_at"] is None

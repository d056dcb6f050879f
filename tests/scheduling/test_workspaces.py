"""Workspaces (design.md sections 2 and 3): `coflux workspaces list|create NAME [--base B]`,
`--workspace` on clients and workers (default `default`). Cache, memo and re-run results of a base
are visible in its children, never the reverse; a re-run in a child leaves the base untouched.

schedapps.spaces is hosted in `default` by the suite's main worker and in the child workspace by a
worker started with `--workspace`; tasks report their worker's pid."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .sched_helpers import SchedWorker, executions, lines

MODULE = "spaces"
CHILD = "sched-child"


@pytest.fixture(scope="module")
def child_worker(sched) -> Iterator[SchedWorker]:
    created = sched.cli("workspaces", "create", CHILD, "--base", "default")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"created workspace {CHILD} based on default"
    worker = sched.start_worker("child-workspace", ["schedapps.spaces"], extra=["--workspace", CHILD])
    try:
        worker.wait_registered()
        yield worker
    finally:
        worker.stop()


def test_list_and_create(sched, child_worker):
    listed = sched.cli("workspaces", "list")
    assert listed.returncode == 0, listed.stderr
    assert "default" in listed.stdout.splitlines()
    assert f"{CHILD}  (base: default)" in listed.stdout.splitlines()

    plain = sched.cli("workspaces", "create", "sched-standalone")
    assert plain.returncode == 0 and plain.stdout.strip() == "created workspace sched-standalone"
    assert "sched-standalone" in sched.cli("workspaces", "list").stdout.splitlines()
    duplicate = sched.cli("workspaces", "create", CHILD)
    assert duplicate.returncode != 0 and f"workspace '{CHILD}' already exists" in duplicate.stderr
    unknown = sched.cli("workspaces", "create", "sched-orphan", "--base", "sched-missing")
    assert unknown.returncode != 0 and "no workspace named 'sched-missing'" in unknown.stderr


def test_update_renames_and_rebases_without_cycles(sched):
    assert sched.cli("workspaces", "create", "sched-upd-a").returncode == 0
    assert sched.cli("workspaces", "create", "sched-upd-b", "--base", "sched-upd-a").returncode == 0
    cycle = sched.cli("workspaces", "update", "sched-upd-a", "--base", "sched-upd-b")
    assert cycle.returncode != 0 and "cycle" in cycle.stderr
    renamed = sched.cli("workspaces", "update", "sched-upd-b", "--rename", "sched-upd-c")
    assert renamed.returncode == 0 and "sched-upd-c based on sched-upd-a" in renamed.stdout
    unbased = sched.cli("workspaces", "update", "sched-upd-c", "--no-base")
    assert unbased.returncode == 0 and "(no base)" in unbased.stdout
    listed = sched.cli("workspaces", "list").stdout.splitlines()
    assert "sched-upd-c" in listed and "sched-upd-b" not in listed and "sched-upd-a" in listed


def test_workspace_flag_and_default(sched, child_worker):
    in_default = sched.submit(MODULE, "whereami")
    assert in_default.result(timeout=30) == sched.worker.pid
    assert sched.inspect(in_default.id)["workspace"] == "default"

    submitted = sched.cli("submit", "--workspace", CHILD, "schedapps.spaces/whereami")
    assert submitted.returncode == 0, submitted.stderr
    assert int(submitted.stdout) == child_worker.pid  # the worker of that workspace ran it
    run_id = submitted.stderr.split()[1]
    assert sched.inspect(run_id)["workspace"] == CHILD


def test_cache_flows_from_base_to_child_not_back(sched, child_worker, tmp_path):
    log = str(tmp_path / "log")
    _, in_base = sched.run(MODULE, "use_cache", log, 1)
    assert in_base == {"x": 1, "worker": sched.worker.pid, "run": 1}
    child_run, in_child = sched.run(MODULE, "use_cache", log, 1, workspace=CHILD)
    assert in_child == in_base  # the base's entry, not executed again
    assert [e["result"]["kind"] for e in executions(sched.inspect(child_run), "cached_where")] == ["cached"]

    _, child_only = sched.run(MODULE, "use_cache", log, 2, workspace=CHILD)
    assert child_only == {"x": 2, "worker": child_worker.pid, "run": 2}
    base_run, base_again = sched.run(MODULE, "use_cache", log, 2)
    assert base_again == {"x": 2, "worker": sched.worker.pid, "run": 3}  # the child's entry is not visible
    assert [e["result"]["kind"] for e in executions(sched.inspect(base_run), "cached_where")] == ["value"]
    assert len(lines(tmp_path / "log")) == 3


def test_rerun_in_a_child_workspace_leaves_the_base_untouched(sched, child_worker, tmp_path):
    log = str(tmp_path / "log")
    run_id, value = sched.run(MODULE, "uses_memo", log, 1)
    assert value == {"n": 1, "worker": sched.worker.pid}
    produce = f"{run_id}:2"

    rerun = sched.cli("runs", "rerun", "--no-wait", "--workspace", CHILD, produce)
    assert rerun.returncode == 0, rerun.stderr
    in_child = rerun.stdout.strip()
    assert sched.wait_outcome(in_child)["value"] == {"v": {"n": 2, "worker": child_worker.pid}}

    # Re-running the workflow in the base: its memoised call finds the base's result, not the child's.
    base_attempt = sched.client().rerun(f"{run_id}:1")
    assert sched.wait_outcome(base_attempt)["value"] == {"v": {"n": 1, "worker": sched.worker.pid}}
    # ... and in the child: the child's own re-run result is the nearest.
    child_attempt = sched.client().rerun(f"{run_id}:1", workspace=CHILD)
    assert sched.wait_outcome(child_attempt)["value"] == {"v": {"n": 2, "worker": child_worker.pid}}
    assert len(lines(tmp_path / "log")) == 2  # only the explicit re-run executed `produce` again

    # A step cannot be re-run in a workspace that does not derive from its own.
    child_run, _ = sched.run(MODULE, "uses_memo", log, 5, workspace=CHILD)
    refused = sched.cli("runs", "rerun", "--no-wait", "--workspace", "default", f"{child_run}:2")
    assert refused.returncode != 0 and "is not the step's workspace or one derived from it" in refused.stderr

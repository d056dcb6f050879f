"""The rule lists applied by the real orchestrator on a real store (SQLite in a temporary folder),
with no worker process: what admission, placement and outcome decide, and the reason shown for
an execution that waits, come from the working set and the database as they are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coflux_server.orchestrator.core import Orchestrator
from coflux_server.store import create_store_engine, schema


@pytest.fixture()
def orchestrator(tmp_path: Path) -> Iterator[Orchestrator]:
    orch = Orchestrator(create_store_engine(f"sqlite:///{tmp_path / 'coflux.db'}"), lambda out, events: None)
    orch.start()
    yield orch
    orch.stop()


def inside(orch: Orchestrator, fn: Callable[[Orchestrator], Any]) -> Any:
    """Run `fn` in the orchestrator's thread and transaction; its return value."""
    return orch.call(fn).result(timeout=10)


def new_run(orch: Orchestrator, target: str = "t", args: list | None = None, **options: Any) -> str:
    """A run of m/`target` with these (wire) options; the id of its root execution."""
    def create(o: Orchestrator) -> str:
        return o.submission.create_run(o.workspace_id("default"), "m", target, args or [], options,
                                       parent_execution_id=None, idempotency_key=None,
                                       origin_session_id=None)[1]
    return inside(orch, create)


def reason(orch: Orchestrator, execution_id: str) -> str:
    return inside(orch, lambda o: o.queue.waiting_reason(o.ws.pending_by_id[execution_id]))


def result(orch: Orchestrator, execution_id: str) -> tuple | None:
    return inside(orch, lambda o: o.result_of(execution_id))


def test_with_no_worker_the_placement_rules_say_why(orchestrator: Orchestrator) -> None:
    execution = new_run(orchestrator)
    assert reason(orchestrator, execution) == "no connected worker hosts m/t"


def test_with_no_worker_a_paused_workspace_says_it_is_paused(orchestrator: Orchestrator) -> None:
    execution = new_run(orchestrator)
    inside(orchestrator, lambda o: o.control.set_workspace_state("default", "pause"))
    assert reason(orchestrator, execution) == "workspace default is paused (`coflux workspaces resume` lets it go on)"
    inside(orchestrator, lambda o: o.control.set_workspace_state("default", "resume"))
    assert reason(orchestrator, execution) == "no connected worker hosts m/t"


def test_a_delay_holds_it_back_until_its_time(orchestrator: Orchestrator) -> None:
    execution = new_run(orchestrator, delay=60)
    assert reason(orchestrator, execution).startswith("delayed until ")
    assert inside(orchestrator, lambda o: execution in o.ws.delayed)


def test_a_later_equal_deferred_call_supersedes_the_waiting_one(orchestrator: Orchestrator) -> None:
    first = new_run(orchestrator, args=[{"v": 1}], defer={"params": None})
    second = new_run(orchestrator, args=[{"v": 1}], defer={"params": None})
    other = new_run(orchestrator, args=[{"v": 2}], defer={"params": None})
    assert result(orchestrator, first) == ("deferred", None, None, second)
    assert result(orchestrator, second) is None and result(orchestrator, other) is None


def test_an_equal_cached_call_in_flight_is_reused(orchestrator: Orchestrator) -> None:
    cache = {"params": None, "max_age": None, "namespace": None, "version": None}
    first = new_run(orchestrator, args=[{"v": 1}], cache=cache)
    second = new_run(orchestrator, args=[{"v": 1}], cache=cache)
    assert result(orchestrator, second) == ("cached", None, None, first)
    assert result(orchestrator, first) is None  # still waiting for a worker: the cache follows it


def test_a_wait_argument_holds_it_until_the_execution_resolves(orchestrator: Orchestrator) -> None:
    upstream = new_run(orchestrator, target="up")
    ref = {"v": {"$": "ref", "i": 0}, "refs": [{"type": "execution", "id": upstream, "module": "m", "target": "up"}]}
    waiting = new_run(orchestrator, args=[ref], wait=[0])
    assert reason(orchestrator, waiting) == f"waiting for {upstream}"
    # The upstream resolves: admission runs again and the placement rules take over.
    inside(orchestrator, lambda o: o.outcomes.conclude(o.submission.pending_of(upstream), "value", value={"v": 1}))
    assert reason(orchestrator, waiting) == "no connected worker hosts m/t"


def test_an_error_within_its_retries_becomes_a_new_attempt(orchestrator: Orchestrator) -> None:
    execution = new_run(orchestrator, retries={"limit": 1, "backoff": [0, 0]})
    error = {"type": "builtins.ValueError", "message": "no", "frames": [], "retryable": None}
    inside(orchestrator, lambda o: o.outcomes.conclude(o.submission.pending_of(execution), "error", error=error))
    kind, _, _, successor = result(orchestrator, execution)
    assert kind == "error" and successor == execution[:-1] + "2"
    inside(orchestrator, lambda o: o.outcomes.conclude(o.submission.pending_of(successor), "error", error=error))
    assert result(orchestrator, successor)[3] is None  # its one retry is spent


def _hand_out(o: Orchestrator, execution_id: str) -> None:
    """As if a worker took it: out of the queues, into the assigned set (no worker process here)."""
    pending = o.ws.pending_by_id[execution_id]
    o.queue.unqueue(pending)
    o.ws.assigned[execution_id] = pending


def _children(o: Orchestrator, parent: str, calls: list[tuple[int, str | None]]) -> list[str]:
    """Steps of task m/t submitted by `parent`, one per (argument, code hash)."""
    run = o.run_info(parent.split(":")[0])
    return [o.submission._create_step(run, parent, "m", "t", "task", [{"v": arg}], {}, code_hash=code)
            for arg, code in calls]


def test_a_resumed_attempt_reuses_the_values_of_its_earlier_children_and_reruns_the_rest(
        orchestrator: Orchestrator) -> None:
    """Resume from failure on the real store: equal calls that ended with a value resolve at once
    as `cached` (pointing at the earlier value); failed, cancelled and never-reached calls, and a
    call whose code changed, are queued to run."""
    error = {"type": "builtins.ValueError", "message": "no", "frames": [], "retryable": None}
    root = new_run(orchestrator, target="w")
    inside(orchestrator, lambda o: _hand_out(o, root))
    first = inside(orchestrator, lambda o: _children(o, root, [(1, "h"), (2, "h"), (3, "h"), (4, "h")]))

    def end_first_attempt(o: Orchestrator) -> None:
        o.outcomes.conclude(o.submission.pending_of(first[0]), "value", value={"v": 10})
        o.outcomes.conclude(o.submission.pending_of(first[1]), "value", value={"v": 20})
        o.outcomes.conclude(o.submission.pending_of(first[2]), "error", error=error)
        o.control.cancel(first[3])
        o.ws.assigned.pop(root)
        o.outcomes.conclude(o.submission.pending_of(root), "error", error=error)
    inside(orchestrator, end_first_attempt)

    step = root.rpartition(":")[0]
    resumed = inside(orchestrator, lambda o: o.resumption.resume(step))["execution"]
    assert resumed == f"{step}:2"
    inside(orchestrator, lambda o: _hand_out(o, resumed))
    # Calls 1 and 2 as before; call 2 with other code, 3 failed, 4 was cancelled, 5 is new.
    second = inside(orchestrator, lambda o: _children(o, resumed, [(1, "h"), (2, "other"), (3, "h"), (4, "h"),
                                                                   (5, "h"), (1, None)]))
    assert result(orchestrator, second[0]) == ("cached", None, None, first[0])
    assert result(orchestrator, second[5]) == ("cached", None, None, first[0])  # no hash known: target and args
    for execution in second[1:5]:
        assert result(orchestrator, execution) is None
        assert reason(orchestrator, execution) == "no connected worker hosts m/t"


def test_only_a_failed_step_can_be_resumed(orchestrator: Orchestrator) -> None:
    from coflux_server.errors import BadRequest

    root = new_run(orchestrator, target="w")
    step = root.rpartition(":")[0]
    with pytest.raises(BadRequest, match="still running"):
        inside(orchestrator, lambda o: o.resumption.resume(step))
    inside(orchestrator, lambda o: o.outcomes.conclude(o.submission.pending_of(root), "value", value={"v": 1}))
    with pytest.raises(BadRequest, match="did not fail"):
        inside(orchestrator, lambda o: o.resumption.resume(step))


def test_a_resumed_call_given_a_reused_execution_matches_the_call_given_the_original(
        orchestrator: Orchestrator) -> None:
    """`consume(produce.submit(x))`: in the resumed attempt `consume` is passed the new (reused)
    `produce` step, which resolves to the value the first attempt's `consume` was passed."""
    error = {"type": "builtins.ValueError", "message": "no", "frames": [], "retryable": None}
    root = new_run(orchestrator, target="w")
    inside(orchestrator, lambda o: _hand_out(o, root))

    def ref(execution: str) -> dict:
        return {"v": {"$": "ref", "i": 0}, "refs": [{"type": "execution", "id": execution, "module": "m",
                                                     "target": "t"}]}

    def first_attempt(o: Orchestrator) -> tuple[str, str, str]:
        run = o.run_info(root.split(":")[0])
        produce = o.submission._create_step(run, root, "m", "produce", "task", [{"v": 1}], {})
        o.outcomes.conclude(o.submission.pending_of(produce), "value", value={"v": 10})
        consume = o.submission._create_step(run, root, "m", "consume", "task", [ref(produce)], {})
        o.outcomes.conclude(o.submission.pending_of(consume), "value", value={"v": 11})
        fails = o.submission._create_step(run, root, "m", "fails", "task", [], {})
        o.outcomes.conclude(o.submission.pending_of(fails), "error", error=error)
        o.ws.assigned.pop(root)
        o.outcomes.conclude(o.submission.pending_of(root), "error", error=error)
        return produce, consume, fails
    produce, consume, _ = inside(orchestrator, first_attempt)

    resumed = inside(orchestrator, lambda o: o.resumption.resume(root.rpartition(":")[0]))["execution"]
    inside(orchestrator, lambda o: _hand_out(o, resumed))

    def second_attempt(o: Orchestrator) -> tuple[str, str]:
        run = o.run_info(root.split(":")[0])
        again = o.submission._create_step(run, resumed, "m", "produce", "task", [{"v": 1}], {})
        return again, o.submission._create_step(run, resumed, "m", "consume", "task", [ref(again)], {})
    produce_again, consume_again = inside(orchestrator, second_attempt)
    assert result(orchestrator, produce_again) == ("cached", None, None, produce)
    assert result(orchestrator, consume_again) == ("cached", None, None, consume)


def test_a_resume_survives_a_server_restart(tmp_path: Path) -> None:
    """The table of reusable values lives in memory; an orchestrator started again on the same
    database reads it again on the resumed attempt's first call."""
    error = {"type": "builtins.ValueError", "message": "no", "frames": [], "retryable": None}
    url = f"sqlite:///{tmp_path / 'coflux.db'}"
    first = Orchestrator(create_store_engine(url), lambda out, events: None)
    first.start()
    try:
        root = new_run(first, target="w")
        inside(first, lambda o: _hand_out(o, root))
        done = inside(first, lambda o: _children(o, root, [(1, "h"), (2, "h")]))

        def end(o: Orchestrator) -> None:
            o.outcomes.conclude(o.submission.pending_of(done[0]), "value", value={"v": 10})
            o.outcomes.conclude(o.submission.pending_of(done[1]), "error", error=error)
            o.ws.assigned.pop(root)
            o.outcomes.conclude(o.submission.pending_of(root), "error", error=error)
        inside(first, end)
        resumed = inside(first, lambda o: o.resumption.resume(root.rpartition(":")[0]))["execution"]
    finally:
        first.stop()

    second = Orchestrator(create_store_engine(url), lambda out, events: None)
    second.start()
    try:
        assert inside(second, lambda o: resumed in o.ws.pending_by_id and not len(o.ws.resumed))
        inside(second, lambda o: _hand_out(o, resumed))
        again = inside(second, lambda o: _children(o, resumed, [(1, "h"), (2, "h")]))
        assert result(second, again[0]) == ("cached", None, None, done[0])
        assert result(second, again[1]) is None  # the failed call runs again
    finally:
        second.stop()


def test_a_new_pool_never_takes_a_deleted_pools_id(orchestrator: Orchestrator, tmp_path: Path) -> None:
    # Launches stay on record (found by pool id) after their pool is deleted: a new pool given
    # the deleted one's id (SQLite reuses the highest) would list them as its own.
    def create(o: Orchestrator, name: str) -> int:
        o.pools.create_pool("default", name, "process", {"directory": str(tmp_path)}, ["m"], None, None)
        return next(p.id for p in o.ws.pools.values() if p.name == name)

    def launched(o: Orchestrator, pool_id: int) -> None:  # an ended launch's row, as a launch leaves it
        o.db.execute(schema.launches.insert().values(
            id="Lgone", pool_id=pool_id, pool_name="a", workspace_id=o.workspace_id("default"), type="process",
            state="exited", secret_hash="0" * 64, created_at=1.0))

    first = inside(orchestrator, lambda o: create(o, "a"))
    inside(orchestrator, lambda o: launched(o, first))
    assert [lc["id"] for lc in inside(orchestrator, lambda o: o.pools.launches("default", "a"))] == ["Lgone"]
    inside(orchestrator, lambda o: o.pools.delete_pool("default", "a"))
    second = inside(orchestrator, lambda o: create(o, "b"))
    assert second > first
    assert inside(orchestrator, lambda o: o.pools.launches("default", "b")) == []

"""Each decision rule of the orchestrator alone: placement (which worker), admission (defer,
delay, wait, cache) and outcome (retry, recur, cancel descendants, cache index). The end-to-end
behaviour of the same options is tested through real processes in tests/scheduling/."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from coflux_server.orchestrator.model import Pending, Session
from coflux_server.orchestrator.rules import admission, outcome, placement


def pending(**overrides) -> Pending:
    values = dict(id="R1:2:1", step_id="R1:2", run_id="R1", module="m", target="t", type="task",
                  workspace_id=1, execute_after=0.0, arguments=[], options={}, requires={},
                  origin_session_id=None)
    values.update(overrides)
    return Pending(**values)


def session(sid: str = "S1", **overrides) -> Session:
    values = dict(id=sid, workspace_id=1, kind="headless", name=f"worker-{sid}",
                  targets={("m", "t"): "task"}, concurrency=2, provides={}, accepts={})
    values.update(overrides)
    s = Session(**values)
    s.peer = overrides.get("peer", object())
    return s


# ------------------------------------------------------------------ placement


def test_a_matching_connected_worker_with_a_free_slot_takes_it() -> None:
    worker = session()
    assert placement.choose(pending(), [worker]) is worker
    assert placement.why_unplaced(pending(), [worker]) is None


@pytest.mark.parametrize(("worker", "reason"), [
    (session(workspace_id=2), "no connected worker hosts m/t"),
    (session(targets={("m", "other"): "task"}), "no connected worker hosts m/t"),
    (session(targets={("m", "t"): "workflow"}), "no connected worker hosts m/t"),
    (session(peer=None), "the workers hosting it are disconnected"),
])
def test_each_refusal_says_why(worker: Session, reason: str) -> None:
    assert placement.choose(pending(), [worker]) is None
    assert placement.why_unplaced(pending(), [worker]) == reason


def test_nothing_new_is_placed_in_a_paused_workspace() -> None:
    paused = session("P", workspace_paused="prod")
    other = session("O", workspace_id=2)  # another workspace's worker never takes it either
    assert placement.choose(pending(), [paused, other]) is None
    assert placement.why_unplaced(pending(), [paused, other]) == (
        "workspace prod is paused (`coflux workspaces resume` lets it go on)")
    assert placement.choose(pending(), [paused, session("A")]).id == "A"  # resumed: a session is active again


@pytest.mark.parametrize("workers", [[], [session(workspace_id=2)], [session(peer=None)], [session()]])
def test_a_paused_workspace_is_the_reason_whatever_the_workers(workers: list[Session]) -> None:
    # No worker at all, only another workspace's, a disconnected one, even a free one: the
    # workspace being paused is why it waits (`paused` is the working set's fact, not a session's).
    assert placement.why_unplaced(pending(), workers, paused="prod") == (
        "workspace prod is paused (`coflux workspaces resume` lets it go on)")
    assert placement.why_unplaced(pending(), workers) != placement.paused_text("prod")


def test_requires_and_accepts() -> None:
    gpu = session("G", provides={"gpu": ["A100"]})
    plain = session("P")
    wants_gpu = pending(requires={"gpu": ["A100"]})
    assert placement.candidates(wants_gpu, [plain, gpu]) == [gpu]
    assert placement.why_unplaced(wants_gpu, [plain]) == "no worker matches requires gpu:A100"
    picky = session("A", accepts={"gpu": ["true"]})
    assert placement.candidates(pending(), [picky]) == []  # it takes only work that requires gpu
    assert placement.why_unplaced(pending(), [picky]) == "no worker matches requires nothing"
    assert placement.candidates(pending(requires={"gpu": ["true"]}), [picky]) == [picky]


def test_a_draining_worker_takes_only_what_its_own_executions_wait_for() -> None:
    worker = session(draining=True)
    worker.running.add("R1:1:1")
    assert placement.why_unplaced(pending(), [worker]) == "the workers hosting it are draining (stopping)"
    assert placement.choose(pending(parent_id="R1:1:1"), [worker]) is worker


def test_full_workers_and_the_parking_bound() -> None:
    worker = session(concurrency=1)
    worker.running.add("R1:3:1")
    assert placement.why_unplaced(pending(), [worker]) == "waiting for a free worker slot"
    worker.stuck.add("R1:3:1")
    reason = placement.why_unplaced(pending(), [worker])
    assert reason is not None and reason.startswith("every slot is held by an execution blocked on a result")
    assert "--max-parked" in reason


def test_the_first_rule_that_leaves_nobody_names_the_reason() -> None:
    """A worker elsewhere and a disconnected host: the host rule passes one, then `connected` none."""
    elsewhere = session("E", workspace_id=2)
    gone = session("D", peer=None)
    assert placement.why_unplaced(pending(), [elsewhere, gone]) == "the workers hosting it are disconnected"


def test_preference_idle_then_origin_then_least_busy() -> None:
    busy = session("B", concurrency=1, prefetch=2)
    busy.running.add("x")  # only room to queue
    idle = session("I")
    origin = session("O")
    assert placement.choose(pending(), [busy, idle]) is idle
    assert placement.choose(pending(origin_session_id="O"), [idle, origin]) is origin
    idle.running.add("y")
    assert placement.choose(pending(), [idle, session("F")]).id == "F"


# ------------------------------------------------------------------ admission


@dataclass
class Facts:
    earlier: Pending | None = None
    blocking: list[str] = field(default_factory=list)
    hit: str | None = None
    reusable: str | None = None
    asked: list[str] = field(default_factory=list)

    def earlier_attempt_result(self, p: Pending) -> str | None:
        self.asked.append("earlier")
        return self.reusable

    def deferred_latest(self, p: Pending) -> Pending | None:
        self.asked.append("defer")
        return self.earlier

    def blockers(self, p: Pending) -> list[str]:
        self.asked.append("blockers")
        return self.blocking

    def cache_hit(self, p: Pending) -> str | None:
        self.asked.append("cache")
        return self.hit


def kinds(decisions: list) -> list[str]:
    return [type(d).__name__ for d in decisions]


def test_plain_work_is_ready_without_asking_anything() -> None:
    facts = Facts()
    assert kinds(admission.admit(pending(), facts, now=100.0)) == ["Ready"]
    assert facts.asked == []


def test_defer_supersedes_and_admission_goes_on() -> None:
    earlier = pending(id="R1:1:1")
    decisions = admission.admit(pending(defer_key="k"), Facts(earlier=earlier), now=100.0)
    assert kinds(decisions) == ["Supersede", "Ready"]
    assert decisions[0].earlier is earlier
    first = admission.admit(pending(defer_key="k"), Facts(earlier=None), now=100.0)
    assert kinds(first) == ["Supersede", "Ready"] and first[0].earlier is None  # the first of its key
    p = pending(defer_key="k", execute_after=200.0)
    assert kinds(admission.admit(p, Facts(earlier=p), now=300.0)) == ["Ready"]  # admitted again at its time


def test_a_delay_comes_before_waiting_and_the_cache() -> None:
    facts = Facts(blocking=["R1:5:1"], hit="R0:2:1")
    p = pending(execute_after=200.0, cache_key="c", options={"wait": [0]})
    decisions = admission.admit(p, facts, now=100.0)
    assert kinds(decisions) == ["Delay"] and decisions[0].until == 200.0
    assert facts.asked == []
    assert admission.reason(decisions[-1]).startswith("delayed until ")
    # At its time, the same list goes on: it waits for its dependency.
    decisions = admission.admit(p, facts, now=300.0)
    assert kinds(decisions) == ["Wait"]
    assert admission.reason(decisions[-1]) == "waiting for R1:5:1"


def test_the_cache_is_asked_only_for_first_attempts_not_forced() -> None:
    facts = Facts(hit="R0:2:1")
    decisions = admission.admit(pending(cache_key="c"), facts, now=1.0)
    assert kinds(decisions) == ["ReuseCached"] and decisions[0].execution == "R0:2:1"
    for later in (pending(cache_key="c", attempt=2), pending(cache_key="c", force=True)):
        assert kinds(admission.admit(later, facts, now=1.0)) == ["Ready"]
    assert facts.asked == ["cache"]


def test_resolved_dependencies_let_it_through_to_the_cache() -> None:
    facts = Facts(blocking=[], hit=None)
    p = pending(cache_key="c", options={"wait": True})
    assert kinds(admission.admit(p, facts, now=1.0)) == ["Ready"]
    assert facts.asked == ["blockers", "cache"]


def test_a_child_of_a_resumed_attempt_reuses_an_earlier_value_before_any_other_rule() -> None:
    facts = Facts(blocking=["R1:5:1"], hit="R0:2:1", reusable="R1:3:1")
    p = pending(parent_id="R1:1:2", execute_after=200.0, cache_key="c", defer_key="k", options={"wait": [0]})
    decisions = admission.admit(p, facts, now=100.0)
    assert kinds(decisions) == ["ReuseEarlier"] and decisions[0].execution == "R1:3:1"
    assert facts.asked == ["earlier"]  # no delay, wait, defer or cache: the value is there
    assert admission.reason(decisions[-1]) == "reuses the result of R1:3:1 from an earlier attempt"


def test_nothing_earlier_to_reuse_lets_the_other_rules_decide() -> None:
    facts = Facts(reusable=None, hit="R0:2:1")
    decisions = admission.admit(pending(parent_id="R1:1:2", cache_key="c"), facts, now=1.0)
    assert kinds(decisions) == ["ReuseCached"] and facts.asked == ["earlier", "cache"]


def test_only_new_task_calls_ask_for_an_earlier_attempts_value() -> None:
    facts = Facts(reusable="R1:3:1")
    for p in (pending(), pending(parent_id="R1:1:2", attempt=2), pending(parent_id="R1:1:2", force=True),
              pending(parent_id="R1:1:2", type="workflow")):
        assert kinds(admission.admit(p, facts, now=1.0)) == ["Ready"]
    assert facts.asked == []


# ------------------------------------------------------------------ outcome


def ending(kind: str, *, options: dict | None = None, value=None, error=None, failures: int = 0,
           cache_key: str | None = None) -> outcome.Ending:
    return outcome.Ending(pending(options=options or {}, cache_key=cache_key), kind, value=value, error=error,
                          now=1000.0, failures_before=lambda: failures)


RETRIES = {"retries": {"limit": 2, "backoff": [10, 20]}}


def test_a_failure_within_its_retries_gets_a_new_attempt_after_its_backoff() -> None:
    verdict = outcome.conclude(ending("error", options=RETRIES, error={"type": "E", "message": ""}))
    assert verdict.kind == "error" and verdict.next_attempt == ("retry", 1010.0)
    assert outcome.conclude(ending("crashed", options=RETRIES, failures=1)).next_attempt == ("retry", 1020.0)
    assert outcome.conclude(ending("timeout", options=RETRIES, failures=2)).next_attempt is None


def test_what_is_not_retried() -> None:
    rejected = {"type": "E", "message": "", "retryable": False}  # the worker's `when` said no
    assert outcome.conclude(ending("error", options=RETRIES, error=rejected)).next_attempt is None
    assert outcome.conclude(ending("cancelled", options=RETRIES)).next_attempt is None
    assert outcome.conclude(ending("error", error={"type": "E", "message": ""})).next_attempt is None


def test_a_recurrent_step_that_returns_none_runs_again() -> None:
    verdict = outcome.conclude(ending("value", options={"recurrent": True, "delay": 5}, value={"v": None}))
    assert (verdict.kind, verdict.value, verdict.next_attempt) == ("recurred", None, ("recur", 1005.0))
    done = outcome.conclude(ending("value", options={"recurrent": True}, value={"v": 3}))
    assert (done.kind, done.next_attempt) == ("value", None)


@pytest.mark.parametrize(("kind", "cancels"), [("timeout", True), ("abandoned", True), ("crashed", True),
                                               ("error", False), ("value", False), ("cancelled", False)])
def test_which_endings_cancel_descendants(kind: str, cancels: bool) -> None:
    assert outcome.conclude(ending(kind, error={"type": "E", "message": ""})).cancel_descendants is cancels


def test_only_values_enter_the_cache_index() -> None:
    assert outcome.conclude(ending("value", value={"v": 1}, cache_key="c")).index_cache
    assert not outcome.conclude(ending("value", value={"v": 1})).index_cache
    assert not outcome.conclude(ending("error", error={"type": "E", "message": ""}, cache_key="c")).index_cache
    recurring = ending("value", options={"recurrent": True}, value={"v": None}, cache_key="c")
    assert not outcome.conclude(recurring).index_cache  # recorded as `recurred`


def test_shipped_code_goes_only_to_a_worker_that_accepts_code() -> None:
    shipped = pending(options={"code": {"hash": "h"}})
    plain, accepting = session("P"), session("A", accepts_code=True)
    assert placement.candidates(shipped, [plain, accepting]) == [accepting]
    assert placement.why_unplaced(shipped, [plain]) == \
        "no worker accepts shipped code (start one with --accept-code)"
    assert placement.candidates(pending(), [plain, accepting]) == [plain, accepting]  # module code: anyone
    # Shipped code needs no module on the worker: one hosting other targets takes it.
    elsewhere = session("E", accepts_code=True, targets={("other", "x"): "task"})
    assert placement.candidates(shipped, [plain, elsewhere]) == [elsewhere]
    assert placement.candidates(pending(), [elsewhere]) == []

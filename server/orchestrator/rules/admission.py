"""What happens to an execution before it may go to a worker: one ordered list of rules.

`admit` runs the rules in order when an execution is created and again whenever it may move on
(its delay ends, what it waited for resolves). Each rule looks at the execution and at facts
the orchestrator answers (`AdmissionFacts`), and returns a decision or None:

0. reuse: a child of a resumed attempt (resume from failure) whose same call (target, arguments,
   code hash where known) an earlier attempt of its parent's step completed with a value takes
   that value at once (resumption.py keeps the table; this rule only asks it).
1. supersede: with `defer`, this execution becomes the latest of its defer key; an equal call
   not handed out yet is superseded (it resolves as `deferred`); admission goes on.
2. delay: it may not start before `execute_after`: a timer admits it again then.
3. wait: it waits for executions it depends on (`wait` arguments, a suspension's `after`).
4. cache: an equal call's value (or one in flight) in this workspace or a base is reused.
5. otherwise it is ready: it goes to the placement rules (rules/placement.py).

The same decisions answer "why does it wait" (`reason`), so what inspect shows is what the
scheduler did. Rules never change anything themselves: the orchestrator applies decisions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..model import Pending


class AdmissionFacts(Protocol):
    """What the admission rules ask of the orchestrator's working set."""

    def deferred_latest(self, pending: Pending) -> Pending | None:
        """The latest execution known with the same target, workspace and defer key as `pending`
        (None when there is none)."""

    def blockers(self, pending: Pending) -> list[str]:
        """Unresolved executions `pending` must wait for."""

    def cache_hit(self, pending: Pending) -> str | None:
        """An execution whose result `pending` may reuse (a value within max age, or in flight)."""

    def earlier_attempt_result(self, pending: Pending) -> str | None:
        """For a child of a resumed attempt: the execution of the same call under an earlier
        attempt of its parent's step that ended with a value (None otherwise)."""


@dataclass(frozen=True)
class Supersede:
    # `pending` becomes the latest of its defer key; `earlier`, if it is still waiting (not handed
    # out), resolves as `deferred` and its waiters follow to `pending`.
    earlier: Pending | None


@dataclass(frozen=True)
class Delay:
    until: float


@dataclass(frozen=True)
class Wait:
    blockers: list[str]


@dataclass(frozen=True)
class ReuseCached:
    execution: str  # the execution whose result is reused


@dataclass(frozen=True)
class ReuseEarlier:
    execution: str  # the earlier attempt's child whose value is reused


@dataclass(frozen=True)
class Ready:
    pass


Decision = Supersede | Delay | Wait | ReuseCached | ReuseEarlier | Ready
# A decision that ends admission for now (Supersede does not: the new execution goes on).
FINAL_DECISIONS = (Delay, Wait, ReuseCached, ReuseEarlier, Ready)


def reuse_earlier_attempt(pending: Pending, facts: AdmissionFacts, now: float) -> Decision | None:
    # Only a new call (first attempt, not a forced re-run) of a child; the fact answers None at
    # the cost of one dict lookup unless its parent runs a resumed attempt.
    if pending.parent_id is None or pending.attempt != 1 or pending.force or pending.type != "task":
        return None
    hit = facts.earlier_attempt_result(pending)
    return ReuseEarlier(hit) if hit is not None else None


def supersede_deferred(pending: Pending, facts: AdmissionFacts, now: float) -> Decision | None:
    if pending.defer_key is None:
        return None
    latest = facts.deferred_latest(pending)
    return None if latest is pending else Supersede(latest)


def delay_until_due(pending: Pending, facts: AdmissionFacts, now: float) -> Decision | None:
    if pending.execute_after and pending.execute_after > now:
        return Delay(pending.execute_after)
    return None


def wait_for_dependencies(pending: Pending, facts: AdmissionFacts, now: float) -> Decision | None:
    if not pending.after and not pending.options.get("wait"):
        return None
    blockers = facts.blockers(pending)
    return Wait(blockers) if blockers else None


def reuse_cached_result(pending: Pending, facts: AdmissionFacts, now: float) -> Decision | None:
    # A retry, a resumed suspension or a forced re-run computes afresh.
    if pending.cache_key is None or pending.attempt != 1 or pending.force:
        return None
    hit = facts.cache_hit(pending)
    return ReuseCached(hit) if hit is not None else None


Rule = Callable[[Pending, AdmissionFacts, float], "Decision | None"]
ADMISSION_RULES: tuple[Rule, ...] = (reuse_earlier_attempt, supersede_deferred, delay_until_due, wait_for_dependencies,
                                     reuse_cached_result)


def admit(pending: Pending, facts: AdmissionFacts, now: float | None = None,
          rules: tuple[Rule, ...] = ADMISSION_RULES) -> list[Decision]:
    """The decisions for `pending`, in order; the last one is final (Delay, Wait, ReuseCached,
    ReuseEarlier or Ready)."""
    now = time.time() if now is None else now
    decisions: list[Decision] = []
    for rule in rules:
        decision = rule(pending, facts, now)
        if decision is None:
            continue
        decisions.append(decision)
        if isinstance(decision, FINAL_DECISIONS):
            return decisions
    decisions.append(Ready())
    return decisions


def reason(decision: Decision) -> str | None:
    """Why a final decision holds the execution back (None for Ready: placement says the rest)."""
    if isinstance(decision, Delay):
        return f"delayed until {time.strftime('%H:%M:%S', time.localtime(decision.until))}"
    if isinstance(decision, Wait):
        return "waiting for " + ", ".join(decision.blockers)
    if isinstance(decision, ReuseCached):
        return f"reuses the cached result of {decision.execution}"
    if isinstance(decision, ReuseEarlier):
        return f"reuses the result of {decision.execution} from an earlier attempt"
    return None

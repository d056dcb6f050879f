"""Which worker takes a due execution, and why none does: one ordered list of rules.

Each rule admits or refuses one (execution, worker session) pair. A session may take the
execution when every rule admits it (`candidates`); `choose` then prefers an idle slot, the
session the run came from, and the least busy. When no session passes, the first rule that
left none says why the execution waits (`why_unplaced`), so "where does this go" and "why does
it wait" are answered by the same list and can never disagree.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..matching import accepts_satisfied, requires_satisfied
from ..model import Pending, Session


def parking_bound(session: Session) -> str:
    """The advice for a worker at its parking bound (warnings, inspect and queue reasons say it alike)."""
    return (f"worker {session.name} already parks {session.parked} blocked execution(s) (its --max-parked): "
            "start more workers or raise --max-parked")


SHIPPED_CODE_WAITS = "no worker accepts shipped code (start one with --accept-code)"


def shipped(pending: Pending) -> bool:
    """Whether the step carries code shipped by value (its options' `code`)."""
    return pending.options.get("code") is not None


def paused_text(workspace: str) -> str:
    return f"workspace {workspace} is paused (`coflux workspaces resume` lets it go on)"


def _requires_text(pending: Pending) -> str:
    wanted = ", ".join(f"{k}:{'|'.join(v)}" for k, v in pending.requires.items()) or "nothing"
    return f"no worker matches requires {wanted}"


def _no_free_slot(_pending: Pending, sessions: list[Session]) -> str:
    stuck = [s for s in sessions if s.stuck and s.busy_slots() >= s.concurrency]
    if stuck and len(stuck) == len(sessions):
        return f"every slot is held by an execution blocked on a result: {parking_bound(stuck[0])}"
    return "waiting for a free worker slot"


@dataclass(frozen=True)
class PlacementRule:
    name: str
    admits: Callable[[Pending, Session], bool]
    # Why the execution waits, given the sessions that passed the rules before this one.
    refusal: Callable[[Pending, list[Session]], str]


PLACEMENT_RULES: tuple[PlacementRule, ...] = (
    PlacementRule("same workspace", lambda p, s: s.workspace_id == p.workspace_id,
                  lambda p, _: f"no connected worker hosts {p.module}/{p.target}"),
    # `coflux workspaces pause`: running work finishes, nothing new starts (the sessions passed
    # the rule before: they are in the execution's workspace).
    PlacementRule("workspace not paused", lambda p, s: s.workspace_paused is None,
                  lambda p, sessions: paused_text(sessions[0].workspace_paused or "")),
    # Code shipped by value (a step whose options carry `code`) runs only where the worker opted
    # in (`coflux worker --accept-code`), never on one that did not (the kernel that defined it
    # included); such a worker needs no module of its own for it.
    PlacementRule("accepts shipped code", lambda p, s: s.accepts_code or not shipped(p),
                  lambda p, _: SHIPPED_CODE_WAITS),
    PlacementRule("hosts the target",
                  lambda p, s: shipped(p) or s.targets.get((p.module, p.target)) == p.type,
                  lambda p, _: f"no connected worker hosts {p.module}/{p.target}"),
    # A worker launched for a pool authenticates with that launch's credential: only its pool's
    # work (its modules' steps; shipped steps too when the pool accepts code, which is the only
    # way such a worker's `accepts_code` is set: Pools.attach_session).
    PlacementRule("in its pool, if launched for one", lambda p, s: s.pool_modules is None
                  or (shipped(p) and s.accepts_code)
                  or any(fnmatch.fnmatchcase(p.module, pattern) for pattern in s.pool_modules),
                  lambda p, _: f"only workers launched for other pools host {p.module}/{p.target}"),
    PlacementRule("provides what it requires", lambda p, s: requires_satisfied(p.requires, s.provides, s.accepts),
                  lambda p, _: _requires_text(p)),
    PlacementRule("requires what the worker accepts", lambda p, s: accepts_satisfied(p.requires, s.accepts),
                  lambda p, _: _requires_text(p)),
    PlacementRule("connected", lambda p, s: s.peer is not None,
                  lambda p, _: "the workers hosting it are disconnected"),
    # A stopping worker only takes what its own running executions wait for.
    PlacementRule("not draining", lambda p, s: not s.draining or p.parent_id in s.running,
                  lambda p, _: "the workers hosting it are draining (stopping)"),
    PlacementRule("a free slot", lambda p, s: s.has_capacity(), _no_free_slot),
)


def candidates(pending: Pending, sessions: Iterable[Session],
               rules: tuple[PlacementRule, ...] = PLACEMENT_RULES) -> list[Session]:
    """The sessions every rule admits for `pending`."""
    return [s for s in sessions if all(rule.admits(pending, s) for rule in rules)]


def preference(pending: Pending, session: Session) -> tuple:
    """Lower is better: an idle slot before one that would only queue it (prefetch), then the
    session the run came from (a notebook runs its own cells), then the least busy."""
    idle = session.concurrency <= 0 or session.busy_slots() < session.concurrency
    return (not idle, session.id != pending.origin_session_id, session.busy_slots())


def choose(pending: Pending, sessions: Iterable[Session]) -> Session | None:
    """The session that takes `pending`, or None."""
    return min(candidates(pending, sessions), key=lambda s: preference(pending, s), default=None)


def why_unplaced(pending: Pending, sessions: Iterable[Session],
                 rules: tuple[PlacementRule, ...] = PLACEMENT_RULES, paused: str | None = None) -> str | None:
    """Why no session takes `pending`: the refusal of the first rule that leaves none (None when
    one would take it). `paused` names the execution's workspace while it is paused: that is
    why it waits whatever the workers are (none connected included)."""
    if paused is not None:
        return paused_text(paused)
    remaining = list(sessions)
    for rule in rules:
        passed = [s for s in remaining if rule.admits(pending, s)]
        if not passed:
            return rule.refusal(pending, remaining)
        remaining = passed
    return None

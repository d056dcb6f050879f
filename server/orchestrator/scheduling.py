"""From pending to running: due time, waiting on dependencies, cache hits, deferral, and the
choice of a worker."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from sqlalchemy import and_, select

from coflux.protocol import AssignedEvent, ResultKind, run_topic

from ..store import schema as t
from .component import Component
from .model import Pending, Session
from .rules import admission, placement
from .rules.refs import execution_refs


class Queue(Component):
    def enqueue(self, pending: Pending) -> None:
        """Track a new execution and admit it (rules/admission.py)."""
        self.ws.pending_by_id[pending.id] = pending
        if pending.cache_key is not None and pending.attempt > 1:
            # A later attempt (a retry in its backoff, a suspended step) is in flight for the cache.
            self.ws.cache_inflight.setdefault(pending.cache_key, set()).add(pending.id)
        self._admit(pending)

    def _admit(self, pending: Pending) -> None:
        """Apply the admission rules' decisions: supersede a deferred twin, delay, wait for
        dependencies, reuse a cached result, or queue it for a worker."""
        for decision in admission.admit(pending, self):
            if isinstance(decision, admission.Supersede):
                self._supersede(pending, decision.earlier)
            elif isinstance(decision, admission.Delay):
                self.ws.delayed[pending.id] = pending
                self.o.add_timer(decision.until, "due", pending.id)
            elif isinstance(decision, admission.Wait):
                pending.blocked = True
                for execution_id in decision.blockers:
                    self.o.waiters.on_resolved(execution_id, lambda _outcome, p=pending: self._unblock(p))
            elif isinstance(decision, admission.ReuseCached | admission.ReuseEarlier):
                self.unqueue(pending, queued=False)  # not in a ready queue yet: no scan of it
                self.o.outcomes.record_result(pending.id, ResultKind.CACHED, successor=decision.execution)
            else:
                self._queue_ready(pending)

    # Facts the admission rules ask (admission.AdmissionFacts).

    def earlier_attempt_result(self, pending: Pending) -> str | None:
        return self.o.resumption.reusable(pending)

    def deferred_latest(self, pending: Pending) -> Pending | None:
        return self.ws.deferrable.get((pending.module, pending.target, pending.workspace_id, pending.defer_key))

    def _supersede(self, pending: Pending, earlier: Pending | None) -> None:
        """Among unassigned executions with the same target and defer key, only the latest is kept;
        the earlier one resolves as `deferred` and its waiters follow to the latest."""
        self.ws.deferrable[(pending.module, pending.target, pending.workspace_id, pending.defer_key)] = pending
        if earlier is not None and earlier.id in self.ws.pending_by_id and earlier.id not in self.ws.active:
            self.unqueue(earlier)
            self.o.outcomes.record_result(earlier.id, ResultKind.DEFERRED, successor=pending.id)

    def unqueue(self, pending: Pending, queued: bool = True) -> None:
        """Take a not-yet-assigned execution out of every queue (`queued=False`: it was never put
        in a ready queue, which need not be searched then)."""
        self.ws.pending_by_id.pop(pending.id, None)
        self.ws.delayed.pop(pending.id, None)
        queue = self.ws.ready.get((pending.module, pending.target)) if queued else None
        if queue is not None:
            try:
                queue.remove(pending)
            except ValueError:
                pass
        self._forget_defer_slot(pending)

    def _forget_defer_slot(self, pending: Pending) -> None:
        """It is handed out or resolved: a later equal call no longer supersedes it."""
        if pending.defer_key is not None:
            slot = (pending.module, pending.target, pending.workspace_id, pending.defer_key)
            if self.ws.deferrable.get(slot) is pending:
                del self.ws.deferrable[slot]

    def due(self, pending: Pending) -> None:
        """The execution's time has come, or what it waited for resolved: admit it again."""
        if pending.id in self.ws.pending_by_id:
            self._admit(pending)

    def _queue_ready(self, pending: Pending) -> None:
        """Admitted: it waits in its target's ready queue for a worker (rules/placement.py)."""
        pending.blocked = False
        if pending.cache_key is not None:
            self.ws.cache_inflight.setdefault(pending.cache_key, set()).add(pending.id)
        self.ws.ready.setdefault((pending.module, pending.target), deque()).append(pending)
        if pending.urgent:
            self.ws.urgent.append(pending)
        self.o.needs_schedule = True

    def prioritise(self, execution_id: str) -> None:
        """A running execution waits for this one: send it before other ready work, so nested
        waits go depth first and parked executions resume soon instead of piling up."""
        pending = self.ws.pending_by_id.get(execution_id)
        if pending is None or pending.urgent:
            return
        pending.urgent = True
        if not pending.blocked and pending.id not in self.ws.delayed:
            self.ws.urgent.append(pending)
            self.o.needs_schedule = True

    def _unblock(self, pending: Pending) -> None:
        if pending.blocked and pending.id in self.ws.pending_by_id:
            if pending.after is not None:
                pending.after = None  # a suspension resumes once any awaited execution resolves
            self.due(pending)

    def blockers(self, pending: Pending) -> list[str]:
        """Unresolved executions this one must wait for: any of `after` (a suspension), or all
        references in its `wait` arguments, searched inside resolved values too."""
        if pending.after:
            unresolved = [e for e in pending.after if self.o.follow(e)[0] == "pending"]
            return unresolved if len(unresolved) == len(pending.after) else []
        wait = pending.options.get("wait")
        if not wait:
            return []
        unresolved: list[str] = []
        seen: set[str] = set()
        todo = execution_refs(pending.arguments, wait)
        while todo:
            execution_id = todo.pop()
            if execution_id in seen:
                continue
            seen.add(execution_id)
            status, _, result = self.o.follow(execution_id)
            if status == "pending":
                unresolved.append(execution_id)
            elif result[0] == "value" and isinstance(result[1], dict):
                todo.extend(execution_refs([result[1]]))
        return unresolved

    def cache_hit(self, pending: Pending) -> str | None:
        """Another step's execution with the same cache key, in this workspace or a base, whose
        result is a value within max age or is still pending (then this one waits on it).

        In-flight executions and recent values are indexed in memory (which also covers rows
        not flushed yet); the database is asked once per key the index has not seen."""
        key = pending.cache_key
        lineage = self.o.workspace_lineage(pending.workspace_id)
        for other in self.ws.cache_inflight.get(key, ()):
            candidate = self.ws.pending_by_id.get(other) or self.ws.assigned.get(other)
            if candidate is not None and candidate.step_id != pending.step_id and candidate.workspace_id in lineage:
                return other
        if key not in self.ws.cache_values:
            self._load_cache_values(key)
        max_age = (pending.options.get("cache") or {}).get("max_age")
        now = time.time()
        for execution_id, step_id, workspace_id, at in reversed(self.ws.cache_values.get(key, [])):
            if step_id != pending.step_id and workspace_id in lineage and (max_age is None or now - at <= max_age):
                return execution_id
        return None

    def _load_cache_values(self, key: str) -> None:
        # self.ws.cache_values is bounded (least recently used keys go; see caches.py)
        rows = self.db.execute(
            select(t.executions.c.id, t.executions.c.step_id, t.executions.c.workspace_id, t.results.c.created_at)
            .join(t.steps, t.steps.c.id == t.executions.c.step_id)
            .join(t.results, t.results.c.execution_id == t.executions.c.id)
            .where(and_(t.steps.c.cache_key == key, t.results.c.kind == "value"))
            .order_by(t.results.c.created_at)).all()
        self.ws.cache_values[key] = [(r.id, r.step_id, r.workspace_id, r.created_at) for r in rows]

    def track_cached_result(self, pending: Pending, index: bool) -> None:
        """Keep the in-memory cache index in step with an execution that just got a result
        (`index`: its value may be reused, as the outcome rules decided)."""
        key = pending.cache_key
        inflight = self.ws.cache_inflight.get(key)
        if inflight is not None:
            inflight.discard(pending.id)
            if not inflight:
                del self.ws.cache_inflight[key]
        if index and key in self.ws.cache_values:
            self.ws.cache_values[key].append((pending.id, pending.step_id, pending.workspace_id, time.time()))

    # ----------------------------------------------------------------- assignment

    def schedule(self, now: float) -> None:
        self.o.needs_schedule = False
        by_target: dict[tuple[str, str], list[Session]] = {}
        # Workers that run code shipped by value take a shipped step of any target.
        shipping: list[Session] = []
        for session in self.ws.sessions.values():
            if session.has_capacity():
                for key in session.targets:
                    by_target.setdefault(key, []).append(session)
                if session.accepts_code:
                    shipping.append(session)
        if not by_target and not shipping:
            return
        lists = [*by_target.values(), shipping]

        def candidates_of(pending: Pending) -> list[Session] | None:
            hosts = by_target.get((pending.module, pending.target))
            if pending.options.get("code") is None:
                return hosts
            return [*(hosts or ()), *(s for s in shipping if s not in (hosts or ()))] or None

        # What running (parked) executions wait for goes first: nested waits go depth first.
        self.ws.urgent = deque(self._place(self.ws.urgent, candidates_of, lists, now))
        for key, waiting in self.ws.ready.items():
            if waiting and by_target.get(key):
                skipped = self._place(waiting, candidates_of, lists, now)
            elif waiting and shipping:
                # Hosted nowhere: only shipped steps can go; the first that cannot ends the pass
                # (a target's steps are shipped alike), so the queue is not scanned on every wake-up.
                skipped = self._place(waiting, lambda p: candidates_of(p) or [], lists, now)
            else:
                continue
            waiting.extendleft(reversed(skipped))

    def _place(self, waiting: deque[Pending], candidates_of: Any, lists: list[list[Session]],
               now: float) -> list[Pending]:
        """Assign from `waiting` (popped from the left) while workers have room; returns the
        ones no candidate could take, in order."""
        skipped: list[Pending] = []
        while waiting:
            pending = waiting.popleft()
            if pending.id not in self.ws.pending_by_id:
                continue  # assigned or resolved meanwhile (cancelled, deferred)
            candidates = candidates_of(pending)
            if not candidates:
                if candidates is not None and not pending.urgent:
                    waiting.appendleft(pending)  # this target's workers are full: stop here
                    break
                skipped.append(pending)
                continue
            session = placement.choose(pending, candidates)
            if session is None:
                skipped.append(pending)
                continue
            self._assign(pending, session, now)
            if not session.has_capacity():
                for sessions in lists:
                    if session in sessions:
                        sessions.remove(session)
        return skipped


    def _assign(self, pending: Pending, session: Session, now: float) -> None:
        """Hand a placed execution to its worker."""
        self.ws.pending_by_id.pop(pending.id, None)
        self._forget_defer_slot(pending)
        pending.assignment += 1  # a new hand-out: what the worker says of an older one is ignored
        self.record_assignment(pending, session, now, assignment=pending.assignment)
        self.o.send(session.peer, {
            "op": "execute", "execution": pending.id, "run": pending.run_id, "module": pending.module,
            "target": pending.target, "type": pending.type, "args": pending.arguments,
            "timeout": pending.timeout, "attempt": pending.attempt,
            "retry_when": (pending.options.get("retries") or {}).get("when"),
            "parent": pending.parent_id, "urgent": pending.urgent, "assignment": pending.assignment,
            **({"code": pending.options["code"]} if pending.options.get("code") is not None else {})})

    def record_assignment(self, pending: Pending, session: Session, now: float, **columns: Any) -> None:
        """`pending` is now held by `session` (handed out, or adopted: see WorkerState): in
        memory, in the database, and for viewers."""
        session.running.add(pending.id)
        self.ws.active[pending.id] = session.id
        self.ws.assigned[pending.id] = pending
        self.w.update_execution(pending.id, session_id=session.id, assigned_at=now, **columns)
        self.o.publish(run_topic(pending.run_id),
                       AssignedEvent(type="assigned", execution=pending.id, session=session.id, at=now))

    def queue_listing(self, limit: int) -> tuple[int, list[dict]]:
        """Read-only: the executions that have not started (waiting, or assigned to a worker that
        has not begun them), oldest first, at most `limit`, with why each waits; and how many there are."""
        entries: list[dict] = []
        total = len(self.ws.pending_by_id)
        for pending in self.ws.pending_by_id.values():
            if len(entries) < limit:
                entries.append(self._queue_entry(pending, None, self.waiting_reason(pending)))
        for execution_id, pending in self.ws.assigned.items():
            if pending.started_at is not None:
                continue
            total += 1
            if len(entries) < limit:
                session = self.ws.sessions.get(self.ws.active.get(execution_id, ""))
                name = session.name if session is not None else "a worker"
                reason = self.o.worker_state.stuck_reason(execution_id) or f"assigned to {name}, which has not started it yet"
                entries.append(self._queue_entry(pending, session, reason))
        return total, entries

    @staticmethod
    def _queue_entry(pending: Pending, session: Session | None, reason: str) -> dict:
        return {"id": pending.id, "run": pending.run_id, "step": pending.step_id, "module": pending.module,
                "target": pending.target, "type": pending.type, "attempt": pending.attempt,
                "parent": pending.parent_id, "execute_after": pending.execute_after or None,
                "assigned": session is not None, "session": session.id if session is not None else None,
                "worker": session.name if session is not None else None, "waiting": reason}

    def waiting_reason(self, pending: Pending) -> str:
        """Why an execution has not started (shown by `coflux runs inspect` and Studio): what the
        admission rules decide for it now, else why the placement rules find no worker."""
        held = admission.reason(admission.admit(pending, self)[-1])
        if held is not None:
            return held
        paused = self.ws.paused_workspaces.get(pending.workspace_id)
        reason = placement.why_unplaced(pending, self.ws.sessions.values(), paused=paused)
        if reason is None:
            return "waiting for a free worker slot"
        if paused is not None:
            return reason  # no pool's note: nothing starts there until it is resumed
        return self.o.pools.waiting_note(pending) or reason

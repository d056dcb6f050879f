"""From pending to running: due time, waiting on dependencies, cache hits, deferral, and the
choice of a worker."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from sqlalchemy import and_, select

from coflux.protocol import AssignedEvent, run_topic

from ..store import schema as t
from .matching import worker_matches
from .model import Pending, Session, Waiter
from .rules.refs import execution_refs
from .worker_state import parking_bound


class SchedulingMixin:
    def _enqueue(self, pending: Pending) -> None:
        """Track a new execution: deferral is decided now, everything else once it is due."""
        self.pending_by_id[pending.id] = pending
        if pending.cache_key is not None and pending.attempt > 1:
            # A later attempt (a retry in its backoff, a suspended step) is in flight for the cache.
            self.cache_inflight.setdefault(pending.cache_key, set()).add(pending.id)
        if pending.defer_key is not None:
            self._defer(pending)
        if pending.execute_after and pending.execute_after > time.time():
            self.delayed[pending.id] = pending
            self._add_timer(pending.execute_after, "due", pending.id)
        else:
            self._due(pending)

    def _defer(self, pending: Pending) -> None:
        """Among unassigned executions with the same target and defer key, only the latest is kept;
        the earlier one resolves as `deferred` and its waiters follow to the latest."""
        slot = (pending.module, pending.target, pending.workspace_id, pending.defer_key)
        earlier = self.deferrable.get(slot)
        self.deferrable[slot] = pending
        if earlier is not None and earlier.id in self.pending_by_id and earlier.id not in self.active:
            self._unqueue(earlier)
            self._record_result(earlier.id, "deferred", successor=pending.id)

    def _unqueue(self, pending: Pending, queued: bool = True) -> None:
        """Take a not-yet-assigned execution out of every queue (`queued=False`: it was never put
        in a ready queue, which need not be searched then)."""
        self.pending_by_id.pop(pending.id, None)
        self.delayed.pop(pending.id, None)
        queue = self.ready.get((pending.module, pending.target)) if queued else None
        if queue is not None:
            try:
                queue.remove(pending)
            except ValueError:
                pass
        if pending.defer_key is not None:
            slot = (pending.module, pending.target, pending.workspace_id, pending.defer_key)
            if self.deferrable.get(slot) is pending:
                del self.deferrable[slot]

    def _due(self, pending: Pending) -> None:
        """The execution's time has come: wait for what it depends on, try the cache, queue it."""
        if pending.id not in self.pending_by_id:
            return
        blockers = self._blockers(pending)
        if blockers:
            pending.blocked = True
            for execution_id in blockers:
                self._on_resolved(execution_id, lambda _outcome, p=pending: self._unblock(p))
            return
        pending.blocked = False
        if pending.cache_key is not None:
            hit = self._cache_hit(pending) if pending.attempt == 1 and not pending.force else None
            if hit is not None:
                self._unqueue(pending, queued=False)  # not in a ready queue yet: no scan of it
                self._record_result(pending.id, "cached", successor=hit)
                return
            self.cache_inflight.setdefault(pending.cache_key, set()).add(pending.id)
        self.ready.setdefault((pending.module, pending.target), deque()).append(pending)
        if pending.urgent:
            self.urgent.append(pending)
        self._needs_schedule = True

    def _prioritise(self, execution_id: str) -> None:
        """A running execution waits for this one: send it before other ready work, so nested
        waits go depth first and parked executions resume soon instead of piling up."""
        pending = self.pending_by_id.get(execution_id)
        if pending is None or pending.urgent:
            return
        pending.urgent = True
        if not pending.blocked and pending.id not in self.delayed:
            self.urgent.append(pending)
            self._needs_schedule = True

    def _unblock(self, pending: Pending) -> None:
        if pending.blocked and pending.id in self.pending_by_id:
            if pending.after is not None:
                pending.after = None  # a suspension resumes once any awaited execution resolves
            self._due(pending)

    def _on_resolved(self, execution_id: str, callback) -> None:
        """Call `callback(outcome)` once the execution's chain has a final result."""
        status, tail, result = self.follow(execution_id)
        if status == "final":
            callback(self._wire_outcome(tail, result))
            return
        self.waiters.setdefault(tail, []).append(Waiter(peer=None, request_id=None, callback=callback))

    def _blockers(self, pending: Pending) -> list[str]:
        """Unresolved executions this one must wait for: any of `after` (a suspension), or all
        references in its `wait` arguments, searched inside resolved values too."""
        if pending.after:
            unresolved = [e for e in pending.after if self.follow(e)[0] == "pending"]
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
            status, _, result = self.follow(execution_id)
            if status == "pending":
                unresolved.append(execution_id)
            elif result[0] == "value" and isinstance(result[1], dict):
                todo.extend(execution_refs([result[1]]))
        return unresolved

    def _cache_hit(self, pending: Pending) -> str | None:
        """Another step's execution with the same cache key, in this workspace or a base, whose
        result is a value within max age or is still pending (then this one waits on it).

        In-flight executions and recent values are indexed in memory (which also covers rows
        not flushed yet); the database is asked once per key the index has not seen."""
        key = pending.cache_key
        lineage = self.workspace_lineage(pending.workspace_id)
        for other in self.cache_inflight.get(key, ()):
            candidate = self.pending_by_id.get(other) or self.assigned.get(other)
            if candidate is not None and candidate.step_id != pending.step_id and candidate.workspace_id in lineage:
                return other
        if key not in self.cache_values:
            self._load_cache_values(key)
        max_age = (pending.options.get("cache") or {}).get("max_age")
        now = time.time()
        for execution_id, step_id, workspace_id, at in reversed(self.cache_values.get(key, [])):
            if step_id != pending.step_id and workspace_id in lineage and (max_age is None or now - at <= max_age):
                return execution_id
        return None

    def _load_cache_values(self, key: str) -> None:
        # self.cache_values is bounded (least recently used keys go; see caches.py)
        rows = self.db.execute(
            select(t.executions.c.id, t.executions.c.step_id, t.executions.c.workspace_id, t.results.c.created_at)
            .join(t.steps, t.steps.c.id == t.executions.c.step_id)
            .join(t.results, t.results.c.execution_id == t.executions.c.id)
            .where(and_(t.steps.c.cache_key == key, t.results.c.kind == "value"))
            .order_by(t.results.c.created_at)).all()
        self.cache_values[key] = [(r.id, r.step_id, r.workspace_id, r.created_at) for r in rows]

    def _track_cached_result(self, pending: Pending, kind: str) -> None:
        """Keep the in-memory cache index in step with an execution that just got a result."""
        key = pending.cache_key
        inflight = self.cache_inflight.get(key)
        if inflight is not None:
            inflight.discard(pending.id)
            if not inflight:
                del self.cache_inflight[key]
        if kind == "value" and key in self.cache_values:
            self.cache_values[key].append((pending.id, pending.step_id, pending.workspace_id, time.time()))

    # ----------------------------------------------------------------- assignment

    def _schedule(self, now: float) -> None:
        self._needs_schedule = False
        by_target: dict[tuple[str, str], list[Session]] = {}
        for session in self.sessions.values():
            if session.has_capacity():
                for key in session.targets:
                    by_target.setdefault(key, []).append(session)
        if not by_target:
            return
        # What running (parked) executions wait for goes first: nested waits go depth first.
        self.urgent = deque(self._place(self.urgent, lambda p: by_target.get((p.module, p.target)), by_target, now))
        for key, waiting in self.ready.items():
            if waiting and by_target.get(key):
                skipped = self._place(waiting, lambda _p, key=key: by_target.get(key), by_target, now)
                waiting.extendleft(reversed(skipped))

    def _place(self, waiting: deque[Pending], candidates_of: Any, by_target: dict, now: float) -> list[Pending]:
        """Assign from `waiting` (popped from the left) while workers have room; returns the
        ones no candidate could take, in order."""
        skipped: list[Pending] = []
        while waiting:
            pending = waiting.popleft()
            if pending.id not in self.pending_by_id:
                continue  # assigned or resolved meanwhile (cancelled, deferred)
            candidates = candidates_of(pending)
            if not candidates:
                if candidates is not None and not pending.urgent:
                    waiting.appendleft(pending)  # this target's workers are full: stop here
                    break
                skipped.append(pending)
                continue
            session = self._choose(pending, candidates)
            if session is None:
                skipped.append(pending)
                continue
            self._assign(pending, session, now)
            if not session.has_capacity():
                for sessions in by_target.values():
                    if session in sessions:
                        sessions.remove(session)
        return skipped

    @staticmethod
    def _choose(pending: Pending, candidates: list[Session]) -> Session | None:
        """A matching worker: one with an idle slot before one that would only queue it, then
        the session the run came from (a notebook runs its own cells), then the least busy."""
        best: Session | None = None
        best_key: tuple | None = None
        for session in candidates:
            if session.workspace_id != pending.workspace_id:
                continue
            if session.targets.get((pending.module, pending.target)) != pending.type:
                continue
            if not worker_matches(pending.requires, session.provides, session.accepts):
                continue
            if session.draining and pending.parent_id not in session.running:
                continue  # a stopping worker only takes what its own executions wait for
            idle = session.concurrency <= 0 or session.busy_slots() < session.concurrency
            key = (not idle, session.id != pending.origin_session_id, session.busy_slots())
            if best_key is None or key < best_key:
                best, best_key = session, key
        return best

    def _assign(self, pending: Pending, session: Session, now: float) -> None:
        self.pending_by_id.pop(pending.id, None)
        if pending.defer_key is not None:
            slot = (pending.module, pending.target, pending.workspace_id, pending.defer_key)
            if self.deferrable.get(slot) is pending:
                del self.deferrable[slot]
        session.running.add(pending.id)
        self.active[pending.id] = session.id
        self.assigned[pending.id] = pending
        self.w.update_execution(pending.id, session_id=session.id, assigned_at=now)
        self._send(session.peer, {
            "op": "execute", "execution": pending.id, "run": pending.run_id, "module": pending.module,
            "target": pending.target, "type": pending.type, "args": pending.arguments,
            "timeout": pending.timeout, "attempt": pending.attempt,
            "retry_when": (pending.options.get("retries") or {}).get("when"),
            "parent": pending.parent_id, "urgent": pending.urgent})
        self._publish(run_topic(pending.run_id),
                      AssignedEvent(type="assigned", execution=pending.id, session=session.id, at=now))

    def queue_listing(self, limit: int) -> tuple[int, list[dict]]:
        """Read-only: the executions that have not started (waiting, or assigned to a worker that
        has not begun them), oldest first, at most `limit`, with why each waits; and how many there are."""
        entries: list[dict] = []
        total = len(self.pending_by_id)
        for pending in self.pending_by_id.values():
            if len(entries) < limit:
                entries.append(self._queue_entry(pending, None, self.waiting_reason(pending)))
        for execution_id, pending in self.assigned.items():
            if pending.started_at is not None:
                continue
            total += 1
            if len(entries) < limit:
                session = self.sessions.get(self.active.get(execution_id, ""))
                name = session.name if session is not None else "a worker"
                reason = self.stuck_reason(execution_id) or f"assigned to {name}, which has not started it yet"
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
        """Why an execution has not started (shown by `coflux runs inspect` and Studio)."""
        if pending.execute_after and pending.execute_after > time.time():
            return f"delayed until {time.strftime('%H:%M:%S', time.localtime(pending.execute_after))}"
        if pending.blocked:
            return "waiting for " + ", ".join(self._blockers(pending) or ["dependencies"])
        hosts = [s for s in self.sessions.values()
                 if s.targets.get((pending.module, pending.target)) == pending.type
                 and s.workspace_id == pending.workspace_id]
        if not hosts:
            return f"no connected worker hosts {pending.module}/{pending.target}"
        if not any(worker_matches(pending.requires, s.provides, s.accepts) for s in hosts):
            wanted = ", ".join(f"{k}:{'|'.join(v)}" for k, v in pending.requires.items()) or "nothing"
            return f"no worker matches requires {wanted}"
        if not any(s.peer is not None for s in hosts):
            return "the workers hosting it are disconnected"
        if all(s.draining for s in hosts if s.peer is not None):
            return "the workers hosting it are draining (stopping)"
        full = [s for s in hosts if s.peer is not None and s.stuck and s.busy_slots() >= s.concurrency]
        if full and len(full) == len([s for s in hosts if s.peer is not None]):
            return f"every slot is held by an execution blocked on a result: {parking_bound(full[0])}"
        return "waiting for a free worker slot"

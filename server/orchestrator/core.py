"""The orchestrator thread.

Every state change goes through one thread that owns all database writes. Commands posted by
the I/O loop (submits, results, waits, worker changes) are drained in batches: each batch runs
in one transaction, then the replies and live events it produced are handed back to the loop.
Nothing is acknowledged before its transaction has committed. The thread sleeps on its queue,
or until the earliest timer (a delayed execution, a wait timeout, a worker's reconnect grace).

The rules live in mixins, one concern each: sessions (workers), submission (runs, steps, memo),
scheduling (due time, waiting, cache, defer, assignment), outcomes (results, retries,
recurrence, waiters) and control (cancel, re-run, suspend, workspaces).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine, select

from ..errors import BadRequest, NotFound
from ..store import schema as t
from .control import ControlMixin
from .matching import merge_requires
from .model import Peer, Pending, RunInfo, Session, Waiter
from .outcomes import OutcomesMixin
from .scheduling import SchedulingMixin
from .sessions import SessionsMixin
from .submission import SubmissionMixin
from .writes import WriteBuffer

log = logging.getLogger("coflux.orchestrator")

Deliver = Callable[[list[tuple[Peer, dict]], list[tuple[str, dict]]], None]


class Orchestrator(SessionsMixin, SubmissionMixin, SchedulingMixin, OutcomesMixin, ControlMixin):
    def __init__(self, engine: Engine, deliver: Deliver, *, reconnect_grace: float = 30.0) -> None:
        self.engine = engine
        self._deliver = deliver
        self.reconnect_grace = reconnect_grace
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._seq = itertools.count()
        self._handlers: dict[str, Callable[[Peer | None, Any, dict], None]] = {
            "register": self._on_register,
            "declare": self._on_declare,
            "release": self._on_release,
            "submit": self._on_submit,
            "call": self._on_call,
            "group": self._on_group,
            "result": self._on_result,
            "wait": self._on_wait,
            "depend": self._on_depend,
            "cancel": self._on_cancel,
            "rerun": self._on_rerun,
        }
        self._reset_memory()

    # ----------------------------------------------------------------- lifecycle

    def _reset_memory(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.peer_sessions: dict[Any, str] = {}
        self.ready: dict[tuple[str, str], deque[Pending]] = {}
        self.delayed: dict[str, Pending] = {}
        self.active: dict[str, str] = {}  # execution id -> session id
        self.assigned: dict[str, Pending] = {}  # what an active execution was assigned as
        self.pending_by_id: dict[str, Pending] = {}
        self.deferrable: dict[tuple, Pending] = {}  # (module, target, workspace, defer key) -> latest
        self.cache_inflight: dict[str, set[str]] = {}  # cache key -> executions due and unfinished
        self.cache_values: dict[str, list[tuple]] = {}  # cache key -> [(execution, step, workspace, at)]
        self.waiters: dict[str, list[Waiter]] = {}
        self.peer_waiters: dict[Any, set[Waiter]] = {}
        self.timers: list[tuple[float, int, str, Any]] = []
        self.runs: dict[str, RunInfo] = {}
        self.results: dict[str, tuple[str, Any, Any, str | None]] = {}
        self.workspace_ids: dict[str, int] = {}
        self.workspace_bases: dict[int, int | None] = {}
        self._out: list[tuple[Peer, dict]] = []
        self._events: list[tuple[str, dict]] = []
        self._needs_schedule = True

    def start(self) -> None:
        # One long-lived connection: the orchestrator is the only writer, and a pool checkout
        # per batch would cost more than the batch itself on the hot path.
        self._connection = self.engine.connect()
        with self.engine.begin() as db:
            self.db = db
            self.w = WriteBuffer(db)
            self._load()
            self.w.flush()
        self._thread = threading.Thread(target=self._run, name="coflux-orchestrator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if getattr(self, "_connection", None) is not None:
            self._connection.close()

    def post(self, op: str, peer: Peer | None = None, request_id: Any = None, params: dict | None = None) -> None:
        """Queue a command from any thread."""
        self._queue.put((op, peer, request_id, params or {}))

    def call(self, fn: Callable[[Orchestrator], Any]) -> Future:
        """Run `fn(self)` inside the orchestrator's transaction; its return value resolves the future."""
        future: Future = Future()
        self._queue.put(("__call__", fn, future, None))
        return future

    # ----------------------------------------------------------------- the loop

    def _run(self) -> None:
        while not self._stopped.is_set():
            delay = self._next_timer_delay()
            try:
                first = self._queue.get(timeout=delay) if delay is None or delay > 0 else self._queue.get_nowait()
            except queue.Empty:
                first = ()
            if first is None:
                break
            batch = [first] if first else []
            while len(batch) < 5000:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stopped.set()
                    break
                batch.append(item)
            self._process(batch)

    def _process(self, batch: list) -> None:
        self._out, self._events = [], []
        try:
            self._transaction(batch)
        except Exception:
            log.exception("batch of %d commands failed; retrying them one by one", len(batch))
            self._out, self._events = [], []  # none of it was committed
            self._recover()
            for command in batch:
                out_mark, events_mark = len(self._out), len(self._events)
                try:
                    self._transaction([command])
                except Exception as exc:  # a command that fails on its own: report it, keep going
                    log.exception("command %r failed", command[0] if command else None)
                    del self._out[out_mark:], self._events[events_mark:]
                    self._recover()
                    self._fail_command(command, exc)
        out, events = self._out, self._events
        self._out, self._events = [], []
        if out or events:
            self._deliver(out, events)

    def _transaction(self, batch: list) -> None:
        calls: list[tuple[Future, Any]] = []
        db = self._connection
        with db.begin():
            self.db = db
            self.w = WriteBuffer(db)
            for command in batch:
                if command:
                    self._dispatch(command, calls)
            self._fire_timers(time.time())
            if self._needs_schedule:
                self._schedule(time.time())
            self.w.flush()
        for future, value in calls:
            future.set_result(value)

    def _dispatch(self, command: tuple, calls: list) -> None:
        op, peer, request_id, params = command
        if op == "__call__":
            fn, future = peer, request_id
            try:
                calls.append((future, fn(self)))
            except BadRequest as exc:
                future.set_exception(exc)
            return
        if op == "__closed__":
            self._on_closed(peer)
            return
        handler = self._handlers.get(op)
        try:
            if handler is None:
                raise BadRequest(f"unknown operation {op!r}")
            handler(peer, request_id, params)
        except BadRequest as exc:
            self._reply_error(peer, request_id, exc.to_wire())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Malformed parameters from a client: report, change nothing.
            self._reply_error(peer, request_id, {"code": "bad_request", "message": f"malformed {op!r}: {exc!r}"})

    def _fail_command(self, command: tuple, exc: Exception) -> None:
        op, peer, request_id, _ = command if command else (None, None, None, None)
        if op == "__call__":
            request_id.set_exception(exc)
        elif peer is not None and request_id is not None:
            self._out.append((peer, {"re": request_id, "err": {"code": "internal", "message": repr(exc)}}))

    def _recover(self) -> None:
        """Rebuild the in-memory working set from the database after a rolled-back batch."""
        try:
            self._connection.close()
        except Exception:
            pass
        self._connection = self.engine.connect()
        peers = {sid: s.peer for sid, s in self.sessions.items()}
        peer_waiters = self.peer_waiters
        self._reset_memory()
        with self.engine.begin() as db:
            self.db = db
            self.w = WriteBuffer(db)
            self._load()
            self.w.flush()
        for sid, peer in peers.items():
            if sid in self.sessions and peer is not None:
                self.sessions[sid].peer = peer
                self.sessions[sid].expires_at = None
                self.peer_sessions[peer] = sid
        # Waiters cannot be rebuilt; tell their clients to ask again.
        for peer, waiters in peer_waiters.items():
            for waiter in waiters:
                if not waiter.done and waiter.request_id is not None:
                    self._out.append((peer, {"re": waiter.request_id,
                                             "err": {"code": "retry", "message": "server recovered; retry"}}))

    # ----------------------------------------------------------------- effects

    def _reply(self, peer: Peer | None, request_id: Any, result: Any) -> None:
        if peer is not None and request_id is not None:
            self._out.append((peer, {"re": request_id, "ok": result}))

    def _reply_error(self, peer: Peer | None, request_id: Any, error: dict) -> None:
        if peer is not None and request_id is not None:
            self._out.append((peer, {"re": request_id, "err": error}))

    def _send(self, peer: Peer | None, message: dict) -> None:
        if peer is not None:
            self._out.append((peer, message))

    def _publish(self, topic: str, event: dict) -> None:
        self._events.append((topic, event))

    # ----------------------------------------------------------------- timers

    def _add_timer(self, due: float, kind: str, payload: Any) -> None:
        heapq.heappush(self.timers, (due, next(self._seq), kind, payload))

    def _next_timer_delay(self) -> float | None:
        if not self.timers:
            return None
        return max(0.0, self.timers[0][0] - time.time())

    def _fire_timers(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(self.timers)
            if kind == "due":
                pending = self.delayed.get(payload)
                if pending is not None and pending.execute_after <= now:
                    del self.delayed[payload]
                    self._due(pending)
            elif kind == "wait":
                if not payload.done:
                    payload.done = True
                    self._forget_waiter(payload)
                    self._reply(payload.peer, payload.request_id, {"status": "pending", **(payload.extra or {})})
            elif kind == "session":
                session = self.sessions.get(payload)
                if session is not None and session.peer is None and session.expires_at is not None \
                        and session.expires_at <= now:
                    self._expire_session(session)

    # ----------------------------------------------------------------- loading

    def _load(self) -> None:
        now = time.time()
        for row in self.db.execute(select(t.workspaces.c.name, t.workspaces.c.id, t.workspaces.c.base_id)):
            self.workspace_ids[row.name] = row.id
            self.workspace_bases[row.id] = row.base_id
        for row in self.db.execute(select(t.sessions).where(t.sessions.c.ended_at.is_(None))):
            session = self._session_from_row(row)
            session.expires_at = now + self.reconnect_grace
            self.sessions[session.id] = session
            self._add_timer(session.expires_at, "session", session.id)
        query = (
            select(t.executions.c.id, t.executions.c.step_id, t.executions.c.run_id, t.executions.c.attempt,
                   t.executions.c.cause, t.executions.c.workspace_id, t.executions.c.execute_after,
                   t.executions.c.session_id,
                   t.steps.c.module, t.steps.c.target, t.steps.c.type, t.steps.c.arguments,
                   t.steps.c.options, t.steps.c.cache_key, t.steps.c.defer_key, t.runs.c.requires,
                   t.runs.c.origin_session_id)
            .select_from(t.executions.join(t.steps, t.steps.c.id == t.executions.c.step_id)
                         .join(t.runs, t.runs.c.id == t.executions.c.run_id)
                         .outerjoin(t.results, t.results.c.execution_id == t.executions.c.id))
            .where(t.results.c.execution_id.is_(None))
            .order_by(t.executions.c.created_at)
        )
        orphans = []
        for row in self.db.execute(query).all():
            options = row.options or {}
            pending = Pending(
                id=row.id, step_id=row.step_id, run_id=row.run_id, module=row.module, target=row.target,
                type=row.type, workspace_id=row.workspace_id, execute_after=row.execute_after or 0.0,
                arguments=row.arguments, options=options,
                requires=merge_requires(row.requires, options.get("requires")),
                origin_session_id=row.origin_session_id, attempt=row.attempt, cause=row.cause,
                cache_key=row.cache_key, defer_key=row.defer_key if row.attempt == 1 else None)
            if row.session_id is not None:
                session = self.sessions.get(row.session_id)
                if session is not None:
                    session.running.add(row.id)
                    self.active[row.id] = session.id
                    self.assigned[row.id] = pending
                else:
                    orphans.append(pending)
                continue
            self._enqueue(pending)
        for pending in orphans:  # assigned to a worker that is gone for good
            self._conclude(pending, "abandoned")

    # ----------------------------------------------------------------- lookups

    def workspace_id(self, name: str, create: bool = False) -> int:
        ws_id = self.workspace_ids.get(name)
        if ws_id is None:
            row = self.db.execute(select(t.workspaces.c.id, t.workspaces.c.base_id)
                                  .where(t.workspaces.c.name == name)).first()
            if row is None:
                if not create:
                    raise NotFound(f"no workspace named {name!r}")
                name = self._new_workspace_name(name)  # workers create theirs on demand
                ws_id = self.db.execute(t.workspaces.insert().values(
                    name=name, base_id=None, created_at=time.time())).inserted_primary_key[0]
                self.workspace_bases[ws_id] = None
            else:
                ws_id = row.id
                self.workspace_bases[ws_id] = row.base_id
            self.workspace_ids[name] = ws_id
        return ws_id

    def workspace_lineage(self, workspace_id: int) -> list[int]:
        """The workspace and its bases, nearest first (whose cache and memo it may use)."""
        lineage = [workspace_id]
        current = self.workspace_bases.get(workspace_id)
        while current is not None and current not in lineage:
            lineage.append(current)
            current = self.workspace_bases.get(current)
        return lineage

    def _run_info(self, run_id: str) -> RunInfo:
        info = self.runs.get(run_id)
        if info is None:
            self.w.flush()
            row = self.db.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            top = self.db.execute(select(t.steps.c.number).where(t.steps.c.run_id == run_id)
                                  .order_by(t.steps.c.number.desc()).limit(1)).scalar() or 0
            if len(self.runs) > 20000:
                self.runs.clear()
            info = self.runs[run_id] = RunInfo(row, top + 1)
        return info

    def result_of(self, execution_id: str) -> tuple[str, Any, Any, str | None] | None:
        """(kind, value, error, successor) of an execution, or None while it has no result."""
        cached = self.results.get(execution_id)
        if cached is not None:
            return cached
        if execution_id in self.active or execution_id in self.pending_by_id:
            return None
        row = self.db.execute(select(t.results.c.kind, t.results.c.value, t.results.c.error,
                                     t.results.c.successor_id)
                              .where(t.results.c.execution_id == execution_id)).first()
        if row is None:
            return None
        return self._cache_result(execution_id, (row.kind, row.value, row.error, row.successor_id))

    def _cache_result(self, execution_id: str, result: tuple) -> tuple:
        if len(self.results) > 100000:
            self.results.clear()
        self.results[execution_id] = result
        return result

    def _execution_exists(self, execution_id: str) -> bool:
        if execution_id in self.active or execution_id in self.pending_by_id or execution_id in self.results:
            return True
        self.w.flush()
        return self.db.execute(select(t.executions.c.id).where(t.executions.c.id == execution_id)).first() \
            is not None

    def follow(self, execution_id: str) -> tuple[str, str, tuple | None]:
        """Follow successor links: ("final", id, result) or ("pending", id, None)."""
        current = execution_id
        for _ in range(100000):
            result = self.result_of(current)
            if result is None:
                return "pending", current, None
            if result[3] is None:
                return "final", current, result
            current = result[3]
        raise RuntimeError(f"successor chain of {execution_id} does not end")

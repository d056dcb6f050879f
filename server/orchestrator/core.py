"""The orchestrator thread.

Every state change goes through one thread that owns all database writes. Commands posted by
the I/O loop (submits, results, waits, worker changes) are drained in batches: each batch runs
in one transaction, then the replies and live events it produced are handed back to the loop.
Nothing is acknowledged before its transaction has committed. The thread sleeps on its queue,
or until the earliest timer (a delayed execution, a wait timeout, a worker's reconnect grace).
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

from sqlalchemy import Engine, and_, select, update

from ..errors import BadRequest, NotFound
from ..ids import random_id, run_of
from ..store import schema as t
from .binding import bind_arguments
from .matching import merge_requires, worker_matches
from .model import FINAL_KINDS, Peer, Pending, Session, Waiter
from .writes import WriteBuffer

log = logging.getLogger("coflux.orchestrator")

Deliver = Callable[[list[tuple[Peer, dict]], list[tuple[str, dict]]], None]


class _RunInfo:
    __slots__ = ("id", "workspace_id", "requires", "memo", "origin_session_id", "next_number", "module",
                 "target")

    def __init__(self, row: Any, next_number: int) -> None:
        self.id = row.id
        self.workspace_id = row.workspace_id
        self.requires = row.requires or {}
        self.memo = bool(row.memo)
        self.origin_session_id = row.origin_session_id
        self.module = row.module
        self.target = row.target
        self.next_number = next_number


class Orchestrator:
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
            "submit": self._on_submit,
            "started": self._on_started,
            "result": self._on_result,
            "wait": self._on_wait,
            "call": self._on_call,
            "depend": self._on_depend,
            "release": self._on_release,
            "group": self._on_group,
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
        self.waiters: dict[str, list[Waiter]] = {}
        self.peer_waiters: dict[Any, set[Waiter]] = {}
        self.timers: list[tuple[float, int, str, Any]] = []
        self.runs: dict[str, _RunInfo] = {}
        self.results: dict[str, tuple[str, Any, Any, str | None]] = {}
        self.workspace_ids: dict[str, int] = {}
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
        self._out, self._events = [], []
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
        try:
            self._transaction(batch)
        except Exception:
            log.exception("batch of %d commands failed; retrying them one by one", len(batch))
            self._recover()
            for command in batch:
                try:
                    self._transaction([command])
                except Exception as exc:  # a command that fails on its own: report it, keep going
                    log.exception("command %r failed", command[0])
                    self._recover()
                    self._fail_command(command, exc)
        out, events = self._out, self._events
        self._out, self._events = [], []
        if out or events:
            self._deliver(out, events)

    def _transaction(self, batch: list) -> None:
        self._out, self._events = [], []
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
        except (KeyError, TypeError, ValueError) as exc:
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
                pending = self.delayed.pop(payload, None)
                if pending is not None:
                    self._make_ready(pending)
            elif kind == "wait":
                if not payload.done:
                    payload.done = True
                    self._reply(payload.peer, payload.request_id, {"status": "pending"})
            elif kind == "session":
                session = self.sessions.get(payload)
                if session is not None and session.peer is None and session.expires_at is not None \
                        and session.expires_at <= now:
                    self._expire_session(session)

    # ----------------------------------------------------------------- loading

    def _load(self) -> None:
        now = time.time()
        for name, ws_id in self.db.execute(select(t.workspaces.c.name, t.workspaces.c.id)):
            self.workspace_ids[name] = ws_id
        for row in self.db.execute(select(t.sessions).where(t.sessions.c.ended_at.is_(None))):
            session = self._session_from_row(row)
            session.expires_at = now + self.reconnect_grace
            self.sessions[session.id] = session
            self._add_timer(session.expires_at, "session", session.id)
        query = (
            select(t.executions.c.id, t.executions.c.step_id, t.executions.c.run_id,
                   t.executions.c.workspace_id, t.executions.c.execute_after, t.executions.c.session_id,
                   t.steps.c.module, t.steps.c.target, t.steps.c.type, t.steps.c.arguments,
                   t.steps.c.options, t.runs.c.requires, t.runs.c.origin_session_id)
            .select_from(t.executions.join(t.steps, t.steps.c.id == t.executions.c.step_id)
                         .join(t.runs, t.runs.c.id == t.executions.c.run_id)
                         .outerjoin(t.results, t.results.c.execution_id == t.executions.c.id))
            .where(t.results.c.execution_id.is_(None))
            .order_by(t.executions.c.created_at)
        )
        for row in self.db.execute(query).all():
            options = row.options or {}
            pending = Pending(
                id=row.id, step_id=row.step_id, run_id=row.run_id, module=row.module, target=row.target,
                type=row.type, workspace_id=row.workspace_id, execute_after=row.execute_after or 0.0,
                arguments=row.arguments, requires=merge_requires(row.requires, options.get("requires")),
                timeout=options.get("timeout") or 0, origin_session_id=row.origin_session_id)
            if row.session_id is not None:
                session = self.sessions.get(row.session_id)
                if session is not None:
                    session.running.add(row.id)
                    self.active[row.id] = session.id
                    self.assigned[row.id] = pending
                else:
                    self._record_result(row.id, "abandoned")
                continue
            self._enqueue(pending)

    @staticmethod
    def _session_from_row(row: Any) -> Session:
        return Session(
            id=row.id, workspace_id=row.workspace_id, kind=row.kind, name=row.name,
            targets={(m, n): ty for m, n, ty in row.targets}, concurrency=row.concurrency,
            provides=row.provides, accepts=row.accepts)

    # ----------------------------------------------------------------- lookups

    def workspace_id(self, name: str, create: bool = False) -> int:
        ws_id = self.workspace_ids.get(name)
        if ws_id is None:
            ws_id = self.db.execute(select(t.workspaces.c.id).where(t.workspaces.c.name == name)).scalar()
            if ws_id is None:
                if not create:
                    raise NotFound(f"no workspace named {name!r}")
                ws_id = self.db.execute(t.workspaces.insert().values(
                    name=name, base_id=None, created_at=time.time())).inserted_primary_key[0]
            self.workspace_ids[name] = ws_id
        return ws_id

    def _run_info(self, run_id: str) -> _RunInfo:
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
            info = self.runs[run_id] = _RunInfo(row, top + 1)
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
            if result[0] in FINAL_KINDS and result[3] is None:
                return "final", current, result
            if result[3] is None:
                return "final", current, result
            current = result[3]
        raise RuntimeError(f"successor chain of {execution_id} does not end")

    # ----------------------------------------------------------------- workers

    def _parse_targets(self, targets: dict) -> tuple[dict[tuple[str, str], str], list[dict]]:
        declared: dict[tuple[str, str], str] = {}
        manifest: list[dict] = []
        if not isinstance(targets, dict):
            raise BadRequest("targets must be an object of module -> {name: definition}")
        for module, defs in targets.items():
            for name, definition in defs.items():
                kind = definition.get("type")
                if kind not in ("workflow", "task"):
                    raise BadRequest(f"target {module}/{name} has invalid type {kind!r}")
                declared[(module, name)] = kind
                if kind == "workflow":
                    manifest.append({"module": module, "name": name,
                                     "parameters": definition.get("parameters", []),
                                     "options": definition.get("options", {}),
                                     "instruction": definition.get("instruction")})
        return declared, manifest

    def _register_workflows(self, workspace_id: int, manifest: list[dict]) -> None:
        now = time.time()
        for wf in manifest:
            existing = self.db.execute(select(t.workflows.c.id).where(and_(
                t.workflows.c.workspace_id == workspace_id, t.workflows.c.module == wf["module"],
                t.workflows.c.name == wf["name"]))).scalar()
            values = dict(parameters=wf["parameters"], options=wf["options"], instruction=wf["instruction"],
                          updated_at=now)
            if existing is None:
                self.db.execute(t.workflows.insert().values(
                    workspace_id=workspace_id, module=wf["module"], name=wf["name"], **values))
            else:
                self.db.execute(update(t.workflows).where(t.workflows.c.id == existing).values(**values))

    def _on_register(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        workspace_id = self.workspace_id(params.get("workspace") or "default", create=True)
        declared, manifest = self._parse_targets(params.get("targets", {}))
        concurrency = int(params.get("concurrency") or 0)
        prefetch = max(0, min(int(params.get("prefetch") or 0), 1000))
        provides = _tags(params.get("provides"))
        accepts = _tags(params.get("accepts"))
        # Results buffered by the worker while it was away come first, so reconciliation below
        # does not mistake a finished execution for an abandoned one.
        for buffered in params.get("results", []):
            self._apply_result(buffered)
        session_id = params.get("session")
        session = self.sessions.get(session_id) if session_id else None
        if session is not None and session.workspace_id == workspace_id:
            if session.peer is not None and session.peer is not peer:
                self.peer_sessions.pop(session.peer, None)
                self._send(session.peer, {"op": "replaced"})
            session.peer, session.expires_at = peer, None
            session.targets, session.concurrency, session.prefetch = declared, concurrency, prefetch
            session.provides, session.accepts = provides, accepts
            reported = set(params.get("running", []))
            for execution_id in list(session.running):
                if execution_id not in reported:
                    self._abandon(execution_id)
            for execution_id in reported - session.running:
                self._send(peer, {"op": "abort", "execution": execution_id})
            self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(
                targets=[[m, n, ty] for (m, n), ty in declared.items()], concurrency=concurrency,
                provides=provides, accepts=accepts))
        else:
            session = Session(
                id=random_id("S", 12), workspace_id=workspace_id, kind=params.get("kind", "headless"),
                name=str(params.get("name") or "worker")[:200], targets=declared, concurrency=concurrency,
                provides=provides, accepts=accepts, peer=peer, prefetch=prefetch)
            self.db.execute(t.sessions.insert().values(
                id=session.id, workspace_id=workspace_id, kind=session.kind, name=session.name,
                provides=provides, accepts=accepts, concurrency=concurrency,
                targets=[[m, n, ty] for (m, n), ty in declared.items()], created_at=time.time()))
            self.sessions[session.id] = session
        self.peer_sessions[peer] = session.id
        self._register_workflows(workspace_id, manifest)
        self._needs_schedule = True
        self._reply(peer, request_id, {"session": session.id})
        self._publish("workers", {"type": "session", "session": session.id, "connected": True})

    def _on_declare(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        session = self._peer_session(peer)
        declared, manifest = self._parse_targets(params.get("targets", {}))
        session.targets = declared
        self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(
            targets=[[m, n, ty] for (m, n), ty in declared.items()]))
        self._register_workflows(session.workspace_id, manifest)
        self._needs_schedule = True
        self._reply(peer, request_id, {"ok": True})

    def _peer_session(self, peer: Peer | None) -> Session:
        session_id = self.peer_sessions.get(peer)
        if session_id is None or session_id not in self.sessions:
            raise BadRequest("this connection has not registered as a worker")
        return self.sessions[session_id]

    def _on_closed(self, peer: Peer) -> None:
        for waiter in self.peer_waiters.pop(peer, set()):
            waiter.done = True
        session_id = self.peer_sessions.pop(peer, None)
        session = self.sessions.get(session_id) if session_id else None
        if session is not None and session.peer is peer:
            session.peer = None
            session.expires_at = time.time() + self.reconnect_grace
            self._add_timer(session.expires_at, "session", session.id)
            self._publish("workers", {"type": "session", "session": session.id, "connected": False})

    def _expire_session(self, session: Session) -> None:
        for execution_id in list(session.running):
            self._abandon(execution_id)
        self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(ended_at=time.time()))
        del self.sessions[session.id]
        self._publish("workers", {"type": "session", "session": session.id, "ended": True})

    def _abandon(self, execution_id: str) -> None:
        session_id = self.active.pop(execution_id, None)
        self.assigned.pop(execution_id, None)
        if session_id in self.sessions:
            self.sessions[session_id].running.discard(execution_id)
        if self.result_of(execution_id) is None:
            self._record_result(execution_id, "abandoned")

    # ----------------------------------------------------------------- submitting

    def _on_submit(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        parent_id = params.get("parent")
        module, target = str(params["module"]), str(params["target"])
        kind = params.get("type", "task")
        if kind not in ("workflow", "task"):
            raise BadRequest(f"type must be 'workflow' or 'task', not {kind!r}")
        args = params.get("args", [])
        if not isinstance(args, list):
            raise BadRequest("args must be a list of values")
        options = params.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("options must be an object")
        if parent_id is None:
            result = self._submit_run(peer, params, module, target, args, options)
        else:
            result = self._submit_child(peer, params, parent_id, module, target, kind, args, options)
        self._reply(peer, request_id, result)

    def _on_call(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Submit a child and wait for its outcome in one round trip (what `target(...)` does)."""
        submitted = self._submit_child(peer, params, params["parent"], str(params["module"]),
                                       str(params["target"]), params.get("type", "task"), params.get("args", []),
                                       params.get("options") or {}, watch=False)
        self._wait(peer, request_id, submitted["execution"], params["parent"], None,
                   extra={"execution": submitted["execution"]})

    def _submit_run(self, peer: Peer | None, params: dict, module: str, target: str, args: list,
                    options: dict) -> dict:
        workspace_id = self.workspace_id(params.get("workspace") or "default")
        workflow = self.db.execute(select(t.workflows).where(and_(
            t.workflows.c.workspace_id == workspace_id, t.workflows.c.module == module,
            t.workflows.c.name == target))).first()
        if workflow is None:
            known = self.db.execute(select(t.workflows.c.module, t.workflows.c.name).where(
                t.workflows.c.workspace_id == workspace_id).order_by(t.workflows.c.module,
                                                                     t.workflows.c.name)).all()
            listing = ", ".join(f"{m}/{n}" for m, n in known[:30]) or "none (start a worker for the module)"
            raise NotFound(f"unknown workflow {module}/{target}; registered workflows: {listing}")
        kwargs = params.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise BadRequest("kwargs must be an object")
        bound = bind_arguments(target, workflow.parameters, args, kwargs)
        merged = {**(workflow.options or {}), **options}
        key = params.get("idempotency_key")
        if key:
            self.w.flush()
            existing = self.db.execute(select(t.runs.c.id).where(and_(
                t.runs.c.workspace_id == workspace_id, t.runs.c.idempotency_key == key))).scalar()
            if existing:
                return {"run": existing, "execution": f"{existing}:1:1", "module": module, "target": target,
                        "existing": True}
        origin = self.peer_sessions.get(peer) if peer is not None else None
        run_id, execution_id = self.create_run(workspace_id, module, target, bound, merged,
                                               parent_execution_id=None, idempotency_key=key,
                                               origin_session_id=origin)
        return {"run": run_id, "execution": execution_id, "module": module, "target": target}

    def _submit_child(self, peer: Peer | None, params: dict, parent_id: str, module: str, target: str,
                      kind: str, args: list, options: dict, *, watch: bool = True) -> dict:
        if parent_id not in self.active:
            raise BadRequest(f"execution {parent_id} is not running; it cannot submit work")
        key = params.get("key")
        if key and params.get("resent"):
            self.w.flush()
            existing = self.db.execute(select(t.steps.c.id).where(t.steps.c.request_key == key)).scalar()
            if existing:
                return {"execution": f"{existing}:1", "module": module, "target": target}
        run = self._run_info(run_of(parent_id))
        group_id = params.get("group")
        if kind == "workflow":
            execution_id = self._create_step(run, parent_id, module, target, "workflow", args, options,
                                             group_id=group_id, request_key=key, pend=False)
            child_run, child_execution = self.create_run(
                run.workspace_id, module, target, args, options, parent_execution_id=parent_id,
                idempotency_key=None, origin_session_id=run.origin_session_id)
            self._record_result(execution_id, "spawned", successor=child_execution)
        else:
            execution_id = self._create_step(run, parent_id, module, target, "task", args, options,
                                             group_id=group_id, request_key=key)
        if watch and peer is not None:
            self._watch(peer, parent_id, execution_id)
        return {"execution": execution_id, "module": module, "target": target}

    def _watch(self, peer: Peer, parent_id: str, execution_id: str) -> None:
        """Push the child's outcome to its parent when it resolves, so `.result()` is local."""
        waiter = Waiter(peer=peer, request_id=None, push=(parent_id, execution_id))
        status, tail, result = self.follow(execution_id)
        if status == "final":
            self._answer(waiter, self._wire_outcome(tail, result))
            return
        self.waiters.setdefault(tail, []).append(waiter)
        self.peer_waiters.setdefault(peer, set()).add(waiter)

    def create_run(self, workspace_id: int, module: str, target: str, args: list, options: dict, *,
                   parent_execution_id: str | None, idempotency_key: str | None,
                   origin_session_id: str | None) -> tuple[str, str]:
        now = time.time()
        run_id = random_id("R")
        while run_id in self.runs:
            run_id = random_id("R")
        requires = options.get("requires") or None
        row = dict(id=run_id, workspace_id=workspace_id, module=module, target=target,
                   parent_execution_id=parent_execution_id, idempotency_key=idempotency_key,
                   requires=requires, memo=bool(options.get("memo")), origin_session_id=origin_session_id,
                   created_at=now)
        self.w.insert(t.runs, row)
        info = self.runs[run_id] = _RunInfo(_Row(row), 1)
        execution_id = self._create_step(info, parent_execution_id, module, target, "workflow", args, options)
        self._publish("runs", {"type": "run", "run": run_id, "module": module, "target": target,
                               "workspace_id": workspace_id, "parent": parent_execution_id, "created_at": now})
        return run_id, execution_id

    def _create_step(self, run: _RunInfo, parent_id: str | None, module: str, target: str, kind: str,
                     args: list, options: dict, *, group_id: int | None = None,
                     request_key: str | None = None, pend: bool = True) -> str:
        now = time.time()
        number = run.next_number
        run.next_number += 1
        step_id = f"{run.id}:{number}"
        execution_id = f"{step_id}:1"
        delay = float(options.get("delay") or 0)
        execute_after = now + delay if delay > 0 else None
        self.w.insert(t.steps, dict(
            id=step_id, run_id=run.id, number=number, parent_execution_id=parent_id, module=module,
            target=target, type=kind, arguments=args, options=options, cache_key=None, memo_key=None,
            defer_key=None, request_key=request_key, created_at=now))
        self.w.insert(t.executions, dict(
            id=execution_id, step_id=step_id, run_id=run.id, attempt=1, workspace_id=run.workspace_id,
            created_at=now, execute_after=execute_after, session_id=None, assigned_at=None, started_at=None))
        if parent_id is not None:
            self.w.insert_ignore(t.children, dict(parent_id=parent_id, child_id=execution_id, group_id=group_id,
                                                  memo=False, created_at=now))
        self._publish(f"run:{run.id}", {
            "type": "step", "step": step_id, "number": number, "execution": execution_id,
            "parent": parent_id, "module": module, "target": target, "kind": kind, "created_at": now,
            "execute_after": execute_after})
        if pend:
            self._enqueue(Pending(
                id=execution_id, step_id=step_id, run_id=run.id, module=module, target=target, type=kind,
                workspace_id=run.workspace_id, execute_after=execute_after or 0.0, arguments=args,
                requires=merge_requires(run.requires, options.get("requires")),
                timeout=float(options.get("timeout") or 0), origin_session_id=run.origin_session_id))
        return execution_id

    def _enqueue(self, pending: Pending) -> None:
        self.pending_by_id[pending.id] = pending
        if pending.execute_after and pending.execute_after > time.time():
            self.delayed[pending.id] = pending
            self._add_timer(pending.execute_after, "due", pending.id)
        else:
            self._make_ready(pending)

    def _make_ready(self, pending: Pending) -> None:
        self.ready.setdefault((pending.module, pending.target), deque()).append(pending)
        self._needs_schedule = True

    # ----------------------------------------------------------------- scheduling

    def _schedule(self, now: float) -> None:
        self._needs_schedule = False
        by_target: dict[tuple[str, str], list[Session]] = {}
        for session in self.sessions.values():
            if session.has_capacity():
                for key in session.targets:
                    by_target.setdefault(key, []).append(session)
        if not by_target:
            return
        for key, waiting in self.ready.items():
            if not waiting:
                continue
            candidates = by_target.get(key)
            if not candidates:
                continue
            skipped: list[Pending] = []
            while waiting and candidates:
                pending = waiting.popleft()
                session = self._choose(pending, candidates)
                if session is None:
                    skipped.append(pending)
                    continue
                self._assign(pending, session, now)
                if not session.has_capacity():
                    for sessions in by_target.values():
                        if session in sessions:
                            sessions.remove(session)
            waiting.extendleft(reversed(skipped))

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
            idle = session.concurrency <= 0 or len(session.running) < session.concurrency
            key = (not idle, session.id != pending.origin_session_id, len(session.running))
            if best_key is None or key < best_key:
                best, best_key = session, key
        return best

    def _assign(self, pending: Pending, session: Session, now: float) -> None:
        self.pending_by_id.pop(pending.id, None)
        session.running.add(pending.id)
        self.active[pending.id] = session.id
        self.assigned[pending.id] = pending
        self.w.update_execution(pending.id, session_id=session.id, assigned_at=now)
        self._send(session.peer, {
            "op": "execute", "execution": pending.id, "run": pending.run_id, "module": pending.module,
            "target": pending.target, "type": pending.type, "args": pending.arguments,
            "timeout": pending.timeout})
        self._publish(f"run:{pending.run_id}", {"type": "assigned", "execution": pending.id,
                                                "session": session.id, "at": now})

    # ----------------------------------------------------------------- results

    def _on_started(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        execution_id = params["execution"]
        if execution_id in self.active:
            now = time.time()
            self.w.update_execution(execution_id, started_at=now)
            self._publish(f"run:{run_of(execution_id)}", {"type": "started", "execution": execution_id, "at": now})

    def _on_result(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        self._apply_result(params)
        self._reply(peer, request_id, {"ok": True})

    def _apply_result(self, params: dict) -> None:
        execution_id = params["execution"]
        kind = params["kind"]
        if kind not in ("value", "error", "crashed"):
            raise BadRequest(f"result kind must be 'value', 'error' or 'crashed', not {kind!r}")
        if self.result_of(execution_id) is not None:
            return  # a re-sent result: already recorded
        if execution_id not in self.active:
            if not self._execution_exists(execution_id):
                raise NotFound(f"no execution {execution_id!r}")
        session_id = self.active.pop(execution_id, None)
        self.assigned.pop(execution_id, None)
        if session_id in self.sessions:
            session = self.sessions[session_id]
            session.running.discard(execution_id)
            session.prefetch_paused = False
            self._needs_schedule = True
        started_at = params.get("started_at")
        if isinstance(started_at, int | float):
            self.w.update_execution(execution_id, started_at=float(started_at))
        if kind == "value":
            self._record_result(execution_id, "value", value=params.get("value"))
        elif kind == "crashed":
            self._record_result(execution_id, "crashed")
        else:
            error = params.get("error") or {}
            if not isinstance(error, dict):
                raise BadRequest("error must be an object")
            self._record_result(execution_id, "error", error={
                "type": str(error.get("type", "builtins.Exception"))[:500],
                "message": str(error.get("message", ""))[:100000],
                "frames": error.get("frames") or [],
                "retryable": error.get("retryable")})

    def _record_result(self, execution_id: str, kind: str, *, value: Any = None, error: Any = None,
                       successor: str | None = None) -> None:
        now = time.time()
        self.pending_by_id.pop(execution_id, None)
        self.w.insert(t.results, dict(execution_id=execution_id, kind=kind, value=value, error=error,
                                      successor_id=successor, created_at=now))
        self._cache_result(execution_id, (kind, value, error, successor))
        event = {"type": "result", "execution": execution_id, "kind": kind, "at": now, "successor": successor}
        if kind == "error":
            event["error"] = {"type": error["type"], "message": error["message"][:1000]}
        self._publish(f"run:{run_of(execution_id)}", event)
        if execution_id.split(":")[1] == "1":  # the run's own (first) step
            status, _, final = self.follow(execution_id)
            if status == "final":
                self._publish("runs", {"type": "run_result", "run": run_of(execution_id),
                                       "kind": final[0], "at": now})
        self._resolve_waiters(execution_id)

    def _on_release(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """A worker hands back executions it queued but could not start soon (all its slots
        stayed busy), so another worker can take them."""
        session = self._peer_session(peer)
        released = []
        for execution_id in params.get("executions", []):
            pending = self.assigned.get(execution_id)
            if self.active.get(execution_id) != session.id or pending is None:
                continue
            del self.active[execution_id], self.assigned[execution_id]
            session.running.discard(execution_id)
            self.w.update_execution(execution_id, session_id=None, assigned_at=None)
            self.pending_by_id[execution_id] = pending
            self.ready.setdefault((pending.module, pending.target), deque()).appendleft(pending)
            released.append(execution_id)
        if released:
            session.prefetch_paused = True  # until one of its slots frees up
            self._needs_schedule = True
        self._reply(peer, request_id, {"released": released})

    def _on_depend(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """A parent read a child's pushed outcome: record the dependency edge it implies."""
        self.w.insert_ignore(t.dependencies, dict(execution_id=str(params["from"]),
                                                  dependency_id=str(params["execution"]), created_at=time.time()))

    def _on_group(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        self.w.insert_ignore(t.groups, dict(execution_id=str(params["execution"]), group_id=int(params["group"]),
                                            name=None if params.get("name") is None else str(params["name"])[:300]))
        self._reply(peer, request_id, {"ok": True})

    # ----------------------------------------------------------------- waiting

    def _on_wait(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        execution_id = str(params["execution"])
        if not self._execution_exists(execution_id):
            raise NotFound(f"no execution {execution_id!r}")
        self._wait(peer, request_id, execution_id, params.get("from"), params.get("timeout"))

    def _wait(self, peer: Peer | None, request_id: Any, execution_id: str, from_id: str | None,
              timeout: float | None, extra: dict | None = None) -> None:
        if from_id:
            self.w.insert_ignore(t.dependencies, dict(execution_id=from_id, dependency_id=execution_id,
                                                      created_at=time.time()))
        status, tail, result = self.follow(execution_id)
        if status == "final":
            self._reply(peer, request_id, {**self._wire_outcome(tail, result), **(extra or {})})
            return
        if timeout is not None and float(timeout) <= 0:
            self._reply(peer, request_id, {"status": "pending", **(extra or {})})
            return
        waiter = Waiter(peer=peer, request_id=request_id, extra=extra)
        if timeout is not None:
            waiter.expires_at = time.time() + float(timeout)
            self._add_timer(waiter.expires_at, "wait", waiter)
        self.waiters.setdefault(tail, []).append(waiter)
        self.peer_waiters.setdefault(peer, set()).add(waiter)

    def _resolve_waiters(self, execution_id: str) -> None:
        waiters = self.waiters.pop(execution_id, None)
        if not waiters:
            return
        status, tail, result = self.follow(execution_id)
        if status == "pending":
            self.waiters.setdefault(tail, []).extend(waiters)
            return
        outcome = self._wire_outcome(tail, result)
        for waiter in waiters:
            if not waiter.done:
                waiter.done = True
                self._answer(waiter, outcome)
                peer_set = self.peer_waiters.get(waiter.peer)
                if peer_set is not None:
                    peer_set.discard(waiter)

    def _answer(self, waiter: Waiter, outcome: dict) -> None:
        if waiter.push is not None:
            parent, child = waiter.push
            if parent in self.active:  # the parent may read it with no round trip
                self._send(waiter.peer, {"op": "resolved", "parent": parent, "child": child, **outcome})
        else:
            self._reply(waiter.peer, waiter.request_id, {**outcome, **waiter.extra} if waiter.extra else outcome)

    @staticmethod
    def _wire_outcome(execution_id: str, result: tuple) -> dict:
        kind, value, error, _ = result
        outcome: dict[str, Any] = {"status": kind, "execution": execution_id}
        if kind == "value":
            outcome["value"] = value
        elif kind == "error":
            outcome["error"] = error
        return outcome


class _Row:
    """Attribute access over a dict, to build a _RunInfo from a row we just inserted."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


def _tags(value: Any) -> dict[str, list[str]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("tags must be an object of key -> [values]")
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in value.items()}

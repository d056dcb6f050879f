"""Workers: registration, re-declared targets, disconnects, reconnects and expiry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from typing import Any

from sqlalchemy import and_, select, update

from coflux.protocol import WORKERS_TOPIC, SessionEvent

from ..errors import BadRequest
from ..ids import random_id
from ..store import schema as t
from . import limits
from .component import Component
from .model import Peer, Session


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _tags(value: Any) -> dict[str, list[str]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("tags must be an object of key -> [values]")
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in value.items()}


def _parse_targets(targets: Any) -> tuple[dict[tuple[str, str], str], list[dict]]:
    declared: dict[tuple[str, str], str] = {}
    manifest: list[dict] = []
    if not isinstance(targets, dict):
        raise BadRequest("targets must be an object of module -> {name: definition}")
    for module, defs in targets.items():
        if not isinstance(defs, dict):
            raise BadRequest(f"targets of module {module!r} must be an object of name -> definition")
        for name, definition in defs.items():
            kind = definition.get("type") if isinstance(definition, dict) else None
            if kind not in ("workflow", "task"):
                raise BadRequest(f"target {module}/{name} has invalid type {kind!r}")
            declared[(module, name)] = kind
            options = limits.options(definition.get("options") or {})
            if kind == "workflow":
                manifest.append({"module": module, "name": name,
                                 "parameters": definition.get("parameters", []),
                                 "options": options,
                                 "instruction": definition.get("instruction")})
    return declared, manifest


def signatures_of(targets: Any) -> dict[tuple[str, str], list[str]]:
    """(module, name) -> parameter names, from declared targets already checked by _parse_targets."""
    found: dict[tuple[str, str], list[str]] = {}
    for module, defs in (targets or {}).items():
        for name, definition in defs.items():
            params = definition.get("parameters") if isinstance(definition, dict) else None
            if isinstance(params, list):
                found[(module, name)] = [str(p.get("name", "")) if isinstance(p, dict) else "" for p in params][:100]
    return found


def code_hashes_of(targets: Any) -> dict[tuple[str, str], str]:
    """(module, name) -> the code hash a worker declared (coflux/codehash.py: sha256 hex)."""
    found: dict[tuple[str, str], str] = {}
    for module, defs in (targets or {}).items():
        for name, definition in defs.items():
            code = definition.get("code_hash") if isinstance(definition, dict) else None
            if isinstance(code, str) and 0 < len(code) <= 64:
                found[(module, name)] = code
    return found


def assignments_of(params: dict) -> dict[str, Any]:
    """The hand-out numbers a worker sends with the executions it hands back (id -> number)."""
    assignments = params.get("assignments") or {}
    if not isinstance(assignments, dict):
        raise BadRequest("assignments must be an object of execution id -> hand-out number")
    return assignments


def _launch_principal(peer: Any) -> Any:
    """The principal of a worker that connected with a launch credential (server/pools), else None."""
    principal = getattr(peer, "launch_principal", None)
    return principal if principal is not None and principal.kind == "launch" else None


class Workers(Component):
    def session_from_row(self, row: Any) -> Session:
        return Session(
            id=row.id, workspace_id=row.workspace_id, kind=row.kind, name=row.name,
            targets={(m, n): ty for m, n, ty in row.targets}, concurrency=row.concurrency,
            provides=row.provides, accepts=row.accepts)

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

    def on_register(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        # Everything is checked before anything changes.
        workspace = limits.text(params.get("workspace"), "workspace", maximum=100000) or "default"
        declared, manifest = _parse_targets(params.get("targets", {}))
        signatures = signatures_of(params.get("targets"))
        concurrency = limits.integer(params.get("concurrency") or 0, "concurrency", high=100000)
        prefetch = min(limits.integer(params.get("prefetch") or 0, "prefetch", high=100000), 1000)
        provides = _tags(params.get("provides"))
        accepts = _tags(params.get("accepts"))
        accepts_code = params.get("accepts_code") is True
        running = params.get("running") or []
        if not isinstance(running, list) or not all(isinstance(e, str) for e in running):
            raise BadRequest("running must be a list of execution ids")
        session_id = limits.text(params.get("session"), "session", maximum=40)
        secret = limits.text(params.get("secret"), "secret", maximum=200)
        launched = _launch_principal(peer)
        if launched is not None and not launched.may_use(workspace):
            raise BadRequest(f"a worker launched for pool {launched.pool} works in its pool's workspace only")
        workspace_id = self.o.workspace_id(workspace, create=True)
        if workspace_id in self.ws.archived_workspaces:
            raise BadRequest(f"workspace {workspace!r} is archived: workers cannot join it")
        if launched is not None:
            self.o.pools.check_credential(launched)
        self.ws.signatures.update(signatures)
        session = self.ws.sessions.get(session_id) if session_id else None
        if session is not None and not self._owns_session(session.id, secret):
            # Only the connection the server gave the secret to may resume a session: anyone
            # else holding the token gets a session of its own and takes nothing over.
            session = None
        targets_column = [[m, n, ty] for (m, n), ty in declared.items()]
        reply: dict[str, Any]
        if session is not None and session.workspace_id == workspace_id:
            if session.peer is not None and session.peer is not peer:
                self.ws.peer_sessions.pop(session.peer, None)
                self.o.send(session.peer, {"op": "replaced"})
            session.peer, session.expires_at = peer, None
            session.targets, session.concurrency, session.prefetch = declared, concurrency, prefetch
            session.provides, session.accepts, session.accepts_code = provides, accepts, accepts_code
            session.kernel_id = params.get("kernel_id") or session.kernel_id
            self._reconcile(session, set(running))
            self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(
                targets=targets_column, concurrency=concurrency, provides=provides, accepts=accepts))
            reply = {"session": session.id}
        else:
            self._detach_previous(peer)
            secret = secrets.token_urlsafe(24)
            session = Session(
                id=random_id("S", 12), workspace_id=workspace_id, kind=str(params.get("kind", "headless"))[:20],
                name=str(params.get("name") or "worker")[:200], targets=declared, concurrency=concurrency,
                provides=provides, accepts=accepts, peer=peer, prefetch=prefetch, accepts_code=accepts_code,
                kernel_id=str(params["kernel_id"])[:200] if params.get("kernel_id") else None)
            self.db.execute(t.sessions.insert().values(
                id=session.id, workspace_id=workspace_id, kind=session.kind, name=session.name,
                provides=provides, accepts=accepts, concurrency=concurrency, targets=targets_column,
                created_at=time.time(), secret_hash=_secret_hash(secret)))
            self.ws.sessions[session.id] = session
            self.ws.session_secrets[session.id] = _secret_hash(secret)
            reply = {"session": session.id, "secret": secret}
            # What it says it holds belongs to a session that has ended (it came back too late):
            # that work was given to others, so it must not start or finish here.
            for execution_id in running[:100000]:
                self.o.send(peer, {"op": "abort", "execution": execution_id, "reason": "session ended"})
        # How long it may be away before its work is given to others: a worker starts queued work
        # only while it has heard from us more recently than half of that (a lease).
        reply["grace"] = self.o.reconnect_grace
        self.ws.peer_sessions[peer] = session.id
        if launched is not None:
            self.o.pools.attach_session(session, launched)
        session.code_hashes, session.declared_at = code_hashes_of(params.get("targets")), time.time()
        session.draining = bool(params.get("draining"))
        session.workspace_paused = self.ws.paused_workspaces.get(workspace_id)
        try:
            self.o.worker_state.apply_slots(session, params)
        except BadRequest:
            pass  # slot counts are a hint: a bad one must not undo the registration
        self._register_workflows(workspace_id, manifest)
        self.o.needs_schedule = True
        self.o.reply(peer, request_id, reply)
        self.o.publish(WORKERS_TOPIC, SessionEvent(type="session", session=session.id, connected=True))

    def _detach_previous(self, peer: Peer | None) -> None:
        """This connection registered before as another session: that one is now disconnected
        (its reconnect grace starts), or it would look connected forever."""
        previous = self.ws.sessions.get(self.ws.peer_sessions.get(peer) or "")
        if previous is not None and previous.peer is peer:
            previous.peer = None
            previous.expires_at = time.time() + self.o.reconnect_grace
            self.o.add_timer(previous.expires_at, "session", previous.id)

    def _owns_session(self, session_id: str, secret: str | None) -> bool:
        expected = self.ws.session_secrets.get(session_id)
        # A session from before secrets existed (v1 database) can be resumed once more without one.
        return expected is None or (secret is not None and hmac.compare_digest(_secret_hash(secret), expected))

    def _reconcile(self, session: Session, reported: set[str]) -> None:
        """A worker resumed its session and listed what it holds (running, queued, or with a
        result not yet acknowledged). What the server assigned to it but it does not hold never
        reached it (the `execute` push was lost with the old connection or the old server):
        unless it said it started it, it is queued again, not abandoned. What it holds but the
        server did not give it (finished or cancelled meanwhile) is aborted."""
        for execution_id in list(session.running):
            if execution_id not in reported:
                self._requeue_or_abandon(execution_id)
        for execution_id in reported - session.running:
            self.o.send(session.peer, {"op": "abort", "execution": execution_id})

    def _requeue_or_abandon(self, execution_id: str) -> None:
        """A worker no longer holds this execution: if it never said it started (the `started`
        notification), the work never began and is queued again; otherwise it may have run,
        and it is abandoned (retries apply)."""
        pending = self.ws.assigned.get(execution_id)
        if pending is not None and getattr(pending, "started_at", None) is None and self._requeue(execution_id):
            return
        self._abandon(execution_id)

    def is_stale(self, execution_id: str, assignment: Any) -> bool:
        """Whether a worker's `release`, `started` or `result` is about an older hand-out of this
        execution than its latest (it crossed a new assignment: a `release` the worker queued while
        the server was down arrives after the restarted server gave the execution out again), so
        that it must change nothing. A message without a number (from a worker that predates
        them) is taken to be about the latest hand-out, as it always was."""
        if assignment is None:
            return False
        pending = self.ws.assigned.get(execution_id) or self.ws.pending_by_id.get(execution_id)
        return pending is not None and (type(assignment) is not int or assignment != pending.assignment)

    def take_back(self, session: Session, execution_id: str, assignment: Any) -> bool:
        """Queue again an execution its worker hands back unstarted (`release`, `drain`), unless
        the hand-back is about an older hand-out or the execution has started since: the
        worker's latest copy then runs or has run, and queueing it again would run it twice."""
        pending = self.ws.assigned.get(execution_id)
        if pending is None or self.ws.active.get(execution_id) != session.id:
            return False
        if self.is_stale(execution_id, assignment) or pending.started_at is not None:
            return False
        return self._requeue(execution_id)

    def _requeue(self, execution_id: str) -> bool:
        """Put an execution that was assigned but never started back at the head of its queue."""
        pending = self.ws.assigned.get(execution_id)
        if pending is None or self.o.result_of(execution_id) is not None:
            self.release_slot(execution_id)
            return False
        self.release_slot(execution_id)
        self.w.update_execution(execution_id, session_id=None, assigned_at=None)
        self.ws.pending_by_id[execution_id] = pending
        self.ws.ready.setdefault((pending.module, pending.target), deque()).appendleft(pending)
        self.o.needs_schedule = True
        return True

    def on_declare(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        session = self.peer_session(peer)
        declared, manifest = _parse_targets(params.get("targets", {}))
        self.ws.signatures.update(signatures_of(params.get("targets")))
        session.targets = declared
        session.code_hashes, session.declared_at = code_hashes_of(params.get("targets")), time.time()
        self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(
            targets=[[m, n, ty] for (m, n), ty in declared.items()]))
        self._register_workflows(session.workspace_id, manifest)
        self.o.needs_schedule = True
        self.o.reply(peer, request_id, {"ok": True})

    def current_code(self, workspace_id: int, module: str, target: str,
                     origin_session_id: str | None = None) -> dict | None:
        """The code a connected worker has now for a target, as it last declared it: the run's
        own session first (the kernel whose cell it came from), else the newest declaration;
        None when no connected worker declares a hash for it."""
        key = (module, target)
        candidates = [s for s in self.ws.sessions.values()
                      if s.peer is not None and s.workspace_id == workspace_id and key in s.code_hashes]
        if not candidates:
            return None
        origin = next((s for s in candidates if s.id == origin_session_id), None)
        chosen = origin or max(candidates, key=lambda s: s.declared_at)
        return {"code_hash": chosen.code_hashes[key], "worker": chosen.name, "kind": chosen.kind}

    def peer_session(self, peer: Peer | None) -> Session:
        session_id = self.ws.peer_sessions.get(peer)
        if session_id is None or session_id not in self.ws.sessions:
            raise BadRequest("this connection has not registered as a worker")
        return self.ws.sessions[session_id]

    def on_release(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """A worker hands back executions it queued but could not start soon (all its slots
        stayed busy), so another worker can take them."""
        session = self.peer_session(peer)
        executions = params.get("executions") or []
        if not isinstance(executions, list) or not all(isinstance(e, str) for e in executions):
            raise BadRequest("executions must be a list of execution ids")
        assignments = assignments_of(params)
        released = [e for e in executions if self.take_back(session, e, assignments.get(e))]
        if released:
            session.prefetch_paused = True  # until one of its slots frees up
            self.o.needs_schedule = True
        self.o.reply(peer, request_id, {"released": released})

    def on_closed(self, peer: Peer) -> None:
        for waiter in self.ws.peer_waiters.pop(peer, set()):
            waiter.done = True
        session_id = self.ws.peer_sessions.pop(peer, None)
        session = self.ws.sessions.get(session_id) if session_id else None
        if session is not None and session.peer is peer:
            session.peer = None
            if session.gone or (session.draining and not session.running):
                self.expire_session(session)  # dead, or stopped cleanly after draining
                return
            session.expires_at = time.time() + self.o.reconnect_grace
            self.o.add_timer(session.expires_at, "session", session.id)
            self.o.publish(WORKERS_TOPIC, SessionEvent(type="session", session=session.id, connected=False))

    def kernel_gone(self, kernel_id: str) -> list[str]:
        """Jupyter restarted or shut down this kernel: its executions will not report back, so
        abandon them now instead of after the reconnect grace period."""
        ended = []
        for session in list(self.ws.sessions.values()):
            if session.kernel_id == kernel_id:
                session.gone = True
                if session.peer is None:
                    self.expire_session(session)
                ended.append(session.id)
        return ended

    def expire_session(self, session: Session) -> None:
        for execution_id in list(session.running):
            self._requeue_or_abandon(execution_id)
        self.db.execute(update(t.sessions).where(t.sessions.c.id == session.id).values(ended_at=time.time()))
        del self.ws.sessions[session.id]
        self.o.publish(WORKERS_TOPIC, SessionEvent(type="session", session=session.id, ended=True))

    def _abandon(self, execution_id: str) -> None:
        pending = self.ws.assigned.get(execution_id)
        self.release_slot(execution_id)
        if self.o.result_of(execution_id) is None:
            self.o.outcomes.conclude(pending or self.o.submission.pending_of(execution_id), "abandoned")

    def release_slot(self, execution_id: str) -> Session | None:
        """Forget that a worker runs this execution; returns that worker's session."""
        session_id = self.ws.active.pop(execution_id, None)
        self.ws.assigned.pop(execution_id, None)
        self.ws.telemetry_batches.pop(execution_id, None)
        session = self.ws.sessions.get(session_id) if session_id else None
        if session is not None:
            session.running.discard(execution_id)
            session.prefetch_paused = False
            self.o.needs_schedule = True
        return session

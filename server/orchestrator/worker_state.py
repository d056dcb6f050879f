"""What workers tell the orchestrator about their own state: parked slots, started executions,
and draining before they stop."""

from __future__ import annotations

import time
from typing import Any

from coflux.protocol import STUCK_REASON, WORKERS_TOPIC, SessionEvent, StartedEvent, WarningEvent, run_topic

from ..errors import BadRequest
from ..ids import run_of
from .component import Component
from .model import Peer, Session
from .rules.placement import parking_bound
from .sessions import assignments_of


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise BadRequest(f"{what} must be an integer from 0 to 1000000")
    return value


class WorkerState(Component):
    def on_slots(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """The worker's parked executions (blocked on results, their slots given back) and the
        ones stuck holding a slot because it may park no more."""
        session = self.o.workers.peer_session(peer)
        self.apply_slots(session, params)
        self.o.reply(peer, request_id, {"ok": True})

    def apply_slots(self, session: Session, params: dict) -> None:
        parked = _count(params.get("parked", 0), "parked")
        stuck = params.get("stuck")  # absent: unchanged (a count piggybacked on a request)
        if stuck is not None and not isinstance(stuck, list):
            raise BadRequest("stuck must be a list of execution ids")
        max_parked = _count(params["max_parked"], "max_parked") if "max_parked" in params else None
        if max_parked is not None:
            session.max_parked = max_parked
        if parked > session.parked:
            self.o.needs_schedule = True
        session.parked = min(parked, len(session.running))
        if stuck is None:
            session.stuck &= session.running
            return
        stuck_ids = {str(e) for e in stuck[:10000]} & session.running
        for execution_id in sorted(stuck_ids - session.stuck):
            self.o.publish(run_topic(run_of(execution_id)), WarningEvent(
                type="warning", execution=execution_id, at=time.time(),
                message=f"{execution_id} waits for a result while holding a slot, so the run may never "
                        f"finish: {parking_bound(session)}"))
        session.stuck = stuck_ids

    def piggybacked_slots(self, peer: Peer | None, params: dict) -> None:
        """Workers send their parked count along with the requests that change it (a blocking
        request, a result), which saves a message per nested call on the hot path."""
        session_id = self.ws.peer_sessions.get(peer)
        session = self.ws.sessions.get(session_id) if session_id else None
        if session is not None:
            try:
                self.apply_slots(session, params)
            except BadRequest:
                pass  # a hint only: the request itself is checked by its own handler

    def stuck_reason(self, execution_id: str) -> str | None:
        """Why a running execution makes no progress, when its worker said it is stuck."""
        session = self.ws.sessions.get(self.ws.active.get(execution_id, ""))
        if session is None or execution_id not in session.stuck:
            return None
        return f"{STUCK_REASON}: {parking_bound(session)}"

    def on_started(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """An execution began running on its worker (assigned is not started: work that never
        started can be handed to another worker without counting as abandoned)."""
        session = self.o.workers.peer_session(peer)
        execution_id = str(params.get("execution"))
        if self.o.workers.is_stale(execution_id, params.get("assignment")):
            return  # an older hand-out's: the latest one may be elsewhere, or not begun
        if self.ws.active.get(execution_id) != session.id and not self._adopt(session, execution_id):
            return  # another worker's: ignore, it changes nothing
        at = params.get("at")
        now = time.time()
        at = float(at) if isinstance(at, int | float) and not isinstance(at, bool) and abs(at - now) < 86400 \
            else now
        pending = self.ws.assigned.get(execution_id)
        if pending is not None:
            pending.started_at = at
        self.w.update_execution(execution_id, started_at=at)
        self.o.publish(run_topic(run_of(execution_id)),
                      StartedEvent(type="started", execution=execution_id, session=session.id, at=at))

    def _adopt(self, session: Session, execution_id: str) -> bool:
        """A worker began an execution the server holds as queued (it came back from a restart
        or a reconnect with work the server had taken back, and the two crossed): the work has
        begun there, so it is assigned there rather than started a second time elsewhere."""
        pending = self.ws.pending_by_id.get(execution_id)
        if pending is None or pending.blocked or session.peer is None \
                or session.targets.get((pending.module, pending.target)) != pending.type:
            return False
        self.o.queue.unqueue(pending)
        self.o.queue.record_assignment(pending, session, time.time())
        return True

    def on_drain(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """The worker is stopping: it gets no new work (only what its own running executions wait
        for) and hands back what it had queued."""
        session = self.o.workers.peer_session(peer)
        session.draining = True
        assignments = assignments_of(params)
        released = [str(e) for e in (params.get("release") or [])[:100000]
                    if self.o.workers.take_back(session, str(e), assignments.get(str(e)))]
        self.o.needs_schedule = True
        self.o.reply(peer, request_id, {"released": released})
        self.o.publish(WORKERS_TOPIC, SessionEvent(type="session", session=session.id, draining=True))

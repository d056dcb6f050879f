"""Results: accepting a worker's, deciding what follows (rules/outcome.py: retries,
recurrences, cancelled descendants, the cache index), recording them, and a run's outcome."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from coflux.protocol import (
    RUNS_TOPIC,
    WORKER_RESULT_KINDS,
    ErrorSummary,
    ResultEvent,
    ResultKind,
    RunResultEvent,
    run_topic,
)

from ..errors import BadRequest, NotFound
from ..ids import run_of
from ..store import queries
from ..store import schema as t
from . import limits
from .component import Component
from .model import FAILURE_KINDS, Peer, Waiter
from .rules import outcome

log = logging.getLogger("coflux.orchestrator")


def _result_fields(kind: Any, params: dict) -> tuple:
    """(value, error, after, execute_after, started_at) of a worker's result, checked."""
    if kind not in WORKER_RESULT_KINDS:
        raise BadRequest(f"result kind must be one of {', '.join(sorted(WORKER_RESULT_KINDS))}, not {kind!r}")
    value = error = after = execute_after = None
    if kind == "value":
        value = params.get("value")
        if not isinstance(value, dict) or "v" not in value:
            raise BadRequest("a value result needs 'value': {'v': ...}")
    elif kind == "error":
        error = params.get("error") or {}
        if not isinstance(error, dict):
            raise BadRequest("error must be an object")
        frames = error.get("frames") or []
        if not isinstance(frames, list):
            raise BadRequest("error.frames must be a list")
        error = {"type": str(error.get("type", "builtins.Exception"))[:500],
                 "message": str(error.get("message", ""))[:100000], "frames": frames,
                 "retryable": error.get("retryable") if isinstance(error.get("retryable"), bool) else None}
    elif kind == "suspended":
        execute_after = limits.epoch(params.get("execute_after"), "execute_after")
        after = params.get("after")
        if after is not None and not isinstance(after, list):
            raise BadRequest("after must be a list of execution ids")
    started_at = params.get("started_at")
    started_at = limits.epoch(started_at, "started_at") if isinstance(started_at, int | float) else None
    return value, error, after, execute_after, started_at


class Outcomes(Component):
    def on_result(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        recorded = self._apply_result(params, self.ws.peer_sessions.get(peer))
        # `stale`: about an older hand-out, ignored; the worker answers the latest one with it.
        self.o.reply(peer, request_id, {"ok": True} if recorded else {"ok": True, "stale": True})

    def _apply_result(self, params: dict, session_id: str | None) -> bool:
        """A worker's result, accepted only from the session the execution is assigned to (the
        connection that registered it): another token holder cannot end someone else's work.
        Everything is checked before anything changes. False: it is about an older hand-out of
        the execution than its latest, and changes nothing."""
        execution_id = str(params["execution"])
        kind = params["kind"]
        try:
            value, error, after, execute_after, started_at = _result_fields(kind, params)
        except BadRequest as exc:
            raise BadRequest(f"result for {execution_id[:100]}: {exc}") from None
        if session_id is None or session_id not in self.ws.sessions:
            raise BadRequest(f"the result for {execution_id[:100]!r} is refused: this connection has not "
                             "registered as a worker")
        if self.o.result_of(execution_id) is not None:
            return True  # a re-sent result, or one for an execution cancelled meanwhile
        if self.o.workers.is_stale(execution_id, params.get("assignment")):
            return False
        if self.ws.active.get(execution_id) != session_id:
            if execution_id not in self.ws.active and not self.o.execution_exists(execution_id):
                raise NotFound(f"no execution {execution_id!r}")
            raise BadRequest(f"execution {execution_id} is not assigned to this worker; its result is refused")
        telemetry = params.get("telemetry")
        if telemetry is not None:  # the execution's last lines and points: recorded before its end
            try:
                if not isinstance(telemetry, dict) or telemetry.get("execution") != execution_id:
                    raise BadRequest("telemetry with a result must be the same execution's")
                self.o.telemetry.record_telemetry(execution_id, telemetry)
            except BadRequest as exc:  # the result counts all the same
                log.warning("telemetry with the result of %s dropped: %s", execution_id, exc)
        pending = self.o.submission.pending_of(execution_id)
        self.o.workers.release_slot(execution_id)
        if started_at is not None and pending.started_at is None:  # else `started` recorded it
            self.w.update_execution(execution_id, started_at=started_at)
        if kind == "value":
            self.conclude(pending, "value", value=value)
        elif kind == "error":
            self.conclude(pending, "error", error=error)
        elif kind == "suspended":
            self.o.control.suspend(pending, execute_after, [str(a) for a in after] if after else None)
        else:
            self.conclude(pending, kind)
        return True

    def conclude(self, pending: Any, kind: str, *, value: Any = None, error: Any = None) -> None:
        """Record how an attempt ended, as the outcome rules decide (rules/outcome.py): a retry
        or recurrence becomes its successor, descendants may be cancelled, a value cached."""
        verdict = outcome.conclude(outcome.Ending(pending, kind, value=value, error=error, now=time.time(),
                                                  failures_before=lambda: self._failures_before(pending)))
        successor = None
        if verdict.next_attempt is not None:
            cause, execute_after = verdict.next_attempt
            successor = self.o.submission.new_attempt(pending, cause, execute_after=execute_after)
        if verdict.cancel_descendants:
            self.o.control.cancel_descendants(pending.id)
        if pending.cache_key is not None:
            self.o.queue.track_cached_result(pending, verdict.index_cache)
        self.record_result(pending.id, verdict.kind, value=verdict.value, error=error, successor=successor)

    def _failures_before(self, pending: Any) -> int:
        """Consecutive failed attempts of the step before this one. A re-run starts afresh, and
        a suspension or recurrence (not failures) ends the sequence."""
        if pending.attempt <= 1 or pending.cause == "rerun":
            return 0
        self.w.flush()
        rows = self.db.execute(
            select(t.results.c.kind, t.executions.c.cause)
            .join(t.executions, t.executions.c.id == t.results.c.execution_id)
            .where(t.executions.c.step_id == pending.step_id, t.executions.c.attempt < pending.attempt)
            .order_by(t.executions.c.attempt.desc())).all()
        count = 0
        for row in rows:
            if row.kind not in FAILURE_KINDS:
                break
            count += 1
            if row.cause == "rerun":
                break
        return count

    def record_result(self, execution_id: str, kind: str, *, value: Any = None, error: Any = None,
                       successor: str | None = None) -> None:
        now = time.time()
        self.ws.pending_by_id.pop(execution_id, None)
        self.w.insert(t.results, dict(execution_id=execution_id, kind=kind, value=value, error=error,
                                      successor_id=successor, created_at=now))
        self.o.cache_result(execution_id, (kind, value, error, successor))
        event = ResultEvent(type="result", execution=execution_id, kind=kind, at=now, successor=successor)
        if kind == ResultKind.ERROR:
            event["error"] = ErrorSummary(type=error["type"], message=error["message"][:1000])
        self.o.publish(run_topic(run_of(execution_id)), event)
        if execution_id.split(":")[1] == "1":  # the run's root step: its outcome may have changed
            status, tail, _ = self.o.follow(execution_id)
            if status == "final":
                self.publish_run_outcome(run_of(execution_id))
            elif tail.rpartition(":")[0] != execution_id.rpartition(":")[0]:
                # The outcome is another step's (a cached or deferred root): told when that one ends.
                run_id = run_of(execution_id)
                self.ws.waiters.setdefault(tail, []).append(Waiter(
                    peer=None, request_id=None, callback=lambda _outcome: self.publish_run_outcome(run_id)))
        self.o.waiters.resolve_waiters(execution_id)

    def publish_run_outcome(self, run_id: str) -> None:
        """Tell the runs lists and the run's own views its outcome, as `queries.run_outcomes` (the
        one definition) reads it: after a result of its root step's chain, or a re-run of it."""
        self.w.flush()
        outcome = queries.run_outcome(self.db, run_id)
        if outcome is None:
            return
        event = RunResultEvent(type="run_result", run=run_id, kind=outcome["status"], at=time.time(), **outcome)
        self.o.publish(RUNS_TOPIC, event)
        self.o.publish(run_topic(run_id), event)

    def run_execution(self, run_id: str) -> str:
        """The execution that waiting on a run waits on: its root step's latest attempt."""
        self.w.flush()
        outcome = queries.run_outcome(self.db, run_id)
        if outcome is None or outcome["execution"] is None:
            raise NotFound(f"no run {run_id!r}")
        return outcome["execution"]

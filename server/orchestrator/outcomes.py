"""Results: recording them, turning failures into retries and `None` into recurrences, and
answering everyone who waits."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from coflux.protocol import (
    RUNS_TOPIC,
    WORKER_RESULT_KINDS,
    DependencyEvent,
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


class OutcomesMixin:
    def _on_result(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        recorded = self._apply_result(params, self.peer_sessions.get(peer))
        # `stale`: about an older hand-out, ignored; the worker answers the latest one with it.
        self._reply(peer, request_id, {"ok": True} if recorded else {"ok": True, "stale": True})

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
        if session_id is None or session_id not in self.sessions:
            raise BadRequest(f"the result for {execution_id[:100]!r} is refused: this connection has not "
                             "registered as a worker")
        if self.result_of(execution_id) is not None:
            return True  # a re-sent result, or one for an execution cancelled meanwhile
        if self._is_stale(execution_id, params.get("assignment")):
            return False
        if self.active.get(execution_id) != session_id:
            if execution_id not in self.active and not self._execution_exists(execution_id):
                raise NotFound(f"no execution {execution_id!r}")
            raise BadRequest(f"execution {execution_id} is not assigned to this worker; its result is refused")
        telemetry = params.get("telemetry")
        if telemetry is not None:  # the execution's last lines and points: recorded before its end
            try:
                if not isinstance(telemetry, dict) or telemetry.get("execution") != execution_id:
                    raise BadRequest("telemetry with a result must be the same execution's")
                self._record_telemetry(execution_id, telemetry)
            except BadRequest as exc:  # the result counts all the same
                log.warning("telemetry with the result of %s dropped: %s", execution_id, exc)
        pending = self.pending_of(execution_id)
        self._release_slot(execution_id)
        if started_at is not None and pending.started_at is None:  # else `started` recorded it
            self.w.update_execution(execution_id, started_at=started_at)
        if kind == "value":
            self._conclude(pending, "value", value=value)
        elif kind == "error":
            self._conclude(pending, "error", error=error)
        elif kind == "suspended":
            self._suspend(pending, execute_after, [str(a) for a in after] if after else None)
        else:
            self._conclude(pending, kind)
        return True

    def _conclude(self, pending: Any, kind: str, *, value: Any = None, error: Any = None) -> None:
        """Record how an attempt ended, as the outcome rules decide (rules/outcome.py): a retry
        or recurrence becomes its successor, descendants may be cancelled, a value cached."""
        verdict = outcome.conclude(outcome.Ending(pending, kind, value=value, error=error, now=time.time(),
                                                  failures_before=lambda: self._failures_before(pending)))
        successor = None
        if verdict.next_attempt is not None:
            cause, execute_after = verdict.next_attempt
            successor = self._new_attempt(pending, cause, execute_after=execute_after)
        if verdict.cancel_descendants:
            self._cancel_descendants(pending.id)
        if pending.cache_key is not None:
            self._track_cached_result(pending, verdict.index_cache)
        self._record_result(pending.id, verdict.kind, value=verdict.value, error=error, successor=successor)

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

    def _record_result(self, execution_id: str, kind: str, *, value: Any = None, error: Any = None,
                       successor: str | None = None) -> None:
        now = time.time()
        self.pending_by_id.pop(execution_id, None)
        self.w.insert(t.results, dict(execution_id=execution_id, kind=kind, value=value, error=error,
                                      successor_id=successor, created_at=now))
        self._cache_result(execution_id, (kind, value, error, successor))
        event = ResultEvent(type="result", execution=execution_id, kind=kind, at=now, successor=successor)
        if kind == ResultKind.ERROR:
            event["error"] = ErrorSummary(type=error["type"], message=error["message"][:1000])
        self._publish(run_topic(run_of(execution_id)), event)
        if execution_id.split(":")[1] == "1":  # the run's root step: its outcome may have changed
            status, tail, _ = self.follow(execution_id)
            if status == "final":
                self._publish_run_outcome(run_of(execution_id))
            elif tail.rpartition(":")[0] != execution_id.rpartition(":")[0]:
                # The outcome is another step's (a cached or deferred root): told when that one ends.
                run_id = run_of(execution_id)
                self.waiters.setdefault(tail, []).append(Waiter(
                    peer=None, request_id=None, callback=lambda _outcome: self._publish_run_outcome(run_id)))
        self._resolve_waiters(execution_id)

    def _publish_run_outcome(self, run_id: str) -> None:
        """Tell the runs lists and the run's own views its outcome, as `queries.run_outcomes` (the
        one definition) reads it: after a result of its root step's chain, or a re-run of it."""
        self.w.flush()
        outcome = queries.run_outcome(self.db, run_id)
        if outcome is None:
            return
        event = RunResultEvent(type="run_result", run=run_id, kind=outcome["status"], at=time.time(), **outcome)
        self._publish(RUNS_TOPIC, event)
        self._publish(run_topic(run_id), event)

    def run_execution(self, run_id: str) -> str:
        """The execution that waiting on a run waits on: its root step's latest attempt."""
        self.w.flush()
        outcome = queries.run_outcome(self.db, run_id)
        if outcome is None or outcome["execution"] is None:
            raise NotFound(f"no run {run_id!r}")
        return outcome["execution"]

    # ----------------------------------------------------------------- waiting

    def _on_wait(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Wait for an execution's outcome, or with `run` (and no `execution`) for a run's."""
        if params.get("execution") is None and params.get("run") is not None:
            execution_id = self.run_execution(str(params["run"]))
        else:
            execution_id = str(params["execution"])
        # null waits until resolved; a finite timeout longer than any timer simply never fires
        timeout = limits.seconds(params.get("timeout"), "timeout", maximum=float("inf"), allow_none=True)
        if timeout is not None and timeout > limits.MAX_SECONDS:
            timeout = None
        if not self._execution_exists(execution_id):
            raise NotFound(f"no execution {execution_id!r}")
        self._wait(peer, request_id, execution_id, params.get("from"), timeout)

    def _on_depend(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """A parent read a child's pushed outcome: record the dependency edge it implies."""
        self.w.insert_ignore(t.dependencies, dict(execution_id=str(params["from"]),
                                                  dependency_id=str(params["execution"]), created_at=time.time()))
        self._publish_dependency(str(params["from"]), str(params["execution"]))

    def _publish_dependency(self, from_id: str, execution_id: str) -> None:
        """Live graphs draw the edge when it is recorded (repeats are harmless: viewers fold sets)."""
        self._publish(run_topic(run_of(from_id)),
                      DependencyEvent(type="dependency", execution=from_id, dependency=execution_id))

    def _wait(self, peer: Peer | None, request_id: Any, execution_id: str, from_id: str | None,
              timeout: float | None, extra: dict | None = None) -> None:
        if from_id:
            self.w.insert_ignore(t.dependencies, dict(execution_id=str(from_id), dependency_id=execution_id,
                                                      created_at=time.time()))
            self._publish_dependency(str(from_id), execution_id)
        status, tail, result = self.follow(execution_id)
        if status == "final":
            self._reply(peer, request_id, {**self._wire_outcome(tail, result), **(extra or {})})
            return
        if timeout is not None and float(timeout) <= 0:
            self._reply(peer, request_id, {"status": "pending", **(extra or {})})
            return
        if from_id:
            self._prioritise(tail)
        waiter = Waiter(peer=peer, request_id=request_id, extra=extra)
        if timeout is not None:
            waiter.expires_at = time.time() + float(timeout)
            self._add_timer(waiter.expires_at, "wait", waiter)
        waiting = self.waiters.setdefault(tail, [])
        if len(waiting) >= 64:  # polls that timed out stay listed until the execution resolves
            waiting[:] = [w for w in waiting if not w.done]
        waiting.append(waiter)
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
                self._forget_waiter(waiter)

    def _forget_waiter(self, waiter: Waiter) -> None:
        peer_set = self.peer_waiters.get(waiter.peer)
        if peer_set is not None:
            peer_set.discard(waiter)
            if not peer_set:  # one-shot peers (HTTP long-polls) never close: do not keep them
                del self.peer_waiters[waiter.peer]

    def _answer(self, waiter: Waiter, outcome: dict) -> None:
        if waiter.callback is not None:
            waiter.callback(outcome)
        elif waiter.push is not None:
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

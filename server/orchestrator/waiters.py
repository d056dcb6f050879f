"""Everyone who waits for an outcome: `wait` requests (with a timeout or none), running parents
a child's outcome is pushed to, internal callbacks (a blocked execution, a cached root), and
`cf.select` (the first of several executions to resolve). When a result is recorded the waiters
of its chain are answered (`resolve_waiters`), after the batch commits."""

from __future__ import annotations

import time
from typing import Any

from coflux.protocol import DependencyEvent, run_topic

from ..errors import BadRequest, NotFound
from ..ids import is_input_id, run_of
from ..store import schema as t
from . import limits
from .component import Component
from .model import Peer, Waiter

MAX_SELECT = 10000


class _Race:
    """One pending select: answered once, by whichever comes first (a winner or the timeout)."""

    __slots__ = ("done", "timer")

    def __init__(self) -> None:
        self.done = False
        self.timer: Waiter | None = None


class Waiters(Component):
    def on_wait(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Wait for an execution's outcome, or with `run` (and no `execution`) for a run's."""
        if params.get("execution") is None and params.get("run") is not None:
            execution_id = self.o.outcomes.run_execution(str(params["run"]))
        else:
            execution_id = str(params["execution"])
        # null waits until resolved; a finite timeout longer than any timer simply never fires
        timeout = limits.seconds(params.get("timeout"), "timeout", maximum=float("inf"), allow_none=True)
        if timeout is not None and timeout > limits.MAX_SECONDS:
            timeout = None
        if not self.o.execution_exists(execution_id):
            raise NotFound(f"no execution {execution_id!r}")
        self.wait(peer, request_id, execution_id, params.get("from"), timeout)

    def on_depend(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """A parent read a child's pushed outcome: record the dependency edge it implies."""
        self.w.insert_ignore(t.dependencies, dict(execution_id=str(params["from"]),
                                                  dependency_id=str(params["execution"]), created_at=time.time()))
        self._publish_dependency(str(params["from"]), str(params["execution"]))

    def _publish_dependency(self, from_id: str, execution_id: str) -> None:
        """Live graphs draw the edge when it is recorded (repeats are harmless: viewers fold sets)."""
        self.o.publish(run_topic(run_of(from_id)),
                      DependencyEvent(type="dependency", execution=from_id, dependency=execution_id))

    def wait(self, peer: Peer | None, request_id: Any, execution_id: str, from_id: str | None,
              timeout: float | None, extra: dict | None = None) -> None:
        if from_id and not is_input_id(execution_id):  # the graph draws edges between executions
            self.w.insert_ignore(t.dependencies, dict(execution_id=str(from_id), dependency_id=execution_id,
                                                      created_at=time.time()))
            self._publish_dependency(str(from_id), execution_id)
        status, tail, result = self.o.follow(execution_id)
        if status == "final":
            self.o.reply(peer, request_id, {**self.wire_outcome(tail, result), **(extra or {})})
            return
        if timeout is not None and float(timeout) <= 0:
            self.o.reply(peer, request_id, {"status": "pending", **(extra or {})})
            return
        if from_id:
            self.o.queue.prioritise(tail)
        waiter = Waiter(peer=peer, request_id=request_id, extra=extra)
        if timeout is not None:
            waiter.expires_at = time.time() + float(timeout)
            self.o.add_timer(waiter.expires_at, "wait", waiter)
        waiting = self.ws.waiters.setdefault(tail, [])
        if len(waiting) >= 64:  # polls that timed out stay listed until the execution resolves
            waiting[:] = [w for w in waiting if not w.done]
        waiting.append(waiter)
        self.ws.peer_waiters.setdefault(peer, set()).add(waiter)

    def resolve_waiters(self, execution_id: str) -> None:
        waiters = self.ws.waiters.pop(execution_id, None)
        if not waiters:
            return
        status, tail, result = self.o.follow(execution_id)
        if status == "pending":
            self.ws.waiters.setdefault(tail, []).extend(waiters)
            return
        outcome = self.wire_outcome(tail, result)
        for waiter in waiters:
            if not waiter.done:
                waiter.done = True
                self.answer(waiter, outcome)
                self.forget_waiter(waiter)

    def forget_waiter(self, waiter: Waiter) -> None:
        peer_set = self.ws.peer_waiters.get(waiter.peer)
        if peer_set is not None:
            peer_set.discard(waiter)
            if not peer_set:  # one-shot peers (HTTP long-polls) never close: do not keep them
                del self.ws.peer_waiters[waiter.peer]

    def answer(self, waiter: Waiter, outcome: dict) -> None:
        if waiter.callback is not None:
            waiter.callback(outcome)
        elif waiter.push is not None:
            parent, child = waiter.push
            if parent in self.ws.active:  # the parent may read it with no round trip
                self.o.send(waiter.peer, {"op": "resolved", "parent": parent, "child": child, **outcome})
        else:
            self.o.reply(waiter.peer, waiter.request_id, {**outcome, **waiter.extra} if waiter.extra else outcome)

    @staticmethod
    def wire_outcome(execution_id: str, result: tuple) -> dict:
        kind, value, error, _ = result
        outcome: dict[str, Any] = {"status": kind, "execution": execution_id}
        if kind == "value":
            outcome["value"] = value
        elif kind == "error":
            outcome["error"] = error
        return outcome

    def on_resolved(self, execution_id: str, callback) -> None:
        """Call `callback(outcome)` once the execution's chain has a final result."""
        status, tail, result = self.o.follow(execution_id)
        if status == "final":
            callback(self.wire_outcome(tail, result))
            return
        self.ws.waiters.setdefault(tail, []).append(Waiter(peer=None, request_id=None, callback=callback))


    # ----------------------------------------------------------------- select

    def on_select(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        executions = params.get("executions")
        if not isinstance(executions, list) or not executions or len(executions) > MAX_SELECT \
                or not all(isinstance(e, str) for e in executions):
            raise BadRequest(f"executions must be a list of 1 to {MAX_SELECT} execution or input ids")
        timeout = limits.seconds(params.get("timeout"), "timeout", allow_none=True)
        from_id = params.get("from")
        if from_id is not None and not isinstance(from_id, str):
            raise BadRequest("from must be an execution id")
        cancel_remaining = bool(params.get("cancel_remaining"))
        for execution_id in executions:
            if not self.o.execution_exists(execution_id):
                raise NotFound(f"no execution {execution_id!r}")
        race = _Race()
        tails: list[str] = []
        for index, execution_id in enumerate(executions):  # already resolved: the first in order wins
            status, tail, result = self.o.follow(execution_id)
            if status == "final":
                self._select_won(peer, request_id, race, executions, index, self.wire_outcome(tail, result),
                                 from_id, cancel_remaining)
                return
            tails.append(tail)
        if timeout == 0:
            self.o.reply(peer, request_id, {"status": "pending"})
            return
        for index, tail in enumerate(tails):
            if from_id:
                self.o.queue.prioritise(tail)
            self.ws.waiters.setdefault(tail, []).append(Waiter(
                peer=None, request_id=None,
                callback=lambda outcome, i=index: self._select_won(
                    peer, request_id, race, executions, i, outcome, from_id, cancel_remaining)))
        # The request's own waiter: it expires with the timeout and goes when the peer does.
        timer = Waiter(peer=peer, request_id=request_id)
        race.timer = timer
        self.ws.peer_waiters.setdefault(peer, set()).add(timer)
        if timeout is not None:
            timer.expires_at = time.time() + timeout
            self.o.add_timer(timer.expires_at, "select", (race, timer))

    def _select_won(self, peer: Peer | None, request_id: Any, race: _Race, executions: list[str], index: int,
                    outcome: dict, from_id: str | None, cancel_remaining: bool) -> None:
        if race.done or (race.timer is not None and race.timer.done):
            return  # answered already, timed out, or the peer went away
        race.done = True
        if race.timer is not None:
            race.timer.done = True
            self.forget_waiter(race.timer)
        if from_id and not is_input_id(executions[index]):
            self.w.insert_ignore(t.dependencies, dict(execution_id=from_id, dependency_id=executions[index],
                                                      created_at=time.time()))
        cancelled: list[str] = []
        if cancel_remaining:  # in the same transaction as the answer: no loser runs on after it
            for i, execution_id in enumerate(executions):
                if i != index:
                    cancelled.extend(self.o.control.cancel(execution_id))
        self.o.reply(peer, request_id, {**outcome, "winner": index, "cancelled": cancelled})

    def select_timed_out(self, payload: tuple) -> None:
        race, timer = payload
        if race.done or timer.done:
            return
        race.done = timer.done = True
        self.forget_waiter(timer)
        self.o.reply(timer.peer, timer.request_id, {"status": "pending"})

"""`cf.select`: wait for the first of several executions to resolve."""

from __future__ import annotations

import time
from typing import Any

from ..errors import BadRequest, NotFound
from ..store import schema as t
from . import limits
from .model import Peer, Waiter

MAX_SELECT = 10000


class _Race:
    """One pending select: answered once, by whichever comes first (a winner or the timeout)."""

    __slots__ = ("done", "timer")

    def __init__(self) -> None:
        self.done = False
        self.timer: Waiter | None = None


class SelectingMixin:
    def _on_select(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        executions = params.get("executions")
        if not isinstance(executions, list) or not executions or len(executions) > MAX_SELECT \
                or not all(isinstance(e, str) for e in executions):
            raise BadRequest(f"executions must be a list of 1 to {MAX_SELECT} execution ids")
        timeout = limits.seconds(params.get("timeout"), "timeout", allow_none=True)
        from_id = params.get("from")
        if from_id is not None and not isinstance(from_id, str):
            raise BadRequest("from must be an execution id")
        cancel_remaining = bool(params.get("cancel_remaining"))
        for execution_id in executions:
            if not self._execution_exists(execution_id):
                raise NotFound(f"no execution {execution_id!r}")
        race = _Race()
        tails: list[str] = []
        for index, execution_id in enumerate(executions):  # already resolved: the first in order wins
            status, tail, result = self.follow(execution_id)
            if status == "final":
                self._select_won(peer, request_id, race, executions, index, self._wire_outcome(tail, result),
                                 from_id, cancel_remaining)
                return
            tails.append(tail)
        if timeout == 0:
            self._reply(peer, request_id, {"status": "pending"})
            return
        for index, tail in enumerate(tails):
            if from_id:
                self._prioritise(tail)
            self.waiters.setdefault(tail, []).append(Waiter(
                peer=None, request_id=None,
                callback=lambda outcome, i=index: self._select_won(
                    peer, request_id, race, executions, i, outcome, from_id, cancel_remaining)))
        # The request's own waiter: it expires with the timeout and goes when the peer does.
        timer = Waiter(peer=peer, request_id=request_id)
        race.timer = timer
        self.peer_waiters.setdefault(peer, set()).add(timer)
        if timeout is not None:
            timer.expires_at = time.time() + timeout
            self._add_timer(timer.expires_at, "select", (race, timer))

    def _select_won(self, peer: Peer | None, request_id: Any, race: _Race, executions: list[str], index: int,
                    outcome: dict, from_id: str | None, cancel_remaining: bool) -> None:
        if race.done or (race.timer is not None and race.timer.done):
            return  # answered already, timed out, or the peer went away
        race.done = True
        if race.timer is not None:
            race.timer.done = True
            self._forget_waiter(race.timer)
        if from_id:
            self.w.insert_ignore(t.dependencies, dict(execution_id=from_id, dependency_id=executions[index],
                                                      created_at=time.time()))
        cancelled: list[str] = []
        if cancel_remaining:  # in the same transaction as the answer: no loser runs on after it
            for i, execution_id in enumerate(executions):
                if i != index:
                    cancelled.extend(self.cancel(execution_id))
        self._reply(peer, request_id, {**outcome, "winner": index, "cancelled": cancelled})

    def _select_timed_out(self, payload: tuple) -> None:
        race, timer = payload
        if race.done or timer.done:
            return
        race.done = timer.done = True
        self._forget_waiter(timer)
        self._reply(timer.peer, timer.request_id, {"status": "pending"})

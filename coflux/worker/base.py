"""What every worker does the same way, headless (process pool) or kernel (threads).

A worker registers a session (and resumes it with the secret the server gave it), runs
executions through a `SlotGate` (blocked ones are parked, see slots.py), tells the server when an
execution starts (assigned is not started) and which executions are stuck holding a slot, and
reports results, replacing one the connection refuses as too large by an error saying so.
Subclasses say how an execution runs and what they hold.

Layer: the workers (the connection, and execute.py and slots.py beside it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..connection import Connection, MessageTooLarge
from .execute import undeliverable
from .slots import SlotGate

log = logging.getLogger("coflux.worker")

TICK = 0.25  # seconds between heartbeats of the event loop
FROZEN_AFTER = 2.0  # a heartbeat this late means the process was stopped (or its loop blocked)


class WorkerBase:
    kind = "worker"
    connection: Connection

    def __init__(self, *, concurrency: int, max_parked: int, workspace: str) -> None:
        self.concurrency = concurrency
        self.workspace = workspace
        self.gate = SlotGate(concurrency, max_parked, on_change=self._slots_changed)
        self.session_id: str | None = None
        self._session_secret: str | None = None
        self._last_stuck: tuple = ()  # what the server last heard is stuck
        self.lease = 15.0  # seconds; from the server's reconnect grace once registered
        self._last_tick = time.monotonic()  # the event loop's heartbeat (see _lease_valid)
        self._reconfirm = False  # frozen since we last registered: re-register before starting work
        # Execution id -> the number of the server's latest hand-out of it (its `execute`), sent
        # back with what we say of it: the server ignores what is about an older hand-out.
        self._assignments: dict[str, Any] = {}

    # ---------------------------------------------------------------- session

    async def _register_session(self, connection: Connection, **params: Any) -> dict:
        """Register (or resume, with our secret) the session; `params` are the worker's own."""
        reply = await connection.request_async("register", {
            "session": self.session_id, "secret": self._session_secret, "kind": self.kind,
            "workspace": self.workspace, "concurrency": self.concurrency,
            "parked": self.gate.parked, "stuck": self.gate.stuck, "max_parked": self.gate.max_parked,
            **params})
        self.session_id = reply["session"]
        self._session_secret = reply.get("secret") or self._session_secret  # given once, to resume it
        self._reconfirm = False
        grace = reply.get("grace")
        if isinstance(grace, int | float) and grace > 0:
            self.lease = max(0.5, float(grace) / 2)
        self._last_stuck = tuple(self.gate.stuck)
        return reply

    # ---------------------------------------------------------------- slots

    def _attach_slots(self, params: dict) -> dict:
        """How many of our executions are parked (they do not count against `concurrency`),
        sent along with the blocking requests and results that change it: no extra message."""
        params["parked"] = self.gate.parked
        return params

    def _slots_changed(self) -> None:
        """Executions stuck holding a slot (the parking bound was reached) are rare and the user
        must hear of them at once: say so in a message of its own."""
        stuck = tuple(self.gate.stuck)
        if stuck != self._last_stuck:
            self._last_stuck = stuck
            self.connection.notify("slots", {"parked": self.gate.parked, "stuck": list(stuck),
                                             "max_parked": self.gate.max_parked})

    def _lease_valid(self) -> bool:
        """Whether our session surely still holds its work: we heard from the server within the
        lease (half its reconnect grace). A worker that was frozen (SIGSTOP, a suspended laptop)
        or cut off for longer must not start what it had queued: the server may have given it
        to another worker meanwhile. It waits to hear again (a reconnect re-registers; the
        server aborts what is no longer ours)."""
        now = time.monotonic()
        self._check_frozen(now)
        # Connected (registered) too: work started while the server cannot hear of it is exactly
        # what a restarted server might have given to someone else.
        return not self._reconfirm and self.connection.connected and now - self.connection.last_heard <= self.lease

    def _check_frozen(self, now: float) -> None:
        if not self._reconfirm and now - self._last_tick > FROZEN_AFTER:
            # The loop's heartbeat stopped: the process was frozen. Frames read from the socket
            # since may be stale (the server sent them before it gave up on us), so only a new
            # registration can tell what is still ours.
            log.warning("this worker was frozen for %.1f s: re-registering before it starts more work",
                        now - self._last_tick)
            self._reconfirm = True
            self.connection.reconnect()

    def _tick(self) -> None:
        """(Loop thread) the heartbeat by which a worker notices it was frozen (checked here and
        before starting work, whichever the loop runs first after the process resumes)."""
        now = time.monotonic()
        self._check_frozen(now)
        self._last_tick = now
        self.connection.call_later(TICK, self._tick)

    def _note_assignment(self, message: dict) -> None:
        """Remember which hand-out of its execution an `execute` is (a server from before hand-out
        numbers sends none, and then none is sent back)."""
        if message.get("assignment") is not None:
            self._assignments[message["execution"]] = message["assignment"]

    def _about(self, execution_id: str, params: dict) -> dict:
        """`params` of a message about this execution, with the hand-out it is about."""
        assignment = self._assignments.get(execution_id)
        if assignment is not None:
            params["assignment"] = assignment
        return params

    def _started(self, execution_id: str) -> None:
        # Assigned is not started: work that never began is re-queued, not abandoned, if we vanish.
        self.connection.notify("started", self._about(execution_id, {"execution": execution_id, "at": time.time()}))

    # ---------------------------------------------------------------- results

    def _send_result(self, result: dict, acked: Any = None) -> None:
        """Report a result; `acked(future)` runs once the server has it (or refused it)."""
        future = self.connection.request("result", self._attach_slots(result))

        def done(future: Any) -> None:
            if isinstance(future.exception(), MessageTooLarge):
                if result.get("telemetry"):  # the lines and points on their own, then the error
                    self.connection.request("telemetry", result["telemetry"])
                self._send_result(undeliverable(result, future.exception()), acked)
                return
            if acked is not None:
                acked(future)
        future.add_done_callback(done)

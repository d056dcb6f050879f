"""Worker slots: at most `concurrency` executions actively running, blocked ones parked.

An execution blocked on another's result (a call, `.result()`, a wait with a timeout) would
otherwise hold its slot while what it waits for needs one: a workflow calling a task calling a
task deadlocks a worker with two slots. So a blocked execution is *parked*: it gives its slot
back, and when its answer arrives it waits for a free slot again, ahead of new work. `concurrency`
keeps meaning "at most N executions running code at once".

Parking needs somewhere to run the work it makes room for (a process in a headless worker, a
thread in a kernel), so at most `max_parked` executions are parked at once. Past that bound a
blocked execution keeps its slot, as it would without parking, and the gate says which ones are
*stuck* that way so the worker can tell the server and the server the user. The server helps keep
parking shallow by sending first the work that parked executions wait for (depth first).

The gate is thread-safe and drives the worker through callbacks, which it calls outside its
lock: the headless worker calls it from its event loop, a kernel from its execution threads.

Layer: the workers (the standard library only).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

# Requests of running code that block until another execution has a result.
BLOCKING_OPS = frozenset({"call", "wait", "select"})

DEFAULT_MAX_PARKED = 32


def is_blocking(op: str, params: dict) -> bool:
    """Whether this request of running code waits for another execution (a zero timeout is a poll)."""
    if op not in BLOCKING_OPS:
        return False
    return op == "call" or params.get("timeout") != 0


@dataclass
class _Queued:
    execution: str
    start: Callable[[], None]
    queued_at: float = field(default_factory=time.monotonic)


class SlotGate:
    def __init__(self, concurrency: int, max_parked: int = DEFAULT_MAX_PARKED,
                 on_change: Callable[[], None] | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_parked < 0:
            raise ValueError("max_parked must be 0 or more")
        self.concurrency = concurrency
        self.max_parked = max_parked
        self._on_change = on_change
        self._lock = threading.Lock()
        self._active: set[str] = set()  # running code, holding a slot
        self._parked: set[str] = set()  # blocked, slot given back
        self._stuck: set[str] = set()  # blocked, but holding a slot (the parking bound was reached)
        self._blocking: dict[str, int] = {}  # execution -> requests it waits on
        self._resuming: deque[tuple[str, Callable[[], None]]] = deque()  # answers waiting for a slot
        self._urgent: deque[_Queued] = deque()  # new work that a parked execution waits for
        self._queue: deque[_Queued] = deque()  # other new work, in arrival order

    # ------------------------------------------------------------------ state, for reports

    @property
    def parked(self) -> int:
        return len(self._parked)

    @property
    def stuck(self) -> list[str]:
        with self._lock:
            return sorted(self._stuck)

    @property
    def holding(self) -> int:
        """Executions that hold a process or thread: running, parked or resuming."""
        return len(self._active) + len(self._parked)

    def queued(self) -> list[str]:
        with self._lock:
            return [q.execution for q in (*self._urgent, *self._queue)]

    def busy(self) -> bool:
        with self._lock:
            return bool(self._active or self._parked or self._urgent or self._queue)

    # ------------------------------------------------------------------ transitions

    def submit(self, execution: str, start: Callable[[], None], *, urgent: bool = False) -> None:
        """New work: `start()` is called once a slot is free for it."""
        with self._lock:
            (self._urgent if urgent else self._queue).append(_Queued(execution, start))
        self._pump()

    def withdraw(self, older_than: float | None = None, executions: set[str] | None = None) -> list[str]:
        """Take queued work back (to hand it to another worker): all of it, that queued before
        the monotonic time `older_than`, or the given executions."""
        taken: list[str] = []
        with self._lock:
            for queue in (self._urgent, self._queue):
                keep = deque()
                for item in queue:
                    if (executions is not None and item.execution in executions) or \
                            (executions is None and (older_than is None or item.queued_at <= older_than)):
                        taken.append(item.execution)
                    else:
                        keep.append(item)
                queue.clear()
                queue.extend(keep)
        return taken

    def block(self, execution: str) -> None:
        """The execution sent a request that waits for another execution."""
        changed = False
        with self._lock:
            count = self._blocking.get(execution, 0)
            self._blocking[execution] = count + 1
            if count == 0 and execution in self._active:
                self._active.discard(execution)
                if len(self._parked) < self.max_parked:
                    self._parked.add(execution)
                else:
                    self._stuck.add(execution)
                    self._active.add(execution)
                changed = True
        if changed:
            self._changed()
            self._pump()

    def unblock(self, execution: str, resume: Callable[[], None]) -> None:
        """An answer for the execution arrived: `resume()` delivers it once the execution may run."""
        now = False
        with self._lock:
            count = self._blocking.get(execution, 0) - 1
            if count > 0:
                self._blocking[execution] = count
                now = True  # still blocked on something else: no slot changes hands
            else:
                self._blocking.pop(execution, None)
                if execution in self._stuck:
                    self._stuck.discard(execution)
                    now = True  # it never gave its slot up
                elif execution in self._parked:
                    self._resuming.append((execution, resume))
                else:
                    now = True  # not tracked (finished meanwhile): nothing to wait for
        if now:
            resume()
        else:
            self._pump()

    def finish(self, execution: str) -> None:
        """The execution ended (or was killed): its slot is free."""
        with self._lock:
            was_parked = execution in self._parked
            was_stuck = execution in self._stuck
            self._active.discard(execution)
            self._parked.discard(execution)
            self._stuck.discard(execution)
            self._blocking.pop(execution, None)
            self._resuming = deque(r for r in self._resuming if r[0] != execution)
        if was_parked or was_stuck:
            self._changed()
        self._pump()

    # ------------------------------------------------------------------ internals

    def _pump(self) -> None:
        """Hand free slots out: resumed executions first, then work parked ones wait for, then the rest."""
        while True:
            with self._lock:
                if len(self._active) >= self.concurrency:
                    return
                if self._resuming:
                    execution, callback = self._resuming.popleft()
                    self._parked.discard(execution)
                    self._active.add(execution)
                    parked_changed = True
                elif self._urgent or self._queue:
                    item = (self._urgent or self._queue).popleft()
                    execution, callback = item.execution, item.start
                    self._active.add(execution)
                    parked_changed = False
                else:
                    return
            if parked_changed:
                self._changed()
            callback()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


class ParkingTransport:
    """The transport of one execution running in a thread (a kernel's): a request that blocks
    parks the execution, and its answer is handed over once the execution may run again."""

    def __init__(self, inner: Any, gate: SlotGate, execution_id: str) -> None:
        self.inner = inner
        self.gate = gate
        self.execution_id = execution_id

    def request(self, op: str, params: dict) -> Future:
        if not is_blocking(op, params):
            return self.inner.request(op, params)
        self.gate.block(self.execution_id)
        params = {**params, "parked": self.gate.parked}  # the server hears of the free slot with it
        answer: Future = Future()

        def answered(inner: Future) -> None:
            def resume() -> None:
                error = inner.exception()
                if error is not None:
                    answer.set_exception(error)
                else:
                    answer.set_result(inner.result())
            self.gate.unblock(self.execution_id, resume)

        self.inner.request(op, params).add_done_callback(answered)
        return answer

    def notify(self, op: str, params: dict) -> None:
        self.inner.notify(op, params)

"""The execution context: what `submit`, `.result()` and friends talk to while a target runs."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from .errors import (
    ExecutionCancelled,
    ExecutionTimeout,
    Suspending,
)
from .models import Execution
from .outcomes import decode_value, outcome_value
from .telemetry import Telemetry

__all__ = ["ExecutionContext", "current_context", "decode_value", "outcome_value", "select", "suspend",
           "suspense"]

if TYPE_CHECKING:
    from .target import Target


def request_key() -> str:
    """A key that lets the server recognise a re-sent request. Time first, then 64 random bits:
    the server's unique index on these keys then grows at its end, as a log does, instead of
    taking each new key at a random place (a million steps on, random keys made every insert
    touch pages no cache holds)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"

class Transport(Protocol):
    def request(self, op: str, params: dict) -> Future: ...
    def notify(self, op: str, params: dict) -> None: ...


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar("coflux_context", default=None)
_group: contextvars.ContextVar[int | None] = contextvars.ContextVar("coflux_group", default=None)
# Inside `cf.suspense(t)`: how long `.result()` may wait before the execution suspends.
_suspense: contextvars.ContextVar[float | None] = contextvars.ContextVar("coflux_suspense", default=None)


# A process that runs one execution at a time (a headless pool process) also makes it the
# context of threads that code starts (contextvars do not reach new threads): a target called from
# a ThreadPoolExecutor inside a task is then a step, and its prints and logs are the task's.
_process_context: ExecutionContext | None = None


def current_context() -> ExecutionContext | None:
    return _current.get() or _process_context


class ExecutionContext:
    """The state of one running execution (thread-safe: user code may submit from threads)."""

    def __init__(self, execution_id: str, run_id: str, module: str, target: str, transport: Transport) -> None:
        self.execution_id = execution_id
        self.run_id = run_id
        self.module = module
        self.target = target
        self.transport = transport
        self._resolved: dict[str, dict] = {}
        self._pushed: set[str] = set()  # outcomes the server pushed that we have not read yet
        self._groups = itertools.count()
        self._lock = threading.Lock()
        self.aborted: str | None = None  # set when the server aborts us (kernel threads stop at the next call)
        self.started_at = time.time()
        self._telemetry: Telemetry | None = None  # made on the first line or point (most steps have none)
        self.metrics: Any = None  # metrics._Recorder, made on the first record
        self._output: dict[tuple[str, int], str] = {}  # (level, thread) -> text since its last newline

    @property
    def telemetry(self) -> Telemetry:
        """This execution's buffer of log lines and metric points."""
        telemetry = self._telemetry
        if telemetry is None:
            with self._lock:
                if self._telemetry is None:
                    self._telemetry = Telemetry(self.execution_id, self.transport)
                telemetry = self._telemetry
        return telemetry

    @contextlib.contextmanager
    def activate(self, *, whole_process: bool = False) -> Iterator[ExecutionContext]:
        """Make this the current execution (of this thread; with `whole_process`, of every thread
        of the process that has none of its own)."""
        global _process_context
        token = _current.set(self)
        if whole_process:
            _process_context = self
        try:
            yield self
        finally:
            _current.reset(token)
            if whole_process:
                _process_context = None

    def output(self, level: str, text: str) -> None:
        """Text the execution wrote to stdout/stderr: recorded line by line. A partial line waits
        for its end, per thread, so lines of parallel executions, or of threads of one, never mix
        within a line."""
        key = (level, threading.get_ident())
        with self._lock:
            pending = self._output.get(key, "") + text
            *lines, rest = pending.split("\n")
            if rest:
                self._output[key] = rest
            else:
                self._output.pop(key, None)
        for line in lines:
            self.telemetry.log(level, line, None)

    def finish(self, *, final: bool = False) -> dict[str, Any] | None:
        """Send what is buffered (partial output lines, throttled metric values, log lines):
        called when the execution ends. With `final`, the last batch is returned instead, for the
        result to carry."""
        with self._lock:
            partial, self._output = self._output, {}
        for (level, _thread), rest in partial.items():
            if rest:
                self.telemetry.log(level, rest, None)
        if self.metrics is not None:
            self.metrics.flush_held()
        if self._telemetry is not None:
            return self._telemetry.close(final=final)
        return None

    def check_aborted(self) -> None:
        if self.aborted == "cancelled":
            raise ExecutionCancelled(f"execution {self.execution_id} was cancelled",
                                     execution_id=self.execution_id)
        if self.aborted == "timeout":
            raise ExecutionTimeout(f"execution {self.execution_id} timed out", execution_id=self.execution_id)

    def _child_params(self, target: Target, args: list[dict], options: dict) -> dict[str, Any]:
        self.check_aborted()
        # `key` lets the server recognise this submit if it is re-sent after a reconnect.
        params: dict[str, Any] = {
            "parent": self.execution_id, "module": target.module, "target": target.name,
            "type": target.kind, "args": args, "options": options, "key": request_key()}
        group = _group.get()
        if group is not None:
            params["group"] = group
        return params

    def submit(self, target: Target, args: list[dict], options: dict) -> Execution:
        future = self.transport.request("submit", self._child_params(target, args, options))
        return Execution(future, target.module, target.name, self)

    def call(self, target: Target, args: list[dict], options: dict) -> Any:
        """Submit and wait in one round trip: what calling a target inside an execution does."""
        if _suspense.get() is not None:
            return outcome_value(self.wait(self.submit(target, args, options).id, None), self)
        outcome = self.transport.request("call", self._child_params(target, args, options)).result()
        self.check_aborted()
        with self._lock:
            self._resolved[outcome["execution"]] = outcome
        return outcome_value(outcome, self)

    def deliver(self, child_id: str, outcome: dict) -> None:
        """The server pushed the outcome of a child we submitted (no request needed to read it)."""
        with self._lock:
            if child_id not in self._resolved:
                self._resolved[child_id] = outcome
                self._pushed.add(child_id)

    def wait(self, execution_id: str, timeout: float | None) -> dict:
        self.check_aborted()
        with self._lock:
            cached = self._resolved.get(execution_id)
            first_read = execution_id in self._pushed
            self._pushed.discard(execution_id)
        if cached is not None:
            if first_read:  # reading a result is what makes it a dependency (drawn in the graph)
                self.transport.notify("depend", {"from": self.execution_id, "execution": execution_id})
            return cached
        suspense = _suspense.get() if timeout is None else None
        outcome = self.transport.request("wait", {
            "execution": execution_id, "from": self.execution_id,
            "timeout": suspense if suspense is not None else timeout}).result()
        self.check_aborted()
        if suspense is not None and outcome.get("status") == "pending":
            raise Suspending(None, [execution_id])  # start again once it has resolved
        if outcome.get("status") != "pending":
            with self._lock:
                self._resolved[execution_id] = outcome
        return outcome

    def select(self, execution_ids: list[str], cancel_remaining: bool = False) -> tuple[int, dict]:
        """Wait for the first of these executions to resolve: (its index, its outcome). The
        timeout comes from an enclosing `cf.suspense`; past it, TimeoutError."""
        self.check_aborted()
        with self._lock:  # known here already: the first in input order wins
            index = next((i for i, e in enumerate(execution_ids) if e in self._resolved), -1)
            cached = self._resolved.get(execution_ids[index]) if index >= 0 else None
        if cached is not None:
            if cancel_remaining:
                for i, execution_id in enumerate(execution_ids):
                    if i != index and execution_id not in self._resolved:
                        self.cancel(execution_id)
            self.transport.notify("depend", {"from": self.execution_id, "execution": execution_ids[index]})
            return index, cached
        outcome = self.transport.request("select", {
            "executions": execution_ids, "from": self.execution_id, "timeout": _suspense.get(),
            "cancel_remaining": cancel_remaining}).result()
        self.check_aborted()
        if outcome.get("status") == "pending":
            raise TimeoutError(f"none of {len(execution_ids)} execution(s) resolved within the suspense timeout")
        with self._lock:
            self._resolved[execution_ids[outcome["winner"]]] = outcome
        return outcome["winner"], outcome

    def put_asset(self, name: str | None, entries: list[dict]) -> dict:
        """Record an asset of this execution (its files already uploaded): {id, name, count, size}."""
        self.check_aborted()
        return self.transport.request("put_asset", {
            "execution": self.execution_id, "name": name, "entries": entries, "key": request_key()}).result()

    def cancel(self, execution_id: str) -> None:
        self.check_aborted()
        self.transport.request("cancel", {"execution": execution_id}).result()

    @contextlib.contextmanager
    def group(self, name: str | None) -> Iterator[None]:
        group_id = next(self._groups)
        self.transport.notify("group", {"execution": self.execution_id, "group": group_id, "name": name})
        token = _group.set(group_id)
        try:
            yield
        finally:
            _group.reset(token)


@contextlib.contextmanager
def suspense(timeout: float | None = None) -> Iterator[None]:
    """Within this block, `.result()` calls not ready within `timeout` seconds (None: at once)
    suspend the execution; it starts again from the top when the awaited result is ready."""
    from .options import seconds

    limit = 0.0 if timeout is None else seconds(timeout, "suspense timeout")
    token = _suspense.set(limit)
    try:
        yield
    finally:
        _suspense.reset(token)


def suspend(delay: Any = None) -> None:
    """Stop this execution now and run it again (from the top) after `delay`: seconds, a
    timedelta, or a datetime to resume at. Its worker slot is freed meanwhile."""
    import datetime as dt

    from .options import seconds

    if current_context() is None:
        raise RuntimeError("cf.suspend() can only be called inside a running workflow or task")
    if delay is None:
        execute_after = None
    elif isinstance(delay, dt.datetime):
        execute_after = (delay if delay.tzinfo else delay.astimezone()).timestamp()
    else:
        import time

        execute_after = time.time() + seconds(delay, "suspend delay")
    raise Suspending(execute_after)


def select(handles: Any, *, cancel_remaining: bool = False) -> tuple[Execution, list[Execution]]:
    """Wait for the first of `handles` to resolve; return it and the others (in their order).

    Already-resolved handles win in input order. `cancel_remaining=True` cancels the others.
    Inside `cf.suspense(t)` the wait is bounded by `t` and raises TimeoutError when it expires.
    Read the winner with `winner.result()` (no round trip)."""
    handles = list(handles)
    if not handles:
        raise ValueError("cf.select needs at least one execution handle")
    for handle in handles:
        if not isinstance(handle, Execution):
            raise TypeError(f"cf.select takes execution handles (from .submit()), not {type(handle).__name__}")
    context = current_context()
    if context is not None:
        index, _ = context.select([h.id for h in handles], cancel_remaining)
    else:
        index = _select_outside(handles, cancel_remaining)
    winner = handles[index]
    return winner, handles[:index] + handles[index + 1:]


def _select_outside(handles: list[Execution], cancel_remaining: bool) -> int:
    """Outside an execution: local handles (plain calls) are resolved already; a client's
    handles are raced by the server."""
    from .models import LocalExecution

    for index, handle in enumerate(handles):
        if isinstance(handle, LocalExecution):
            return index
    resolver = handles[0]._resolver
    race = getattr(resolver, "select", None)
    if race is None:
        raise RuntimeError("these execution handles are not attached to a coflux connection")
    outcome = race([h.id for h in handles], None, cancel_remaining)
    return outcome["winner"]

"""The execution context: what `submit`, `.result()` and friends talk to while a target runs."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from . import serialization
from .errors import (
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionCrashed,
    ExecutionTimeout,
    Suspending,
    make_execution_error,
)
from .models import Execution

if TYPE_CHECKING:
    from .target import Target


class Transport(Protocol):
    def request(self, op: str, params: dict) -> Future: ...
    def notify(self, op: str, params: dict) -> None: ...


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar("coflux_context", default=None)
_group: contextvars.ContextVar[int | None] = contextvars.ContextVar("coflux_group", default=None)
# Inside `cf.suspense(t)`: how long `.result()` may wait before the execution suspends.
_suspense: contextvars.ContextVar[float | None] = contextvars.ContextVar("coflux_suspense", default=None)


def current_context() -> ExecutionContext | None:
    return _current.get()


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

    @contextlib.contextmanager
    def activate(self) -> Iterator[ExecutionContext]:
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

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
            "type": target.kind, "args": args, "options": options, "key": uuid.uuid4().hex}
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


def decode_value(wire: dict, resolver: Any) -> Any:
    return serialization.decode(wire, lambda ref: Execution(ref["id"], ref.get("module", ""),
                                                            ref.get("target", ""), resolver))


def outcome_value(outcome: dict, resolver: Any) -> Any:
    """Turn a wait outcome from the server into the value, or raise what the caller should see."""
    status = outcome.get("status")
    execution_id = outcome.get("execution")
    if status == "value":
        return decode_value(outcome["value"], resolver)
    if status == "error":
        error = outcome.get("error") or {}
        raise make_execution_error(error.get("type", "builtins.Exception"), error.get("message", ""),
                                   error.get("frames"), execution_id)
    if status == "cancelled":
        raise ExecutionCancelled(f"execution {execution_id} was cancelled", execution_id=execution_id)
    if status == "timeout":
        raise ExecutionTimeout(f"execution {execution_id} timed out", execution_id=execution_id)
    if status == "abandoned":
        raise ExecutionAbandoned(f"execution {execution_id} was abandoned (its worker went away)",
                                 execution_id=execution_id)
    if status == "crashed":
        raise ExecutionCrashed(f"execution {execution_id} crashed", execution_id=execution_id)
    raise RuntimeError(f"unexpected outcome {status!r} for execution {execution_id}")

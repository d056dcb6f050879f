"""The execution context: the `Runtime` a worker installs while one of its executions runs,
what `submit`, `.result()`, logs, metrics and assets talk to (through coflux/runtime.py).

Layer: the runtime's implementation, above the handles and the targets and below the workers
(headless and kernel), which make one per execution and install it. It registers the blob
store's lookup with serialization (a worker's executions pass large values as blobs).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from . import blobs, runtime, serialization, shipping
from .errors import ExecutionCancelled, ExecutionTimeout, Suspending
from .models import Execution, decode_value, outcome_value
from .runtime import current as current_context
from .telemetry import Telemetry

__all__ = ["ExecutionContext", "current_context", "decode_value", "outcome_value"]

if TYPE_CHECKING:
    from .target import Target

# Large values of executions go to their server's blob store.
serialization.use_blob_store(blobs.for_values)


def request_key() -> str:
    """A key that lets the server recognise a re-sent request. Time first, then 64 random bits:
    the server's unique index on these keys then grows at its end, as a log does, instead of
    taking each new key at a random place (a million steps on, random keys made every insert
    touch pages no cache holds)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


class Transport(Protocol):
    def request(self, op: str, params: dict) -> Future: ...
    def notify(self, op: str, params: dict) -> None: ...


_group: contextvars.ContextVar[int | None] = contextvars.ContextVar("coflux_group", default=None)


class ExecutionContext(runtime.Runtime):
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

    def activate(self, *, whole_process: bool = False) -> runtime.install:
        """`with`: make this the current execution (of this thread; with `whole_process`, of every
        thread of the process that has none of its own)."""
        return runtime.install(self, whole_process=whole_process)

    @property
    def blobs(self) -> blobs.BlobClient | None:
        """The blob store of the server this execution's worker talks to: its connection's (a
        kernel), else the process's (a pool process is told its server with its executions)."""
        transport = self.transport
        for holder in (transport, getattr(transport, "connection", None), getattr(transport, "inner", None)):
            url = getattr(holder, "url", None)
            if isinstance(url, str) and url.startswith("http"):
                return blobs.configure(url, getattr(holder, "token", None))
        return blobs.default()

    def recorder(self, make: Callable[[runtime.Runtime], Any]) -> Any:
        recorder = self.metrics
        if recorder is None:
            with self._lock:
                if self.metrics is None:
                    self.metrics = make(self)
                recorder = self.metrics
        return recorder

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
        code_hash = target.code_hash()
        if code_hash is not None:
            params["code_hash"] = code_hash
        if shipping.should_ship(target):  # a cell's task that must run away from the kernel
            params["options"] = {**options, "code": shipping.ship(target)}
        group = _group.get()
        if group is not None:
            params["group"] = group
        return params

    def submit(self, target: Target, args: list[dict], options: dict) -> Execution:
        future = self.transport.request("submit", self._child_params(target, args, options))
        return Execution(future, target.module, target.name, self)

    def call(self, target: Target, args: list[dict], options: dict) -> Any:
        """Submit and wait in one round trip: what calling a target inside an execution does."""
        if runtime.suspense_limit() is not None:
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
        suspense = runtime.suspense_limit() if timeout is None else None
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
            "executions": execution_ids, "from": self.execution_id, "timeout": runtime.suspense_limit(),
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

    def cancel_many(self, ids: list[str]) -> None:
        """Executions and inputs in one request: cancelled in one transaction."""
        self.check_aborted()
        self.transport.request("cancel", {"executions": ids}).result()

    def prompt(self, params: dict) -> dict:
        self.check_aborted()
        return self.transport.request("prompt", {**params, "execution": self.execution_id}).result()

    @contextlib.contextmanager
    def group(self, name: str | None) -> Iterator[None]:
        group_id = next(self._groups)
        self.transport.notify("group", {"execution": self.execution_id, "group": group_id, "name": name})
        token = _group.set(group_id)
        try:
            yield
        finally:
            _group.reset(token)



"""The kernel worker: targets defined in a notebook's cells run in threads of its kernel.

`attach()` connects to the server named by COFLUX_SERVER/COFLUX_TOKEN (the Jupyter extension
sets both for kernels it starts). Re-running a cell re-declares targets. What users call
(`%load_ext coflux`, `cf.attach()`) is the session's `attach` (coflux/session.py), which also
makes runs display as their live views.

Layer: the workers (beside the headless worker, on the same base), above the client.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import config
from . import target as target_module
from .client import Client
from .connection import Connection
from .errors import ExecutionCancelled, ExecutionTerminated, ExecutionTimeout
from .worker.base import WorkerBase
from .worker.execute import run_execution
from .worker.slots import DEFAULT_MAX_PARKED, ParkingTransport

log = logging.getLogger("coflux.kernel")

_worker: KernelWorker | None = None
_lock = threading.Lock()


def current_worker() -> KernelWorker | None:
    return _worker


def _kernel_id() -> str | None:
    """This kernel's id in Jupyter (from its connection file `kernel-<id>.json`), if known."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    return name[len("kernel-"):-len(".json")] if name.startswith("kernel-") and name.endswith(".json") else None


def _default_module_name() -> str:
    session = os.environ.get("JPY_SESSION_NAME", "")
    stem = os.path.splitext(os.path.basename(session))[0] if session else ""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")
    return stem or "notebook"


class KernelWorker(WorkerBase):
    kind = "kernel"

    def __init__(self, url: str, token: str | None, *, module: str, workspace: str, concurrency: int,
                 max_parked: int = DEFAULT_MAX_PARKED) -> None:
        # `concurrency` threads run code at once; a thread blocked on a result is parked and its
        # slot goes to other work, so there are threads for the parked ones too (slots.py).
        super().__init__(concurrency=concurrency, max_parked=max_parked, workspace=workspace)
        self.module = module
        self._pool = ThreadPoolExecutor(concurrency + max_parked, thread_name_prefix="coflux-exec")
        self.connection = Connection(url, token, name="coflux-kernel", handshake=self._register,
                                     on_push=self._on_push)
        self.client = Client(connection=self.connection, workspace=workspace)
        self._running: set[str] = set()
        self._contexts: dict[str, Any] = {}
        self._threads: dict[str, int] = {}  # execution id -> id of the thread running it
        self._stopped: dict[str, str] = {}  # execution id -> "cancelled" | "timeout"
        self._running_lock = threading.Lock()
        target_module.set_main_module_alias(module)
        target_module.on_register(self._target_defined)

    def targets(self) -> dict[str, dict[str, dict]]:
        found = {name: t.definition() for (module, name), t in target_module.registered_targets().items()
                 if module == "__main__"}
        return {self.module: found} if found else {}

    async def _register(self, connection: Connection) -> None:
        with self._running_lock:
            running = sorted(self._running)
        await self._register_session(connection, name=os.environ.get("JPY_SESSION_NAME") or self.module,
                                     targets=self.targets(), running=running, kernel_id=_kernel_id())

    def _target_defined(self, target: Any) -> None:
        if target.fn.__module__ == "__main__":
            # Sent in order with later requests, so a run submitted right after the cell sees it.
            self.connection.request("declare", {"targets": self.targets()})

    def _on_push(self, message: dict) -> None:
        op = message.get("op")
        if op == "execute":
            with self._running_lock:
                if message["execution"] in self._running:
                    return  # sent again after a reconnect: already here
                self._running.add(message["execution"])
            self.gate.submit(message["execution"], lambda: self._pool.submit(self._execute, message),
                             urgent=bool(message.get("urgent")))
        elif op == "abort":
            self._stop(message["execution"], "cancelled")
        elif op == "resolved":
            context = self._contexts.get(message["parent"])
            if context is not None:
                context.deliver(message["child"], message)
        elif op == "events":
            self.client._on_push(message)

    def _execute(self, message: dict) -> None:
        execution_id = message["execution"]
        self._started(execution_id)
        timer = None
        if message.get("timeout"):
            timer = threading.Timer(float(message["timeout"]), self._stop, (execution_id, "timeout"))
            timer.daemon = True
            timer.start()
        with self._running_lock:
            self._threads[execution_id] = threading.get_ident()
        result = None
        try:
            try:
                transport = ParkingTransport(self.connection, self.gate, execution_id)
                result = run_execution(message, transport, main_alias=self.module, contexts=self._contexts)
            finally:
                with self._running_lock:
                    self._threads.pop(execution_id, None)
                if timer is not None:
                    timer.cancel()
                self.gate.finish(execution_id)
        except ExecutionTerminated:
            result = None  # stopped by a cancel or timeout, which the server already knows
        with self._running_lock:
            stopped = self._stopped.pop(execution_id, None)
            if result is None or stopped:
                self._running.discard(execution_id)
                return
        self._report(execution_id, result)

    def _report(self, execution_id: str, result: dict) -> None:
        def acked(_future: Any) -> None:
            with self._running_lock:
                self._running.discard(execution_id)
        self._send_result(result, acked)

    def _stop(self, execution_id: str, reason: str) -> None:
        """Threads cannot be killed: raise in the execution's thread at its next Python line
        (and at its next coflux call), and report a timeout at once."""
        if self.gate.withdraw(executions={execution_id}):  # it never started: nothing to stop
            self.gate.finish(execution_id)
            with self._running_lock:
                self._running.discard(execution_id)
            if reason == "timeout":
                self.connection.request("result", {"execution": execution_id, "kind": "timeout"})
            return
        with self._running_lock:
            if execution_id not in self._running or execution_id in self._stopped:
                return
            self._stopped[execution_id] = reason
            context = self._contexts.get(execution_id)
            if context is not None:
                context.aborted = reason
            thread_id = self._threads.get(execution_id)
            if thread_id is not None:
                error = ExecutionTimeout if reason == "timeout" else ExecutionCancelled
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))
        if reason == "timeout":
            self.connection.request("result", {"execution": execution_id, "kind": "timeout"})

    def close(self) -> None:
        target_module.off_register(self._target_defined)
        self.connection.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def attach(server: str | None = None, token: str | None = None, *, module: str | None = None,
           workspace: str | None = None, concurrency: int = 8, max_parked: int = DEFAULT_MAX_PARKED) -> KernelWorker:
    """Connect this kernel to the coflux server as a worker for targets defined in its cells."""
    global _worker
    with _lock:
        if _worker is not None:
            return _worker
        worker = KernelWorker(config.server_url(server), config.token(token),
                              module=module or _default_module_name(),
                              workspace=config.workspace(workspace), concurrency=concurrency,
                              max_parked=max_parked)
        worker.connection.start(wait=10)
        from .capture import install

        install(echo=False)  # a task's print() goes to its run, never into an unrelated cell
        _worker = worker
        return worker


def detach() -> None:
    global _worker
    with _lock:
        if _worker is not None:
            _worker.close()
            target_module.set_main_module_alias(None)
            _worker = None

"""Attach a notebook kernel as a worker: targets defined in cells run in threads of this kernel.

`%load_ext coflux` or `cf.attach()` connects to the server named by COFLUX_SERVER/COFLUX_TOKEN
(the Jupyter extension sets both for kernels it starts). Re-running a cell re-declares targets.
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
from .connection import Connection, MessageTooLarge
from .errors import ExecutionCancelled, ExecutionTerminated, ExecutionTimeout
from .worker.runtime import run_execution, undeliverable

log = logging.getLogger("coflux.kernel")

_worker: KernelWorker | None = None
_lock = threading.Lock()


def current_worker() -> KernelWorker | None:
    return _worker


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


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


class KernelWorker:
    def __init__(self, url: str, token: str | None, *, module: str, workspace: str, concurrency: int) -> None:
        self.module = module
        self.workspace = workspace
        self.concurrency = concurrency
        self.session_id: str | None = None
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="coflux-exec")
        self.connection = Connection(url, token, name="coflux-kernel", handshake=self._register,
                                     on_push=self._on_push)
        self.client = Client(connection=self.connection, workspace=workspace)
        self._running: set[str] = set()
        self._contexts: dict[str, Any] = {}
        self._threads: dict[str, int] = {}  # execution id -> id of the thread running it
        self._stopped: dict[str, str] = {}  # execution id -> "cancelled" | "timeout"
        self._running_lock = threading.Lock()
        target_module.main_module_alias = module
        target_module.on_register(self._target_defined)

    def targets(self) -> dict[str, dict[str, dict]]:
        found = {name: t.definition() for (module, name), t in target_module.registered_targets().items()
                 if module == "__main__"}
        return {self.module: found} if found else {}

    async def _register(self, connection: Connection) -> None:
        with self._running_lock:
            running = sorted(self._running)
        reply = await connection.request_async("register", {
            "session": self.session_id, "kind": "kernel", "name": os.environ.get("JPY_SESSION_NAME") or self.module,
            "workspace": self.workspace, "targets": self.targets(), "concurrency": self.concurrency,
            "running": running, "kernel_id": _kernel_id()})
        self.session_id = reply["session"]

    def _target_defined(self, target: Any) -> None:
        if target.fn.__module__ == "__main__":
            # Sent in order with later requests, so a run submitted right after the cell sees it.
            self.connection.request("declare", {"targets": self.targets()})

    def _on_push(self, message: dict) -> None:
        op = message.get("op")
        if op == "execute":
            with self._running_lock:
                self._running.add(message["execution"])
            self._pool.submit(self._execute, message)
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
                result = run_execution(message, self.connection, main_alias=self.module, contexts=self._contexts)
            finally:
                with self._running_lock:
                    self._threads.pop(execution_id, None)
                if timer is not None:
                    timer.cancel()
        except ExecutionTerminated:
            result = None  # stopped by a cancel or timeout, which the server already knows
        with self._running_lock:
            stopped = self._stopped.pop(execution_id, None)
            if result is None or stopped:
                self._running.discard(execution_id)
                return
        self._report(execution_id, result)

    def _report(self, execution_id: str, result: dict) -> None:
        future = self.connection.request("result", result)

        def acked(future: Any) -> None:
            if isinstance(future.exception(), MessageTooLarge):
                self._report(execution_id, undeliverable(result, future.exception()))
                return
            with self._running_lock:
                self._running.discard(execution_id)
        future.add_done_callback(acked)

    def _stop(self, execution_id: str, reason: str) -> None:
        """Threads cannot be killed: raise in the execution's thread at its next Python line
        (and at its next coflux call), and report a timeout at once."""
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
           workspace: str | None = None, concurrency: int = 8) -> KernelWorker:
    """Connect this kernel to the coflux server as a worker for targets defined in its cells."""
    global _worker
    with _lock:
        if _worker is not None:
            return _worker
        worker = KernelWorker(config.server_url(server), config.token(token),
                              module=module or _default_module_name(),
                              workspace=config.workspace(workspace), concurrency=concurrency)
        worker.connection.start(wait=10)
        _worker = worker
        return worker


def detach() -> None:
    global _worker
    with _lock:
        if _worker is not None:
            _worker.close()
            target_module.main_module_alias = None
            _worker = None


def load_ipython_extension(ipython: Any) -> None:
    worker = attach()
    print(f"coflux: kernel attached to {worker.connection.url} as module {worker.module!r}")


def unload_ipython_extension(ipython: Any) -> None:
    detach()

"""`coflux worker`: connects to the server, declares the modules' targets, and runs executions
in a pool of warm processes (killed and replaced when an execution is aborted or the process dies)."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections import deque
from typing import Any

from ..connection import Connection
from ..target import registered_targets
from .pool import child_main, encode_reply

log = logging.getLogger("coflux.worker")


class WorkerProcess:
    def __init__(self, worker: HeadlessWorker) -> None:
        self.worker = worker
        self.lock = threading.Lock()
        parent_end, child_end = multiprocessing.get_context("spawn").Pipe()
        self.pipe = parent_end
        self.process = multiprocessing.get_context("spawn").Process(
            target=child_main, args=(worker.modules, child_end, list(sys.path)), daemon=True,
            name="coflux-worker-process")
        self.process.start()
        child_end.close()
        self.execution: str | None = None
        self.ready = threading.Event()
        self.dead = False
        threading.Thread(target=self._read, name="coflux-relay", daemon=True).start()

    def send(self, message: tuple) -> None:
        with self.lock:
            self.pipe.send(message)

    def kill(self) -> None:
        self.dead = True
        try:
            self.process.kill()
        except Exception:
            pass

    def _read(self) -> None:
        connection = self.worker.connection
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                self.dead = True
                self.worker.process_exited(self)
                return
            kind = message[0]
            if kind == "req":
                _, rid, op, params = message
                future = connection.request(op, params)
                future.add_done_callback(lambda f, rid=rid: self._reply(rid, f))
            elif kind == "note":
                connection.notify(message[1], message[2])
            elif kind == "done":
                self.worker.finished(self, message[1])
            elif kind == "ready":
                self.ready.set()
                self.worker.process_ready(self)
            elif kind == "import_error":
                self.worker.import_failed(message[1])

    def _reply(self, rid: int, future: Any) -> None:
        ok, payload = encode_reply(future)
        try:
            self.send(("rep", rid, ok, payload))
        except (OSError, ValueError):
            pass  # the process was killed meanwhile


class HeadlessWorker:
    def __init__(self, modules: list[str], url: str, token: str | None, *, concurrency: int | None = None,
                 workspace: str = "default", provides: dict[str, list[str]] | None = None,
                 accepts: dict[str, list[str]] | None = None, name: str | None = None) -> None:
        self.modules = modules
        self.concurrency = concurrency or os.cpu_count() or 1
        self.workspace = workspace
        self.provides = provides or {}
        self.accepts = accepts or {}
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.session_id: str | None = None
        self._lock = threading.Lock()
        self._idle: deque[WorkerProcess] = deque()
        self._queue: deque[dict] = deque()
        self._running: dict[str, WorkerProcess] = {}
        self._unacked: set[str] = set()
        self._processes: list[WorkerProcess] = []
        self._stopping = threading.Event()
        self.fatal: str | None = None
        self.targets = self._discover()
        self.connection = Connection(url, token, name="coflux-worker", handshake=self._register,
                                     on_push=self._on_push)

    def _discover(self) -> dict:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        for name in self.modules:
            importlib.import_module(name)
        targets: dict[str, dict] = {}
        for (module, name), target in registered_targets().items():
            if module in self.modules:
                targets.setdefault(module, {})[name] = target.definition()
        for module in self.modules:
            if module not in targets:
                log.warning("module %s defines no workflows or tasks", module)
        return targets

    async def _register(self, connection: Connection) -> None:
        with self._lock:
            running = sorted(set(self._running) | self._unacked)
        reply = await connection.request_async("register", {
            "session": self.session_id, "kind": "headless", "name": self.name, "workspace": self.workspace,
            "targets": self.targets, "concurrency": self.concurrency, "provides": self.provides,
            "accepts": self.accepts, "running": running})
        self.session_id = reply["session"]
        log.info("registered as session %s with %d module(s)", self.session_id, len(self.targets))

    # ---------------------------------------------------------------- processes

    def start(self, wait: float | None = None) -> None:
        for _ in range(self.concurrency):
            self._processes.append(WorkerProcess(self))
        self.connection.start(wait=wait, fail_fast=False)

    def process_ready(self, process: WorkerProcess) -> None:
        with self._lock:
            self._idle.append(process)
        self._dispatch()

    def import_failed(self, text: str) -> None:
        self.fatal = f"a worker process could not import the modules:\n{text}"
        self._stopping.set()

    def process_exited(self, process: WorkerProcess) -> None:
        with self._lock:
            if process in self._idle:
                self._idle.remove(process)
            if process in self._processes:
                self._processes.remove(process)
            execution = process.execution
            process.execution = None
            if execution is not None:
                self._running.pop(execution, None)
        if execution is not None:  # died on its own while running (an abort clears `execution` first)
            self._report({"execution": execution, "kind": "crashed"})
        if not self._stopping.is_set():
            replacement = WorkerProcess(self)
            with self._lock:
                self._processes.append(replacement)

    def finished(self, process: WorkerProcess, result: dict) -> None:
        with self._lock:
            self._running.pop(result["execution"], None)
            process.execution = None
            self._idle.append(process)
        self._report(result)
        self._dispatch()

    def _report(self, result: dict) -> None:
        execution = result["execution"]
        with self._lock:
            self._unacked.add(execution)
        future = self.connection.request("result", result)

        def acked(_: Any) -> None:
            with self._lock:
                self._unacked.discard(execution)
        future.add_done_callback(acked)

    # ---------------------------------------------------------------- server pushes

    def _on_push(self, message: dict) -> None:
        op = message.get("op")
        if op == "execute":
            with self._lock:
                self._queue.append(message)
            self._dispatch()
        elif op == "abort":
            self._abort(message["execution"])
        elif op == "replaced":
            log.warning("another connection took over this worker's session")

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if not self._queue or not self._idle:
                    return
                process = self._idle.popleft()
                message = self._queue.popleft()
                process.execution = message["execution"]
                self._running[message["execution"]] = process
            try:
                process.send(("execute", message))
            except (OSError, ValueError):
                with self._lock:
                    self._queue.appendleft(message)
                    self._running.pop(message["execution"], None)
                    process.execution = None

    def _abort(self, execution_id: str) -> None:
        with self._lock:
            process = self._running.pop(execution_id, None)
            if process is None:
                self._queue = deque(m for m in self._queue if m["execution"] != execution_id)
                return
            process.execution = None
        process.kill()

    # ---------------------------------------------------------------- running

    def run_forever(self) -> int:
        def stop(*_: Any) -> None:
            self._stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.start(wait=None)
        while not self._stopping.wait(0.5):
            if self.connection._fatal is not None:
                self.fatal = str(self.connection._fatal)
                break
        self.shutdown()
        if self.fatal:
            print(f"coflux worker: {self.fatal}", file=sys.stderr)
            return 1
        return 0

    def shutdown(self) -> None:
        self._stopping.set()
        for process in list(self._processes):
            process.kill()
        self.connection.close()

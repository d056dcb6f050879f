"""`coflux worker`: connects to the server, declares the modules' targets, and runs executions
in a pool of warm processes (killed and replaced when an execution is aborted or the process dies).

All bookkeeping runs on the connection's event loop thread: the processes' pipes are watched
with `add_reader`, so relaying a request from user code to the server crosses no thread.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from typing import Any

from ..connection import Connection, MessageTooLarge
from ..target import registered_targets
from .pool import child_main, encode_reply
from .runtime import undeliverable

log = logging.getLogger("coflux.worker")

_spawn = multiprocessing.get_context("spawn")

RELEASE_AFTER = 0.25  # seconds a prefetched execution may wait for a process before it is handed back


class WorkerProcess:
    """One warm process and the parent's end of its pipe."""

    def __init__(self, modules: list[str]) -> None:
        parent_end, child_end = _spawn.Pipe()
        self.pipe = parent_end
        self.process = _spawn.Process(target=child_main, args=(modules, child_end, list(sys.path)),
                                      daemon=True, name="coflux-worker-process")
        self.process.start()
        child_end.close()
        self.execution: str | None = None
        self.ready = False

    def send(self, message: tuple) -> bool:
        try:
            self.pipe.send(message)
            return True
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        try:
            self.process.kill()
        except Exception:
            pass


class HeadlessWorker:
    def __init__(self, modules: list[str], url: str, token: str | None, *, concurrency: int | None = None,
                 workspace: str = "default", provides: dict[str, list[str]] | None = None,
                 accepts: dict[str, list[str]] | None = None, name: str | None = None) -> None:
        self.modules = modules
        self.concurrency = concurrency or os.cpu_count() or 1
        # Hold one queued execution per process, so the next one is here when a process frees up.
        self.prefetch = self.concurrency
        self.workspace = workspace
        self.provides = provides or {}
        self.accepts = accepts or {}
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.session_id: str | None = None
        self._idle: deque[WorkerProcess] = deque()
        self._queue: deque[tuple[dict, float]] = deque()  # prefetched executions, with arrival time
        self._release_timer: Any = None
        # execution id -> (when it was handed to a process, the timer that kills it at its timeout)
        self._deadlines: dict[str, tuple[float, Any]] = {}
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
        running = sorted(set(self._running) | self._unacked | {m["execution"] for m, _ in self._queue})
        reply = await connection.request_async("register", {
            "session": self.session_id, "kind": "headless", "name": self.name, "workspace": self.workspace,
            "targets": self.targets, "concurrency": self.concurrency, "prefetch": self.prefetch,
            "provides": self.provides,
            "accepts": self.accepts, "running": running})
        self.session_id = reply["session"]
        log.info("registered as session %s with %d module(s)", self.session_id, len(self.targets))

    # ---------------------------------------------------------------- processes (loop thread)

    def _spawn(self) -> None:
        process = WorkerProcess(self.modules)
        self._processes.append(process)
        self.connection.add_reader(process.pipe.fileno(), lambda: self._readable(process))

    def _readable(self, process: WorkerProcess) -> None:
        try:
            while process.pipe.poll():
                self._handle(process, process.pipe.recv())
        except (EOFError, OSError):
            self._exited(process)

    def _handle(self, process: WorkerProcess, message: tuple) -> None:
        kind = message[0]
        if kind == "req":
            _, rid, op, params = message
            future = self.connection.request(op, params)
            future.add_done_callback(lambda f: process.send(("rep", rid, *encode_reply(f))))
        elif kind == "note":
            self.connection.notify(message[1], message[2])
        elif kind == "done":
            result = message[1]
            self._clear_deadline(result["execution"])
            self._running.pop(result["execution"], None)
            process.execution = None
            self._idle.append(process)
            self._report(result)
            self._dispatch()
        elif kind == "ready":
            process.ready = True
            self._idle.append(process)
            self._dispatch()
        elif kind == "import_error":
            self.fatal = f"a worker process could not import the modules:\n{message[1]}"
            self._stopping.set()

    def _exited(self, process: WorkerProcess) -> None:
        self.connection.remove_reader(process.pipe.fileno())
        process.pipe.close()
        if process in self._idle:
            self._idle.remove(process)
        if process in self._processes:
            self._processes.remove(process)
        execution, process.execution = process.execution, None
        if execution is not None:  # died on its own while running (an abort clears `execution` first)
            self._running.pop(execution, None)
            self._report({"execution": execution, "kind": "crashed"})
        if not self._stopping.is_set():
            self._spawn()

    def _report(self, result: dict) -> None:
        execution = result["execution"]
        self._unacked.add(execution)
        future = self.connection.request("result", result)

        def done(future: Any) -> None:
            self._unacked.discard(execution)
            if isinstance(future.exception(), MessageTooLarge):
                self._report(undeliverable(result, future.exception()))
        future.add_done_callback(done)

    # ---------------------------------------------------------------- server pushes (loop thread)

    def _on_push(self, message: dict) -> None:
        op = message.get("op")
        if op == "execute":
            self._queue.append((message, time.monotonic()))
            self._dispatch()
        elif op == "resolved":
            process = self._running.get(message["parent"])
            if process is not None:
                process.send(("resolved", message))
        elif op == "abort":
            self._abort(message["execution"])
        elif op == "replaced":
            log.warning("another connection took over this worker's session")

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            process = self._idle.popleft()
            message, queued_at = self._queue.popleft()
            process.execution = message["execution"]
            self._running[message["execution"]] = process
            if not process.send(("execute", message)):
                self._queue.appendleft((message, queued_at))
                self._running.pop(message["execution"], None)
                process.execution = None
            elif message.get("timeout"):
                self._deadlines[message["execution"]] = (time.time(), self.connection.call_later(
                    float(message["timeout"]), self._timed_out, message["execution"]))
        if self._queue and self._release_timer is None:
            self._release_timer = self.connection.call_later(RELEASE_AFTER, self._release_stale)

    def _release_stale(self) -> None:
        """Hand back prefetched executions that waited too long for a free process, so an idle
        worker elsewhere can run them instead of them queueing behind long executions here."""
        self._release_timer = None
        cutoff = time.monotonic() - RELEASE_AFTER
        stale = [m["execution"] for m, queued_at in self._queue if queued_at <= cutoff]
        if stale:
            self._queue = deque((m, q) for m, q in self._queue if m["execution"] not in stale)
            self.connection.request("release", {"executions": stale})
        if self._queue:
            self._release_timer = self.connection.call_later(RELEASE_AFTER, self._release_stale)

    def _clear_deadline(self, execution_id: str) -> None:
        deadline = self._deadlines.pop(execution_id, None)
        if deadline is not None:
            deadline[1].cancel()

    def _timed_out(self, execution_id: str) -> None:
        """Past its timeout: kill the process running it (a fresh one replaces it) and say so."""
        started_at, _ = self._deadlines.pop(execution_id, (None, None))
        process = self._running.pop(execution_id, None)
        if process is None:
            return
        process.execution = None
        process.kill()
        self._report({"execution": execution_id, "kind": "timeout", "started_at": started_at})

    def _abort(self, execution_id: str) -> None:
        self._clear_deadline(execution_id)
        process = self._running.pop(execution_id, None)
        if process is None:
            self._queue = deque((m, q) for m, q in self._queue if m["execution"] != execution_id)
            return
        process.execution = None
        process.kill()

    # ---------------------------------------------------------------- running (main thread)

    def start(self, wait: float | None = None) -> None:
        self.connection.start(wait=wait, fail_fast=False)
        started = threading.Event()

        def spawn_all() -> None:
            for _ in range(self.concurrency):
                self._spawn()
            started.set()
        self.connection.call_soon(spawn_all)
        started.wait(60)

    def run_forever(self) -> int:
        def stop(*_: Any) -> None:
            self._stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.start(wait=None)
        was_connected, since = False, time.monotonic()
        while not self._stopping.wait(0.5):
            if self.connection._fatal is not None:
                self.fatal = str(self.connection._fatal)
                break
            connected = self.connection.connected
            if connected and not was_connected:
                print(f"coflux worker: connected (session {self.session_id})", flush=True)
            elif not connected and (was_connected or time.monotonic() - since > 2) and since >= 0:
                error = self.connection._last_error
                print(f"coflux worker: waiting for the server at {self.connection.url}"
                      + (f" ({error.__class__.__name__}: {error})" if error else "") + "; retrying", flush=True)
                since = -1.0  # said once per outage
            if connected:
                since = time.monotonic()
            was_connected = connected
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

"""Warm worker processes: each imports the modules once, then runs executions one after another.

Messages on the pipe (tuples): parent -> child `("execute", message)`, `("rep", id, ok, payload)`;
child -> parent `("ready", pid)`, `("req", id, op, params)`, `("note", op, params)`,
`("done", result)`, `("import_error", text)`.
"""

from __future__ import annotations

import importlib
import itertools
import os
import queue
import sys
import threading
import traceback
from concurrent.futures import Future
from multiprocessing.connection import Connection as Pipe
from typing import Any

from ..connection import RemoteError


class PipeTransport:
    """The execution context's link to the parent worker process, which relays to the server."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.contexts: dict[str, Any] = {}
        threading.Thread(target=self._read, name="coflux-pipe", daemon=True).start()

    def send(self, message: tuple) -> None:
        with self._lock:
            self.pipe.send(message)

    def request(self, op: str, params: dict) -> Future:
        future: Future = Future()
        rid = next(self._ids)
        self._pending[rid] = future
        self.send(("req", rid, op, params))
        return future

    def notify(self, op: str, params: dict) -> None:
        self.send(("note", op, params))

    def _read(self) -> None:
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: nothing left to report to
            if message[0] == "resolved":
                pushed = message[1]
                context = self.contexts.get(pushed["parent"])
                if context is not None:
                    context.deliver(pushed["child"], pushed)
            elif message[0] == "rep":
                _, rid, ok, payload = message
                future = self._pending.pop(rid, None)
                if future is not None:
                    if ok:
                        future.set_result(payload)
                    else:
                        future.set_exception(RemoteError(payload.get("code", "error"), payload.get("message", "")))
            else:
                self.commands.put(message)


def child_main(modules: list[str], pipe: Pipe, sys_path: list[str]) -> None:
    """Entry point of a pool process (spawned)."""
    sys.path[:] = sys_path
    from .runtime import run_execution

    transport = PipeTransport(pipe)
    try:
        for name in modules:
            importlib.import_module(name)
    except BaseException:
        transport.send(("import_error", traceback.format_exc()))
        return
    transport.send(("ready", os.getpid()))
    while True:
        command = transport.commands.get()
        if command[0] == "execute":
            result = run_execution(command[1], transport, contexts=transport.contexts)
            transport.send(("done", result))
        elif command[0] == "stop":
            return


def encode_reply(future: Future) -> tuple[bool, Any]:
    try:
        return True, future.result()
    except RemoteError as exc:
        return False, {"code": exc.code, "message": str(exc)}
    except Exception as exc:
        return False, {"code": "unavailable", "message": str(exc)}

"""Warm worker processes: each imports the modules once, then runs executions one after another.

Messages on the pipe (tuples): parent -> child `("execute", message)`, `("rep", id, ok, payload)`,
`("resolved", push)`, `("many", [message, ...])` (several at once: one wake-up);
child -> parent `("ready", pid, targets)`, `("req", id, op, params)` (id None: no reply wanted),
`("note", op, params)`, `("done", result)` (with the execution's last telemetry inside),
`("import_error", text)`.

Layer: the workers (execute.py runs each execution here).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from multiprocessing.connection import Connection as Pipe
from typing import Any

from ..errors import RemoteError


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

    def send_request(self, op: str, params: dict) -> None:
        """A request to the server whose answer nobody here reads (telemetry): the parent sends it
        (and re-sends it after a reconnect) like any other, but sends no reply back down the pipe."""
        self.send(("req", None, op, params))

    def send_done(self, result: dict) -> None:
        self.send(("done", result))

    def _read(self) -> None:
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: nothing left to report to
            if message[0] == "many":
                for item in message[1]:
                    self._received(item)
            else:
                self._received(message)

    def _received(self, message: tuple) -> None:
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


def expand_packages(names: list[str]) -> list[str]:
    """The modules a worker hosts for `names`: each one, and for a package every module inside
    it, at any depth (`coflux worker mypackage`, as Coflux discovers them). Imports them."""
    import pkgutil

    from .import_errors import import_modules

    found: list[str] = []
    for name in names:
        import_modules([name])  # a failure raises ModuleImportError with the user's frames only
        found.append(name)
        path = getattr(sys.modules[name], "__path__", None)
        if path is not None:  # a package: walk it (its subpackages are imported to be walked)
            found.extend(info.name for info in pkgutil.walk_packages(path, prefix=name + ".")
                         if not info.name.rsplit(".", 1)[-1].startswith("_"))
    return list(dict.fromkeys(found))


def discover_targets(modules: list[str]) -> dict[str, dict[str, dict]]:
    """Import the modules and describe the targets they define: {module: {name: definition}}."""
    from ..target import registered_targets
    from .import_errors import import_modules

    import_modules(modules)  # a failure raises ModuleImportError with the user's frames only
    targets: dict[str, dict] = {}
    for (module, name), target in registered_targets().items():
        if module in modules:
            targets.setdefault(module, {})[name] = target.definition()
    return targets


def child_main(modules: list[str], pipe: Pipe, sys_path: list[str]) -> None:
    """Entry point of a pool process (spawned). It reports the targets it found, so that a
    reload (`--dev`) learns the new code's targets from the process that will run it."""
    leave_stop_signals_to_parent()  # first: before any user code is imported
    # Absolute: each execution runs in its own working directory (in_fresh_workdir).
    sys.path[:] = [os.path.abspath(p) for p in sys_path]
    from .execute import run_execution

    transport = PipeTransport(pipe)
    from ..capture import install

    install(echo=True)  # print() in an execution is its log; the worker's terminal still shows it
    try:
        targets = discover_targets(modules)
    except BaseException as exc:
        from .import_errors import describe_import_failure

        transport.send(("import_error", describe_import_failure(exc)))
        return
    transport.send(("ready", os.getpid(), targets))
    while True:
        command = transport.commands.get()
        if command[0] == "execute":
            with in_fresh_workdir(command[1]):
                result = run_execution(command[1], transport, contexts=transport.contexts, whole_process=True)
            transport.send_done(result)
        elif command[0] == "stop":
            return


# What stops a worker: the worker process drains on them, its pool processes leave them to it.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Around starting a pool process, in the worker: the process starts with SIGINT and SIGTERM
    blocked (a new process inherits the mask of the thread that starts it), so one that arrives
    while it starts up waits until it has its handlers (leave_stop_signals_to_parent), as
    multiprocessing does for its resource tracker. That tracker is started first: starting it
    unblocks these signals on this thread. The worker's main thread still gets them meanwhile."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def leave_stop_signals_to_parent() -> None:
    """SIGINT and SIGTERM do not stop a pool process: the worker process decides. A terminal's
    Ctrl-C reaches the whole process group and a service manager's stop (systemd's default
    KillMode=control-group) every process of the service; the worker drains on the first signal,
    so the execution running here must finish, and it stops its processes itself (SIGKILL) once
    drained or on a second signal. We stay in the worker's process group, so Ctrl-Z, SIGSTOP and
    `kill -9 -PGID` still act on the whole worker. A handler that does nothing rather than
    SIG_IGN: a handler is reset to the default on exec, so programs a task starts keep the usual
    signals (an ignored signal would be inherited, and their `terminate()` would do nothing).
    A task that installs its own handler for these signals gets them from then on (in this
    process): its choice. Then the signals are unblocked (see stop_signals_blocked): one that
    came while this process started up is handled, by doing nothing."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _left_to_parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _left_to_parent(signum: int, frame: Any) -> None:
    """Nothing to do: the worker process handles the signal (see leave_stop_signals_to_parent)."""


WORKDIR_PREFIX = "coflux-exec-"


_blob_server: tuple | None = None  # the server blob transfers go to (set once, not per execution)
_workdir: str | None = None  # this process's working directory, empty between executions


@contextlib.contextmanager
def in_fresh_workdir(message: dict) -> Iterator[str]:
    """Run one execution in an empty working directory of its own (`coflux-exec-<pid>-*`), so
    `cf.asset()` sees only the files this execution wrote, and files it leaves are removed.
    A directory the previous execution left empty is as good as a new one and is used again:
    making and removing a directory per execution cost more than a trivial task (measured:
    ~0.35 ms here). The process stays in it between executions (nothing else here uses the
    working directory), which spares a `getcwd` and a `chdir` back per execution. The parent
    removes it when the process ends. The server URL and token that come with the first
    execution make blob uploads go straight to the server over HTTP (a large value never
    crosses the pipe)."""
    global _blob_server, _workdir
    server = (message.get("server"), message.get("token"))
    if server[0] and server != _blob_server:
        from .. import blobs

        blobs.configure(server[0], server[1])
        _blob_server = server
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    workdir = _workdir
    try:
        os.chdir(workdir)  # again each time: the previous execution may have changed directory
    except OSError:  # removed from under us: a new one
        workdir = _workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
        os.chdir(workdir)
    try:
        yield workdir
    finally:
        try:
            with os.scandir(workdir) as entries:
                left = next(entries, None) is not None
        except OSError:
            left = True
        if left:  # it wrote files: they go, and the next execution gets a new directory
            os.chdir(os.path.dirname(workdir))
            shutil.rmtree(workdir, ignore_errors=True)
            _workdir = None


def remove_workdirs(pid: int | None) -> None:
    """Remove what a killed pool process left of its working directories (called by the parent)."""
    if pid:
        pattern = os.path.join(tempfile.gettempdir(), f"{WORKDIR_PREFIX}{pid}-*")
        for path in glob.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def encode_reply(future: Future) -> tuple[bool, Any]:
    try:
        return True, future.result()
    except RemoteError as exc:
        return False, {"code": exc.code, "message": str(exc)}
    except Exception as exc:
        return False, {"code": "unavailable", "message": str(exc)}

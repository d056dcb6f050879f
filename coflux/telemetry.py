"""What running code reports besides its result: log lines and metric points, batched.

Each execution context owns a `Telemetry` buffer. Entries go out as one `telemetry` request
when 100 have gathered, when the oldest is half a second old (one flusher thread per process
wakes for that), and when the execution ends, before its result, so a viewer never sees a
result before the lines that led to it. Nothing here blocks on the server: a notification is
queued on the connection and the code goes on.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Protocol

FLUSH_COUNT = 100
FLUSH_AFTER = 0.5  # seconds

LEVELS = ("debug", "info", "warning", "error", "stdout", "stderr")


class _Transport(Protocol):
    def request(self, op: str, params: dict) -> Any: ...


class Telemetry:
    def __init__(self, execution_id: str, transport: _Transport) -> None:
        self.execution_id = execution_id
        self.transport = transport
        self._lock = threading.Lock()
        self._logs: list[list[Any]] = []  # [level, template, values, at]
        self._definitions: dict[str, dict] = {}  # key -> {group, scale}, not sent yet
        self._points: list[list[Any]] = []  # [key, x, value]
        self._since: float | None = None  # when the oldest unsent entry was added
        self._batches = 0
        _live.add(self)

    def log(self, level: str, template: str | None, values: dict[str, Any] | None) -> None:
        with self._lock:
            self._logs.append([level, template, values or None, time.time()])
            full = self._added()
        if full:
            self.flush()

    def define(self, key: str, definition: dict) -> None:
        with self._lock:
            self._definitions[key] = definition

    def point(self, key: str, x: float, value: float) -> None:
        with self._lock:
            self._points.append([key, x, value])
            full = self._added()
        if full:
            self.flush()

    def _added(self) -> bool:
        if self._since is None:
            self._since = time.monotonic()
            _wake_flusher()
        return len(self._logs) + len(self._points) >= FLUSH_COUNT

    def due(self, now: float) -> bool:
        since = self._since
        return since is not None and now - since >= FLUSH_AFTER

    def flush(self) -> None:
        with self._lock:
            if not (self._logs or self._points or self._definitions):
                return
            self._batches += 1
            # A request, not a notification: it is re-sent after a reconnect (a server restart
            # loses no line), and its batch number lets the server write it only once.
            params: dict[str, Any] = {"execution": self.execution_id, "batch": self._batches}
            if self._logs:
                params["logs"] = self._logs
            if self._definitions:
                params["definitions"] = self._definitions
            if self._points:
                params["points"] = self._points
            self._logs, self._points, self._definitions, self._since = [], [], {}, None
            # Under the lock: two flushes of one execution must reach the server in order. A pool
            # process's transport can send it without the answer coming back (nobody reads it).
            send = getattr(self.transport, "send_request", None)
            if send is not None:
                send("telemetry", params)
            else:
                self.transport.request("telemetry", params)

    def close(self) -> None:
        self.flush()
        _live.discard(self)


_live: weakref.WeakSet[Telemetry] = weakref.WeakSet()
_flusher_lock = threading.Lock()
_flusher_wake = threading.Event()
_flusher: threading.Thread | None = None
# The flusher sleeps with no timeout (nothing pending): only then must a first entry wake it.
# While it waits for the oldest pending buffer to come due, a newer one can wait too, which
# spares a thread switch per execution (most end, and flush, within the half second).
_flusher_idle = False


def _wake_flusher() -> None:
    global _flusher
    if _flusher is None:
        with _flusher_lock:
            if _flusher is None:
                _flusher = threading.Thread(target=_flush_loop, name="coflux-telemetry", daemon=True)
                _flusher.start()
    if _flusher_idle:
        _flusher_wake.set()


def _pending() -> list[Telemetry]:
    return [t for t in list(_live) if t._since is not None]


def _flush_loop() -> None:
    """Flush buffers whose oldest entry is half a second old. Sleeps while nothing is pending."""
    global _flusher_idle
    while True:
        _flusher_idle = True
        if not _pending():  # looked at after saying it sleeps: an entry added meanwhile wakes it
            _flusher_wake.wait()
        _flusher_idle = False
        _flusher_wake.clear()
        while True:
            now = time.monotonic()
            pending = _pending()
            if not pending:
                break
            for telemetry in pending:
                if telemetry.due(now):
                    try:
                        telemetry.flush()
                    except Exception:
                        pass  # the connection is gone: nothing to report to
            oldest = min((t._since for t in pending if t._since is not None), default=None)
            if oldest is None:
                break
            _flusher_wake.wait(max(0.01, FLUSH_AFTER - (time.monotonic() - oldest)))
            _flusher_wake.clear()

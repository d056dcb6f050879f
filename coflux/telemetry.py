"""What running code reports besides its result: log lines and metric points, batched.

Each execution context owns a `Telemetry` buffer. Entries go out as one `telemetry` request
when 100 have gathered and before the oldest is half a second old (one flusher thread per
process looks every quarter of a second). What is left when the execution ends rides in its
`result` request, which the server records after it, so a viewer never sees a result before
the lines that led to it. Nothing here blocks on the server: a request is queued on the
connection and the code goes on.

Layer: a leaf (orjson); each running execution's context owns one (coflux/context.py).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from typing import Any, Protocol

import orjson

FLUSH_COUNT = 100
FLUSH_AFTER = 0.5  # seconds

# Non-ASCII characters stay as they are (shorter than \u escapes): the server stores the text.
_json_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _dumps(value: Any) -> tuple[str, bool]:
    """`value` as compact JSON text, and whether it holds integers beyond 64 bits: by orjson (a
    tenth of the time), else by Python's json (such integers, a lone surrogate) with the same
    output. The server parses a text flagged `wide_ints` with Python's json (exact integers)."""
    try:
        return orjson.dumps(value).decode(), False
    except TypeError:
        return _json_dumps(value), True


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
            if self._since is None:
                self._first_entry()
            full = len(self._logs) + len(self._points) >= FLUSH_COUNT
        if full:
            self.flush()

    def define(self, key: str, definition: dict) -> None:
        with self._lock:
            self._definitions[key] = definition

    def point(self, key: str, x: float, value: float) -> None:
        with self._lock:
            self._points.append([key, x, value])
            if self._since is None:
                self._first_entry()
            full = len(self._logs) + len(self._points) >= FLUSH_COUNT
        if full:
            self.flush()

    def _first_entry(self) -> None:
        self._since = time.monotonic()
        if _flusher is None:
            _wake_flusher()

    def due(self, now: float) -> bool:
        since = self._since
        return since is not None and now - since >= TICK

    def flush(self) -> None:
        with self._lock:
            params = self._take()
            if params is None:
                return
            # A request, not a notification: it is re-sent after a reconnect (a server restart
            # loses no line), and its batch number lets the server write it only once. Sent under
            # the lock: two flushes of one execution must reach the server in order. A pool
            # process's transport can send it without the answer coming back (nobody reads it).
            send = getattr(self.transport, "send_request", None)
            if send is not None:
                send("telemetry", params)
            else:
                self.transport.request("telemetry", params)

    def _take(self) -> dict[str, Any] | None:
        """(Under the lock) what is buffered, as the params of a `telemetry` request."""
        if not (self._logs or self._points or self._definitions):
            return None
        self._batches += 1
        params: dict[str, Any] = {"execution": self.execution_id, "batch": self._batches}
        # Lines and points go as JSON text, encoded once here: the worker's parent passes the
        # text on as a string, and the server stores it as it came when every entry is good.
        wide = False
        if self._logs:
            params["logs_json"], wide = _dumps(self._logs)
        if self._definitions:
            params["definitions"] = self._definitions
        if self._points:
            params["points_json"], wide_points = _dumps(self._points)
            wide = wide or wide_points
        if wide:
            params["wide_ints"] = True
        self._logs, self._points, self._definitions, self._since = [], [], {}, None
        return params

    def close(self, *, final: bool = False) -> dict[str, Any] | None:
        """The execution ended. With `final`, what is left is returned unsent, for its result to
        carry (one request, one reply); otherwise it is sent."""
        _live.discard(self)
        if not final:
            self.flush()
            return None
        with self._lock:
            return self._take()


_live: weakref.WeakSet[Telemetry] = weakref.WeakSet()
_flusher_lock = threading.Lock()
_flusher: threading.Thread | None = None
# The flusher looks every TICK seconds and sends what has waited TICK or more, so no entry waits
# FLUSH_AFTER. It is never woken by an entry: most executions end, and flush, sooner, and waking
# a thread per execution cost more than the execution's own logging (a GIL hand-over each time).
TICK = FLUSH_AFTER / 2


def _wake_flusher() -> None:
    """Start the flusher on the first entry of the process (it then runs on its own clock)."""
    global _flusher
    if _flusher is None:
        with _flusher_lock:
            if _flusher is None:
                _flusher = threading.Thread(target=_flush_loop, name="coflux-telemetry", daemon=True)
                _flusher.start()


def _flush_loop() -> None:
    """Flush the buffers whose oldest entry has waited a tick, every tick."""
    while True:
        time.sleep(TICK)
        now = time.monotonic()
        for telemetry in list(_live):
            if telemetry.due(now):
                try:
                    telemetry.flush()
                except Exception:
                    pass  # the connection is gone: nothing to report to

"""Notebook widgets: a live view of a run that keeps updating while you work in other cells.

`RunWidget(run)` subscribes to the run's events (`run:<id>`) on the run's client. Events arrive on
the client's connection thread; they are merged under a lock and pushed to the front end by
re-assigning traits (in-place mutation would not sync), once per WebSocket frame (a flush queued
on the connection's loop runs after the whole frame is dispatched), so a large fan-out costs one
update per server batch rather than one per event.

Result events carry no values, so once the run's status is "value" the widget asks the server for
the run's outcome (one `wait` with a zero timeout, answered on the connection thread) and shows a
short display form of it (`serialization.to_display`: nothing is unpickled).
"""

from __future__ import annotations

import pathlib
import threading
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from .runview import RunView
from .serialization import to_display

if TYPE_CHECKING:
    from .client import Run

_STATIC = pathlib.Path(__file__).parent / "static"

FLUSH_DELAY = 0.05  # coalescing window when there is no connection loop to queue the flush on
VALUE_CHARS = 300  # the run's value is shown up to this many characters


def value_text(wire: dict) -> str:
    """A short one-line display form of a wire value."""
    try:
        text = repr(to_display(wire))
    except Exception:  # a malformed value must not break the display
        text = "<value>"
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "\u2026"


class RunWidget(anywidget.AnyWidget):
    """Live status of every step of a run: target, execution id, status, timing, error."""

    _esm = _STATIC / "run_widget.js"
    _css = _STATIC / "run_widget.css"

    run_id = traitlets.Unicode("").tag(sync=True)
    module = traitlets.Unicode("").tag(sync=True)
    target = traitlets.Unicode("").tag(sync=True)
    # The run's status: its first step's (pending, assigned, running, value, error, ...).
    status = traitlets.Unicode("pending").tag(sync=True)
    # One entry per step (its latest attempt), in step order.
    steps = traitlets.List(traitlets.Dict()).tag(sync=True)
    # The run's value (a short display form) once its status is "value".
    value = traitlets.Unicode("").tag(sync=True)
    # Set when live updates could not be set up.
    error = traitlets.Unicode("").tag(sync=True)
    # False while the connection to the server is down (the view says so; it resumes by itself).
    connected = traitlets.Bool(True).tag(sync=True)
    # The latest warning about the run (e.g. a worker that may park no more blocked executions).
    warning = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run: Run | None = None, *, subscribe: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._view = RunView()  # the one fold of run events every viewer shares (runview.py)
        self._loaded = False
        self._buffer: list[dict] = []
        self._timer: threading.Timer | None = None
        self._flush_queued = False
        self._value_requested = False
        self._closed = False
        self._run = run
        self._subscribed = False
        if run is None:
            return
        self.run_id, self.module, self.target = run.id, run.module, run.target
        self._view.run_id = run.id
        if subscribe:
            try:
                snapshot = run.client.subscribe(f"run:{run.id}", self.handle_event)
                self._subscribed = True
            except Exception as exc:  # a display should not fail the cell; say why it is static
                self.error = f"live updates unavailable: {exc}"
                self._loaded = True
                return
            self.load_snapshot(snapshot)

    # ------------------------------------------------------------------ state updates

    def load_snapshot(self, snapshot: dict) -> None:
        """Merge a `get_run` snapshot, then the events that arrived while it was being read."""
        with self._lock:
            self._view.load(snapshot)
            self.run_id = self._view.run_id or self.run_id
            self.module = self._view.module or self.module
            self.target = self._view.target or self.target
            buffered, self._buffer = self._buffer, []
            for event in buffered:
                self._view.apply(event)
            self._loaded = True
        self.flush()

    def handle_event(self, event: dict) -> None:
        """A `run:<id>` event (from the client's connection thread)."""
        if event.get("type") == "connection":
            self.connected = bool(event.get("connected"))
            return
        with self._lock:
            if not self._loaded:
                self._buffer.append(event)
                return
            if not self._view.apply(event) or self._flush_queued:
                return
            self._flush_queued = True
        connection = getattr(getattr(self._run, "client", None), "connection", None)
        if connection is not None and hasattr(connection, "call_soon"):
            connection.call_soon(self.flush)  # after the rest of this frame's events
        else:
            with self._lock:
                self._timer = threading.Timer(FLUSH_DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Push the merged state to the front end (re-assigning the traits)."""
        with self._lock:
            self._timer = None
            self._flush_queued = False
            if not self._view.run_id:
                self._view.run_id = self.run_id
            steps = self._view.ordered_steps()
            status = self._view.status()
            warning = self._view.warning() if status in ("pending", "running", "assigned") else ""
            fetch = status == "value" and not self._value_requested
            if status == "value":
                self._value_requested = True
            else:
                self._value_requested = False  # e.g. a re-run: the value shown would be stale
        with self.hold_sync():
            self.steps = steps
            self.status = status
            self.warning = warning
            if status != "value":
                self.value = ""
        if fetch:
            self._fetch_value()

    def _fetch_value(self) -> None:
        connection = getattr(getattr(self._run, "client", None), "connection", None)
        if connection is None or not hasattr(connection, "request"):
            return
        try:
            future = connection.request("wait", {"execution": self._run.execution_id, "timeout": 0})
        except Exception:
            return
        future.add_done_callback(self._value_arrived)

    def _value_arrived(self, future: Any) -> None:
        try:
            outcome = future.result()
        except Exception:
            return  # the connection went away; the status still says "value"
        if self._closed or outcome.get("status") != "value" or "value" not in outcome:
            return
        with self._lock:
            current = self._value_requested
        if current:
            self.value = value_text(outcome["value"])

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._closed = True
        if getattr(self, "_subscribed", False) and self._run is not None:
            self._subscribed = False
            try:
                self._run.client.unsubscribe(f"run:{self._run.id}", self.handle_event)
            except Exception:
                pass  # the connection is gone already
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
        super().close()

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return f"<RunWidget {self.run_id} {self.module}/{self.target}: {self.status}" + \
            (f" ({summary})" if summary else "") + ">"

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

from .serialization import to_display

if TYPE_CHECKING:
    from .client import Run

_STATIC = pathlib.Path(__file__).parent / "static"

# Within one attempt a status only moves forward (events may arrive after the snapshot has them).
_RANK = {"pending": 0, "assigned": 1, "running": 2}
FINAL = 3
FLUSH_DELAY = 0.05  # coalescing window when there is no connection loop to queue the flush on
VALUE_CHARS = 300  # the run's value is shown up to this many characters


def _rank(status: str) -> int:
    return _RANK.get(status, FINAL)


def _short_type(error_type: str) -> str:
    return error_type.rsplit(".", 1)[-1] if error_type.startswith("builtins.") else error_type


def _error_text(error: dict | None) -> str:
    if not error:
        return ""
    return f"{_short_type(str(error.get('type', 'Error')))}: {error.get('message', '')}"


def value_text(wire: dict) -> str:
    """A short one-line display form of a wire value."""
    try:
        text = repr(to_display(wire))
    except Exception:  # a malformed value must not break the display
        text = "<value>"
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "\u2026"


def _step_of(execution_id: str) -> tuple[str, int]:
    step_id, _, attempt = execution_id.rpartition(":")
    return step_id, int(attempt or 1)


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

    def __init__(self, run: Run | None = None, *, subscribe: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._steps: dict[str, dict] = {}
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
            self.run_id = snapshot.get("id", self.run_id)
            self.module = snapshot.get("module", self.module)
            self.target = snapshot.get("target", self.target)
            for step in snapshot.get("steps", []):
                executions = step.get("executions") or []
                if not executions:
                    continue
                last = executions[-1]
                result = last.get("result")
                if result:
                    status = result["kind"]
                elif last.get("started_at"):
                    status = "running"
                elif last.get("assigned_at"):
                    status = "assigned"
                else:
                    status = "pending"
                self._merge(step["id"], last["id"], {
                    "number": step.get("number"), "module": step.get("module", ""),
                    "target": step.get("target", ""), "kind": step.get("type", ""),
                    "parent": step.get("parent"), "status": status,
                    "error": _error_text(result.get("error")) if result else "",
                    "successor": (result or {}).get("successor") or "",
                    "assigned_at": last.get("assigned_at"), "started_at": last.get("started_at"),
                    "finished_at": (result or {}).get("at")})
            buffered, self._buffer = self._buffer, []
            for event in buffered:
                self._apply(event)
            self._loaded = True
        self.flush()

    def handle_event(self, event: dict) -> None:
        """A `run:<id>` event (from the client's connection thread)."""
        with self._lock:
            if not self._loaded:
                self._buffer.append(event)
                return
            self._apply(event)
            if self._flush_queued:
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

    def _apply(self, event: dict) -> None:
        kind = event.get("type")
        execution = event.get("execution")
        if not execution:
            return
        step_id = event.get("step") or _step_of(execution)[0]
        if kind == "step":
            self._merge(step_id, execution, {
                "number": event.get("number"), "module": event.get("module", ""),
                "target": event.get("target", ""), "kind": event.get("kind", ""),
                "parent": event.get("parent"), "status": "pending"})
        elif kind == "assigned":
            # Workers start an execution when it is assigned; they report `started_at` only
            # with the result, so live views time a step from its assignment.
            self._merge(step_id, execution, {"status": "assigned", "assigned_at": event.get("at")})
        elif kind == "started":
            self._merge(step_id, execution, {"status": "running", "started_at": event.get("at")})
        elif kind == "result":
            self._merge(step_id, execution, {
                "status": event.get("kind", "value"), "error": _error_text(event.get("error")),
                "successor": event.get("successor") or "", "finished_at": event.get("at")})

    def _merge(self, step_id: str, execution: str, fields: dict) -> None:
        attempt = _step_of(execution)[1]
        entry = self._steps.get(step_id)
        if entry is None or attempt > entry["attempt"]:
            base = entry or {"step": step_id, "number": int(step_id.rpartition(":")[2] or 0),
                             "module": "", "target": "", "kind": "", "parent": None}
            entry = {**base, "execution": execution, "attempt": attempt, "status": "pending", "error": "",
                     "successor": "", "assigned_at": None, "started_at": None, "finished_at": None}
            self._steps[step_id] = entry
        elif attempt < entry["attempt"]:
            return  # a late event for an attempt that has been superseded
        status = fields.get("status")
        if status is not None and _rank(status) < _rank(entry["status"]):
            fields = {k: v for k, v in fields.items() if k != "status"}
        for key, value in fields.items():
            if value is not None or key not in entry:
                entry[key] = value

    def flush(self) -> None:
        """Push the merged state to the front end (re-assigning the traits)."""
        with self._lock:
            self._timer = None
            self._flush_queued = False
            steps = [dict(s) for s in sorted(self._steps.values(), key=lambda s: s["number"] or 0)]
            status = self._run_status()
            fetch = status == "value" and not self._value_requested
            if status == "value":
                self._value_requested = True
            else:
                self._value_requested = False  # e.g. a re-run: the value shown would be stale
        with self.hold_sync():
            self.steps = steps
            self.status = status
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

    def _run_status(self) -> str:
        seen: set[str] = set()
        entry = self._steps.get(f"{self.run_id}:1")
        while entry is not None and entry["step"] not in seen:
            seen.add(entry["step"])
            successor = entry.get("successor")
            if not successor or entry["status"] in ("value", "error"):
                return entry["status"]
            entry = self._steps.get(_step_of(successor)[0])  # a retry or cached result in this run
        return "pending" if entry is None else entry["status"]

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

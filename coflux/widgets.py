"""Notebook widgets: the run view, and the status table it falls back to.

`RunView` is the rich view (graph, timeline, logs, metrics, assets, step panel): an anywidget whose
front-end (coflux/static/runview.js, built from jupyter_ext/frontend) talks to the server itself
and follows the run live, so the kernel holds no subscription for it. Its traits say which run,
where the API is (`api_base`: the Jupyter mount's path, resolved against the page's origin and
authenticated by Jupyter's cookie, or a headless server's absolute URL with `token`), which part
to show and the run's Studio link. `run_view(run)` is what displaying a run shows: the RunView, or,
without a front-end build, the status table below with a note how to build.

`RunWidget(run)` (the status table) subscribes to the run's events (`run:<id>`) on the run's
client. Events arrive on the client's connection thread; they are merged under a lock and pushed
to the front end by re-assigning traits (in-place mutation would not sync), once per WebSocket
frame (a flush queued on the connection's loop runs after the whole frame is dispatched), so a
large fan-out costs one update per server batch rather than one per event. Result events carry
no values, so once the run's status is "value" the widget asks the server for the run's outcome
(one `wait` with a zero timeout, answered on the connection thread) and shows a short display form
of it (`serialization.to_display`: nothing is unpickled).

`metrics_figure(series)` draws a run's metrics (`Client.metrics(run)`) as a plotly Figure.

Layer: the widgets, above the client (beside the workers); `Run`'s display methods reach them
through the session glue (coflux/session.py), never by importing this module.
"""

from __future__ import annotations

import os
import pathlib
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from . import run_output, runtime
from .runview import RunView as RunFold
from .serialization import to_display

if TYPE_CHECKING:
    import plotly.graph_objects

    from .client import Run

_STATIC = pathlib.Path(__file__).parent / "static"
BUILD_COMMAND = "npm --prefix jupyter_ext/frontend ci && npm --prefix jupyter_ext/frontend run build"
PARTS = ("", "graph", "timeline", "logs", "metrics", "assets")
# Set by the Jupyter extension for the kernels it starts: the server URL of its own mount.
JUPYTER_MOUNT_ENV = "COFLUX_JUPYTER_MOUNT"

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
    # A standing remark (e.g. that the rich view is not built), shown below the table.
    note = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run: Run | None = None, *, subscribe: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._view = RunFold()  # the one fold of run events every viewer shares (runview.py)
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
            future = connection.request("wait", {"run": self._run.id, "timeout": 0})  # its latest root attempt
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


# ---------------------------------------------------------------------- the rich view

def built() -> bool:
    """Whether the front-end build put the run view's module here."""
    return (_STATIC / "runview.js").is_file()


# Without a build RunView still loads (anywidget reads its module when the class is defined), and
# says what to do; `run_view` shows the status table instead.
_UNBUILT_ESM = (
    "export default { render({ model, el }) {"
    " el.textContent = 'The coflux run view is not built: run ' + " + repr(BUILD_COMMAND) +
    " + ' and restart the kernel.'; } };")


def endpoints(run: Run) -> tuple[str, str, str]:
    """(api_base, token, studio_url) for a view of `run` in the browser.

    A kernel of the Jupyter server that hosts coflux (the extension's mount) gives the mount's
    path: the browser resolves it against its own origin and Jupyter's login authenticates it (no
    token in the page). Any other server is reached at its absolute URL with the client's token."""
    url = run.client.url
    url = url if url.endswith("/") else url + "/"
    mount = os.environ.get(JUPYTER_MOUNT_ENV, "")
    if mount and mount.rstrip("/") == url.rstrip("/"):
        base = urllib.parse.urlsplit(mount).path.rstrip("/") + "/"
        return base, "", f"{base}#/runs/{run.id}"
    token = getattr(run.client.connection, "token", None) or ""
    return url, token, f"{url}#/runs/{run.id}"


class RunView(anywidget.AnyWidget):
    """A run, live: graph, timeline, logs, metrics, assets and the step panel (or one `part`)."""

    _esm = _STATIC / "runview.js" if built() else _UNBUILT_ESM
    _css = _STATIC / "runview.css" if (_STATIC / "runview.css").is_file() else ""

    run_id = traitlets.Unicode("").tag(sync=True)
    # Where the API is: a path ("/coflux/") resolved against the page's origin, or an absolute URL.
    api_base = traitlets.Unicode("").tag(sync=True)
    token = traitlets.Unicode("").tag(sync=True)  # "" for cookie auth (Jupyter's login)
    part = traitlets.Unicode("").tag(sync=True)  # "" = every part
    studio_url = traitlets.Unicode("").tag(sync=True)  # "open in Studio"
    height = traitlets.Int(0).tag(sync=True)  # px; 0 = the view's default

    def __init__(self, run: Run | None = None, *, part: str = "", height: int = 0, **kwargs: Any) -> None:
        if run is not None:
            api_base, token, studio_url = endpoints(run)
            kwargs = {"run_id": run.id, "api_base": api_base, "token": token, "studio_url": studio_url,
                      **kwargs}
        super().__init__(part=part, height=height, **kwargs)
        self._summary = f"{run.module}/{run.target}" if run is not None else ""

    @traitlets.validate("part")
    def _check_part(self, proposal: dict) -> str:
        if proposal["value"] not in PARTS:
            raise traitlets.TraitError(f"part must be one of {', '.join(map(repr, PARTS))}, "
                                       f"not {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("height")
    def _check_height(self, proposal: dict) -> int:
        if proposal["value"] < 0:
            raise traitlets.TraitError("height is a number of pixels (0 = the default)")
        return proposal["value"]

    def __repr__(self) -> str:
        what = f" {self._summary}" if getattr(self, "_summary", "") else ""
        part = f" ({self.part})" if self.part else ""
        return f"<RunView {self.run_id}{what}{part}>"


def run_view(run: Run, part: str = "", height: int = 0) -> RunView | RunWidget:
    """What displaying `run` shows: the RunView, or the status table when the view is not built."""
    if built():
        return RunView(run, part=part, height=height)
    widget = RunWidget(run)
    widget.note = f"The rich run view is not built: run {BUILD_COMMAND} (then restart the kernel)."
    return widget


def _outcome_now(run: Run) -> dict:
    """The run's outcome as the server has it now (status, duration), or {} when it cannot say."""
    connection = getattr(run.client, "connection", None)
    try:
        return connection.call("wait", {"run": run.id, "timeout": 0}) or {}
    except Exception:  # a display must not fail the cell: the fallback then says "unknown"
        return {}


def display_bundle(run: Run, part: str = "") -> Any:
    """`_repr_mimebundle_` of a run (or one part): inside a kernel its view (the widget, the
    kernel-free coflux MIME view and a static fallback: coflux/run_output.py), else its repr."""
    if not runtime.in_kernel():  # a terminal or a script: no front-end to render a widget
        return {"text/plain": repr(run) if not part else f"<{part} of {run!r}>"}
    view = run_view(run, part)
    bundle = view._repr_mimebundle_()
    data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
    api_base, token, studio_url = endpoints(run)
    outcome = _outcome_now(run)
    data.update(run_output.fallback(run.id, f"{run.module}/{run.target}", str(outcome.get("status") or "unknown"),
                                    outcome.get("duration"), studio_url, run_output.as_of()))
    if not token:  # the browser reaches this server with Jupyter's login: no secret to store
        data[run_output.RUN_MIME] = {"run_id": run.id, "api_base": api_base, "studio_url": studio_url,
                                     "part": part, "workflow": f"{run.module}/{run.target}"}
    return data


class RunPart:
    """One part of a run's view (`run.graph`, `run.logs`, ...): displays as that part alone;
    `.view()` gives the widget (to put in a layout, or to set its `height`)."""

    def __init__(self, run: Run, part: str) -> None:
        self.run = run
        self.part = part

    def view(self, height: int = 0) -> RunView | RunWidget:
        return run_view(self.run, self.part, height)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return display_bundle(self.run, self.part)

    def __repr__(self) -> str:
        return f"<{self.part} of {self.run!r}>"


class AssetsPart(RunPart):
    """`run.assets`: displays as the run's asset browser; `run.assets()` lists the assets."""

    def __call__(self) -> list:
        return self.run.client.assets(self.run)


# ---------------------------------------------------------------------- metrics as a plotly figure
# The same rules and names as the run view's charts (jupyter_ext/frontend/src/views/metrics.tsx and
# metricbands.ts): a chart per MetricGroup, each MetricScale on its own y axis with its declared
# bounds and round ticks, and BAND_MIN or more series of one key drawn as a band (median between
# min and max) with every step's series joined in one trace, shown on demand (a legend click).

BAND_MIN = 5
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_BAND_X = 400  # past this many distinct x values a band is computed over this many slices


def _series_label(series: dict, ambiguous: set[str]) -> str:
    """`key`, or `key (target #n)` when the chart holds the key for several steps (as the view)."""
    key = str(series.get("key", ""))
    if key not in ambiguous:
        return key
    execution = str(series.get("execution_id"))
    parts = execution.split(":")
    target = series.get("target")
    return f"{key} ({target} #{parts[1]})" if target and len(parts) == 3 else f"{key} ({execution})"


def nice_step(lower: float, upper: float, count: int = 5) -> float:
    """A round tick step for [lower, upper] with about `count` intervals: 1, 2, 2.5 or 5 x 10^k."""
    import math

    raw = abs(upper - lower) / count
    if not raw > 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next((m * power for m in (1, 2, 2.5, 5) if m * power >= raw - 1e-12), 10 * power)


def _bounds(scale: dict) -> dict:
    lower, upper = scale.get("lower"), scale.get("upper")
    if lower is None or upper is None or not upper > lower:
        return {}
    return {"range": [lower, upper], "autorange": False, "tickmode": "linear", "tick0": lower,
            "dtick": nice_step(lower, upper)}


def _quantile(values: list[float], q: float) -> float:
    at = (len(values) - 1) * q
    low, high = int(at), min(len(values) - 1, int(at) + 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def metric_band(members: list[dict]) -> tuple[list[float], list[float], list[float], list[float]]:
    """x, min, median, max of several series (over slices of x when there are many x values)."""
    xs = sorted({p[0] for item in members for p in item.get("points") or []})
    binned = len(xs) > _BAND_X
    low_x, width = (xs[0], (xs[-1] - xs[0]) / _BAND_X or 1.0) if binned else (0.0, 1.0)
    slots: dict[float, list[float]] = {}
    for item in members:
        for x, y in item.get("points") or []:
            if y is None:
                continue
            at = low_x + (min(_BAND_X - 1, int((x - low_x) / width)) + 0.5) * width if binned else x
            slots.setdefault(at, []).append(y)
    out: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    for x in sorted(slots):
        values = sorted(slots[x])
        for column, value in zip(out, (x, values[0], _quantile(values, 0.5), values[-1]), strict=True):
            column.append(value)
    return out


def metrics_figure(series: list[dict], *, title: str | None = None) -> plotly.graph_objects.Figure:
    """A plotly Figure of metric series (as `Client.metrics(run)` returns them, each optionally
    with the `target` of its step): one subplot per `MetricGroup` (a metric without one gets its
    own), each scale on its own y axis, a trace per series, or a band for many series of one key,
    progress metrics as filled areas up to their total."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    charts: dict[str, list[dict]] = {}
    for item in series:
        group = item.get("group") or {}
        charts.setdefault(str(group.get("name") or item.get("key", "")), []).append(item)
    names = list(charts) or [title or "no metrics"]
    figure = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=min(0.12, 0.3 / len(names)))
    next_axis = len(names) + 1  # axes beyond each subplot's own y axis
    bands = 0
    extra_axes = max((len({_scale_name(i) for i in members}) - 2 for members in charts.values()), default=0)
    for row, name in enumerate(names, start=1):
        members = charts.get(name, [])
        group = (members[0].get("group") or {}) if members else {}
        own_y = "y" if row == 1 else f"y{row}"
        x_ref = "x" if row == 1 else f"x{row}"
        axes: dict[str, str] = {}  # scale name -> y axis of this subplot
        for item in members:
            scale_name = _scale_name(item)
            if scale_name in axes:
                continue
            scale = item.get("scale") or {}
            axis_title = f"{scale_name} ({scale['units']})" if scale_name and scale.get("units") else (scale_name or "")
            if not axes:
                axes[scale_name] = own_y
                figure.update_yaxes(title_text=axis_title, row=row, col=1, **_bounds(scale))
                continue
            axis = f"y{next_axis}"
            n = len(axes)  # 1: the right side of the plot; more: further right
            layout_axis: dict[str, Any] = {"title": {"text": axis_title}, "overlaying": own_y, "side": "right",
                                           "showgrid": False, "anchor": x_ref, **_bounds(scale)}
            if n > 1:
                layout_axis.update(anchor="free", position=min(1.0, 1 - (extra_axes - (n - 1)) * 0.07))
            figure.update_layout({f"yaxis{next_axis}": layout_axis})
            axes[scale_name] = axis
            next_axis += 1
        by_key: dict[str, list[dict]] = {}
        for item in members:
            by_key.setdefault(str(item.get("key", "")), []).append(item)
        ambiguous = {key for key, items in by_key.items() if len(items) > 1}
        for key, items in by_key.items():
            yaxis = axes[_scale_name(items[0])]
            scale = items[0].get("scale") or {}
            units = f" {scale['units']}" if scale.get("units") else ""
            if len(items) >= BAND_MIN and not scale.get("progress"):
                _add_band(figure, key, items, x_ref, yaxis, units, _PALETTE[bands % len(_PALETTE)])
                bands += 1
                continue
            for item in items:
                points = item.get("points") or []
                progress = bool(scale.get("progress"))
                label = _series_label(item, ambiguous)
                figure.add_trace(go.Scatter(
                    x=[p[0] for p in points], y=[p[1] for p in points], name=label, xaxis=x_ref, yaxis=yaxis,
                    mode="lines" if len(points) > 50 else "lines+markers", legendgroup=name,
                    fill="tozeroy" if progress else None, line={"shape": "hv"} if progress else None,
                    hovertemplate=f"{label}: %{{y}}{units}<extra></extra>"))
        x_title = group.get("units") or "seconds since the execution started"
        figure.update_xaxes(title_text=x_title, row=row, col=1, **_bounds(group))
    if extra_axes > 0:
        figure.update_xaxes(domain=[0, 1 - extra_axes * 0.07])
    figure.update_layout(height=max(320, 280 * len(names)), title=title, legend={"groupclick": "toggleitem"},
                         margin={"t": 60 if title else 40})
    return figure


def _scale_name(item: dict) -> str:
    return str((item.get("scale") or {}).get("name") or "")


def _add_band(figure: Any, key: str, items: list[dict], x_ref: str, yaxis: str, units: str, color: str) -> None:
    """Many series of one key: the median between min and max, and every step's series joined
    into one trace (gaps between them) that the legend shows on a click."""
    import plotly.graph_objects as go

    x, low, mid, high = metric_band(items)
    ambiguous = {key}
    joined_x: list[float | None] = []
    joined_y: list[float | None] = []
    text: list[str] = []
    for item in items:
        if joined_x:
            joined_x.append(None)
            joined_y.append(None)
            text.append("")
        label = _series_label(item, ambiguous)
        for px, py in item.get("points") or []:
            joined_x.append(px)
            joined_y.append(py)
            text.append(label)
    common = {"xaxis": x_ref, "yaxis": yaxis, "mode": "lines", "legendgroup": key}
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    figure.add_trace(go.Scatter(x=joined_x, y=joined_y, text=text, name=f"{key}: each step", visible="legendonly",
                                line={"width": 1, "color": color}, opacity=0.4, hovertemplate=f"%{{text}}: %{{y}}{units}<extra></extra>",
                                **{**common, "legendgroup": f"{key} each"}))
    figure.add_trace(go.Scatter(x=x, y=low, name=f"{key}: min–max (low)", line={"width": 0, "color": color}, showlegend=False,
                                hoverinfo="skip", **common))
    figure.add_trace(go.Scatter(x=x, y=high, name=f"{key}: min–max", line={"width": 0, "color": color}, fill="tonexty",
                                fillcolor=f"rgba({red},{green},{blue},0.22)",
                                hoverinfo="skip", **common))
    figure.add_trace(go.Scatter(x=x, y=mid, name=f"{key}: median of {len(items)} steps", line={"width": 2, "color": color},
                                hovertemplate=f"{key}: median of {len(items)} steps: %{{y}}{units}<extra></extra>",
                                **common))

"""Metrics: numeric series recorded by executions, streamed live and drawn as charts.

`cf.Metric(key, group=, scale=, throttle=10)` may be defined at module level or inside a
function; `.record(value, at=None)` adds a point whose x is seconds since the execution started
(or `at`). Metrics of one `MetricGroup` share a chart (its x axis); metrics whose `MetricScale`
has the same name share a y axis; `MetricScale(progress=True)` draws a progress bar.

Throttling happens here, per metric and execution: at most `throttle` points a second go out,
and the latest value held back is sent when the execution ends, so a chart always ends on the
last value recorded. Outside an execution, recording does nothing (the plain-call rule).

Layer: beside the targets (the runtime interface: each execution's recorder is kept by its
`Runtime`, made here on the first record).
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from . import runtime

T = TypeVar("T")


def _bound(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class MetricGroup:
    """A chart: the x axis shared by the metrics of the group."""

    name: str
    units: str | None = None
    lower: float | None = None
    upper: float | None = None

    def __init__(self, name: str, *, units: str | None = None, lower: float | None = None,
                 upper: float | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a MetricGroup needs a name")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "lower", _bound(lower, "lower"))
        object.__setattr__(self, "upper", _bound(upper, "upper"))


@dataclass(frozen=True)
class MetricScale:
    """A y axis, shared by name within a group; `progress=True` draws a progress bar."""

    name: str | None = None
    units: str | None = None
    progress: bool = False
    lower: float | None = None
    upper: float | None = None

    def __init__(self, name: str | None = None, *, units: str | None = None, progress: bool = False,
                 lower: float | None = None, upper: float | None = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "progress", bool(progress))
        object.__setattr__(self, "lower", _bound(lower, "lower"))
        object.__setattr__(self, "upper", _bound(upper, "upper"))


class Metric:
    def __init__(self, key: str, *, group: str | MetricGroup | None = None,
                 scale: str | MetricScale | None = None, throttle: float | None = 10) -> None:
        if not isinstance(key, str) or not key or len(key) > 200:
            raise ValueError("a metric key is a non-empty string of at most 200 characters")
        if throttle is not None and (isinstance(throttle, bool) or not isinstance(throttle, int | float)
                                     or not math.isfinite(throttle) or throttle <= 0):
            raise ValueError(f"throttle must be a positive number of points per second or None, not {throttle!r}")
        self.key = key
        # A group or scale given by name refers to the one of that name defined elsewhere (with
        # its units and bounds), if any; two different definitions of one name conflict.
        self.group_by_name = isinstance(group, str)
        self.scale_by_name = isinstance(scale, str)
        self.group = MetricGroup(group) if isinstance(group, str) else group
        self.scale = MetricScale(scale) if isinstance(scale, str) else scale
        if self.group is not None and not isinstance(self.group, MetricGroup):
            raise TypeError("group must be a name or a cf.MetricGroup")
        if self.scale is not None and not isinstance(self.scale, MetricScale):
            raise TypeError("scale must be a name or a cf.MetricScale")
        self.throttle = throttle
        context = runtime.current()
        if context is not None:  # defined inside an execution: a conflict is an error here already
            _recorder(context).define(self)

    def definition(self) -> dict[str, Any]:
        return {"group": asdict(self.group) if self.group else None,
                "scale": asdict(self.scale) if self.scale else None}

    def record(self, value: float, *, at: float | None = None) -> None:
        """Record a point: `value` at x = `at`, or the seconds since the execution started.
        Any real number will do (int, float, numpy and torch scalars)."""
        # A finite float (or an int) is taken as it is here: most calls, and the cheapest path.
        number = value if type(value) is float and value - value == 0 else _real(value, self.key)
        x = None if at is None else at if type(at) is float and at - at == 0 else _real(at, self.key, ": `at`")
        context = runtime.current()
        if context is None:
            return
        recorder = context.metrics
        (recorder if recorder is not None else _recorder(context)).record(self, number, x)

    def __repr__(self) -> str:
        return f"Metric({self.key!r})"


_BIG = 1 << 1000  # an int below this converts to a finite float


def _real(value: Any, key: str, part: str = "") -> float:
    """`value` as a finite float, or a clear error (TypeError for a non-number) naming the metric
    `key` (and `part` of the call)."""
    kind = type(value)
    if kind is float and math.isfinite(value):
        return value
    if kind is int and -_BIG < value < _BIG:
        return float(value)
    what = f"metric {key!r}{part}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        item = getattr(value, "item", None)  # a 0-d array or tensor
        if callable(item) and getattr(value, "ndim", None) == 0:
            return _real(item(), key, part)
        raise TypeError(f"{what} records numbers, not {type(value).__name__}")
    try:
        number = float(value)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"{what} cannot record {value!r}: {exc}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} cannot record {value!r}: values must be finite")
    return number


class _Recorder:
    """One execution's metrics: definitions checked for conflicts, points throttled."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.started = context.started_at
        self._lock = threading.Lock()
        self._definitions: dict[str, dict] = {}
        self._groups: dict[str, MetricGroup] = {}
        self._scales: dict[tuple[str | None, str], MetricScale] = {}
        self._last: dict[str, float] = {}  # key -> monotonic time of the last point sent
        self._held: dict[str, tuple[float, float]] = {}  # key -> (x, value) held back by the throttle
        self._checked: dict[str, Metric] = {}  # key -> the Metric whose definition was checked

    def record(self, metric: Metric, value: float, at: float | None) -> None:
        x = at if at is not None else time.time() - self.started
        key = metric.key
        with self._lock:
            if self._checked.get(key) is not metric:
                self._define(metric)
            if metric.throttle is not None:
                now = time.monotonic()
                last = self._last.get(key)
                if last is not None and now - last < 1.0 / metric.throttle:
                    self._held[key] = (x, value)
                    return
                self._last[key] = now
                if self._held:
                    self._held.pop(key, None)
        self.context.telemetry.point(key, x, value)

    def define(self, metric: Metric) -> None:
        with self._lock:
            self._define(metric)

    def _define(self, metric: Metric) -> None:
        if self._checked.get(metric.key) is metric:
            return  # this very metric was checked here already: its definition cannot have changed
        group, scale = metric.group, metric.scale
        group_name = group.name if group else ""
        if group is not None:
            other = self._groups.get(group.name)
            if other is not None and other != group:
                if not metric.group_by_name:
                    raise ValueError(f"metric group {group.name!r} is already defined differently: {other}")
                group = other
            self._groups.setdefault(group.name, group)
        if scale is not None and scale.name is not None:
            other_scale = self._scales.get((scale.name, group_name))
            if other_scale is not None and other_scale != scale:
                if not metric.scale_by_name:
                    raise ValueError(f"metric scale {scale.name!r} is already defined differently: {other_scale}")
                scale = other_scale
            self._scales.setdefault((scale.name, group_name), scale)
        definition = {"group": asdict(group) if group else None, "scale": asdict(scale) if scale else None}
        known = self._definitions.get(metric.key)
        if known is not None:
            if known != definition:
                raise ValueError(f"metric {metric.key!r} is already defined differently in this execution "
                                 f"({known} vs {definition})")
            return
        self._definitions[metric.key] = definition
        self._checked[metric.key] = metric
        self.context.telemetry.define(metric.key, definition)

    def flush_held(self) -> None:
        with self._lock:
            held, self._held = self._held, {}
        for key, (x, value) in held.items():
            self.context.telemetry.point(key, x, value)


def _recorder(context: runtime.Runtime) -> _Recorder:
    return context.recorder(_Recorder)


def progress(iterable: Iterable[T], key: str = "progress", *, group: str | MetricGroup | None = None) -> Iterator[T]:
    """Iterate, recording how many items are done (i + 1 after each item's body has run) as a
    progress bar scaled to the iterable's length."""
    try:
        total: int | None = len(iterable)  # type: ignore[arg-type]
    except TypeError:
        total = None  # a generator: counted, with no upper bound to draw the bar against
    metric = Metric(key, group=group, scale=MetricScale(key, progress=True, lower=0, upper=total))
    return _ProgressIterator(iter(iterable), metric)


class _ProgressIterator(Iterator[T]):
    def __init__(self, items: Iterator[T], metric: Metric) -> None:
        self._items = items
        self._metric = metric
        self._done = 0
        self._started = False

    def __iter__(self) -> _ProgressIterator[T]:
        return self

    def __next__(self) -> T:
        if self._started:  # the previous item's body has run
            self._done += 1
            self._metric.record(self._done)
        else:
            self._started = True
            self._metric.record(0)
        return next(self._items)

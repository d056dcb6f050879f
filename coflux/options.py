"""Configuration classes for targets and the parsing of every accepted option form.

Options are validated when a function is decorated (or a `with_*` copy is made), so a wrong
value fails at definition time with a clear TypeError/ValueError, and are turned into the plain
dict that travels with each submit (the caller's options are the ones that apply).

Layer: a leaf (protocol, errors).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import protocol

Seconds = float | dt.timedelta


class _Unset:
    """The default of `memo`: false, but distinguishable from an explicit `memo=False`, which
    opts a task out of its workflow's `memo=True`."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "False"


UNSET: Any = _Unset()


@dataclass(frozen=True, kw_only=True)
class Cache:
    """Advanced caching configuration."""

    max_age: float | dt.timedelta | None = None
    params: Iterable[str] | str | None = None
    namespace: str | None = None
    version: str | None = None

    def __init__(self, max_age: float | dt.timedelta | None = None, params: Iterable[str] | str | None = None,
                 namespace: str | None = None, version: str | None = None) -> None:
        object.__setattr__(self, "max_age", max_age)
        object.__setattr__(self, "params", _names(params, "Cache(params=...)"))
        object.__setattr__(self, "namespace", _optional_str(namespace, "Cache(namespace=...)"))
        object.__setattr__(self, "version", _optional_str(version, "Cache(version=...)"))
        if max_age is not None:
            seconds(max_age, "Cache(max_age=...)")


@dataclass(frozen=True)
class Defer:
    """Advanced deferring configuration."""

    params: Iterable[str] | str | None = None

    def __init__(self, params: Iterable[str] | str | None = None) -> None:
        object.__setattr__(self, "params", _names(params, "Defer(params=...)"))


RetryWhen = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None


@dataclass(frozen=True)
class Retries:
    """Advanced retry configuration."""

    limit: int | None = None
    backoff: tuple[float | dt.timedelta, float | dt.timedelta] = (1, 60)
    when: RetryWhen = None

    def __init__(self, limit: int | None = None, backoff: tuple[Seconds, Seconds] = (1, 60),
                 when: RetryWhen = None) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise TypeError(f"Retries(limit=...) must be a non-negative int or None, not {limit!r}")
        if not isinstance(backoff, tuple | list) or len(backoff) != 2:
            raise TypeError(f"Retries(backoff=...) must be a (min, max) pair, not {backoff!r}")
        low, high = seconds(backoff[0], "Retries backoff min"), seconds(backoff[1], "Retries backoff max")
        if high < low:
            raise ValueError(f"Retries backoff max ({high}) is less than min ({low})")
        _check_when(when)
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "backoff", (low, high))
        object.__setattr__(self, "when", when)

    def should_retry(self, exc: BaseException) -> bool:
        """Evaluate `when` against an exception (True when `when` is None)."""
        when = self.when
        if when is None:
            return True
        if isinstance(when, type) or isinstance(when, tuple):
            return isinstance(exc, when)
        return bool(when(exc))


def _check_when(when: Any) -> None:
    if when is None or callable(when) and not isinstance(when, type):
        return
    classes = when if isinstance(when, tuple) else (when,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"Retries(when=...) must be an exception class, a tuple of them, or a predicate; "
                            f"got {when!r}")


def when_spec(when: RetryWhen) -> dict | None:
    """`when` in a form that travels with the step, so the caller's choice (a stub's, or a
    `with_retries` copy's) is what the executing worker applies."""
    if when is None:
        return None
    if isinstance(when, type) or isinstance(when, tuple):
        classes = when if isinstance(when, tuple) else (when,)
        return {"classes": [f"{c.__module__}.{c.__qualname__}" for c in classes]}
    import base64
    import pickle

    try:
        return {"pickle": base64.b64encode(pickle.dumps(when)).decode()}
    except Exception:
        return None  # a lambda or closure: the worker's own decorator applies


def when_predicate(spec: dict) -> Callable[[BaseException], bool] | None:
    """The inverse of `when_spec`, in the worker; None if the spec cannot be loaded here."""
    if "classes" in spec:
        from .errors import resolve_exception_class

        classes = tuple(c for c in (resolve_exception_class(name) for name in spec["classes"]) if c is not None)
        return lambda exc: isinstance(exc, classes)
    if "pickle" in spec:
        import base64
        import pickle

        try:
            return pickle.loads(base64.b64decode(spec["pickle"]))
        except Exception:
            return None
    return None


# The longest delay, timeout or backoff the server accepts (ten years); longer is surely a mistake.
MAX_SECONDS = protocol.MAX_SECONDS


def seconds(value: Any, what: str) -> float:
    """A finite, non-negative number of seconds (or a timedelta) up to MAX_SECONDS."""
    if isinstance(value, dt.timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:
            raise ValueError(f"{what} is out of range: {value!r}") from None
    else:
        raise TypeError(f"{what} must be a number of seconds or a timedelta, not {value!r}")
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be a finite number of seconds, not {value!r}")
    if result < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if result > MAX_SECONDS:
        raise ValueError(f"{what} of {result:g} s is longer than the maximum of {MAX_SECONDS:g} s (ten years)")
    return result


def wait_timeout(value: Any, what: str = "timeout") -> float | None:
    """A timeout for waiting on a result: None or math.inf wait until it is there; otherwise a
    finite, non-negative number of seconds (NaN and negative values are errors)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == float("inf"):
        return None
    result = seconds(value, what) if not (isinstance(value, int | float) and value > MAX_SECONDS) else None
    return result


def _optional_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None, not {value!r}")
    return value


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a string, an iterable of names, or None, not {value!r}") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must contain parameter names, got {name!r}")
    return names


def _indexes(names: tuple[str, ...], parameters: list[str], what: str) -> list[int]:
    out = []
    for name in names:
        if name not in parameters:
            raise ValueError(f"{what} names {name!r}, which is not a parameter "
                             f"(parameters: {', '.join(parameters) or 'none'})")
        out.append(parameters.index(name))
    return out


def parse_options(raw: dict[str, Any], parameters: list[str], *, kind: str) -> tuple[dict, Retries | None]:
    """Validate decorator options; return (wire options, local Retries with `when`)."""
    out: dict[str, Any] = {}
    wait = raw.get("wait", False)
    if wait is True:
        out["wait"] = list(range(len(parameters)))
    elif wait not in (False, None):
        out["wait"] = _indexes(_names(wait, "wait") or (), parameters, "wait")

    cache = raw.get("cache", False)
    if cache is True:
        out["cache"] = {"params": None, "max_age": None, "namespace": None, "version": None}
    elif isinstance(cache, Cache):
        out["cache"] = {
            "params": _indexes(cache.params, parameters, "Cache(params=...)") if cache.params is not None else None,
            "max_age": seconds(cache.max_age, "Cache(max_age=...)") if cache.max_age is not None else None,
            "namespace": cache.namespace, "version": cache.version}
    elif isinstance(cache, int | float | dt.timedelta) and not isinstance(cache, bool):
        out["cache"] = {"params": None, "max_age": seconds(cache, "cache"), "namespace": None, "version": None}
    elif cache not in (False, None):
        raise TypeError(f"cache must be True, a max age (seconds or timedelta) or cf.Cache(...), not {cache!r}")

    retries_raw = raw.get("retries", 0)
    retries: Retries | None = None
    if isinstance(retries_raw, Retries):
        retries = retries_raw
    elif retries_raw is True:
        retries = Retries()
    elif isinstance(retries_raw, int) and not isinstance(retries_raw, bool):
        if retries_raw < 0:
            raise ValueError(f"retries must not be negative, got {retries_raw}")
        retries = Retries(limit=retries_raw, backoff=(0, 0)) if retries_raw else None
    elif retries_raw not in (False, None):
        raise TypeError(f"retries must be an int, True or cf.Retries(...), not {retries_raw!r}")
    if retries is not None and retries.limit != 0:
        out["retries"] = {"limit": retries.limit, "backoff": list(retries.backoff)}
        when = when_spec(retries.when)
        if when is not None:
            out["retries"]["when"] = when

    recurrent = raw.get("recurrent", False)
    if not isinstance(recurrent, bool):
        raise TypeError(f"recurrent must be a bool, not {recurrent!r}")
    if recurrent:
        out["recurrent"] = True

    defer = raw.get("defer", False)
    if defer is True:
        out["defer"] = {"params": None}
    elif isinstance(defer, Defer):
        out["defer"] = {"params": _indexes(defer.params, parameters, "Defer(params=...)")
                        if defer.params is not None else None}
    elif defer not in (False, None):
        raise TypeError(f"defer must be a bool or cf.Defer(...), not {defer!r}")

    delay = raw.get("delay", 0)
    if delay is not None and seconds(delay, "delay"):
        out["delay"] = seconds(delay, "delay")

    memo = raw.get("memo", UNSET)
    if memo is True:
        out["memo"] = True
    elif memo is False:
        out["memo"] = False  # explicit: opt out of the run's default
    elif memo is None or memo is UNSET:
        pass
    elif kind == "workflow":
        raise TypeError(f"memo on a workflow must be a bool, not {memo!r}")
    else:
        out["memo"] = _indexes(_names(memo, "memo") or (), parameters, "memo")

    requires = raw.get("requires")
    if requires is not None:
        out["requires"] = parse_requires(requires)

    timeout = raw.get("timeout", 0)
    if timeout is not None and seconds(timeout, "timeout"):
        out["timeout"] = seconds(timeout, "timeout")
    return out, retries


def parse_requires(requires: Any) -> dict[str, list[str]]:
    if not isinstance(requires, dict):
        raise TypeError(f"requires must be a dict of tag -> value(s), not {requires!r}")
    out: dict[str, list[str]] = {}
    for key, value in requires.items():
        if not isinstance(key, str):
            raise TypeError(f"requires keys must be strings, got {key!r}")
        if isinstance(value, bool):
            out[key] = ["true"] if value else []
        elif isinstance(value, str):
            out[key] = [value]
        elif isinstance(value, list | tuple | set | frozenset):
            if not all(isinstance(v, str) for v in value):
                raise TypeError(f"requires[{key!r}] values must be strings, got {value!r}")
            out[key] = sorted(value) if isinstance(value, set | frozenset) else list(value)
        else:
            raise TypeError(f"requires[{key!r}] must be a string, a list of strings or a bool, not {value!r}")
    return out


def target_run_options(options: dict[str, Any]) -> dict[str, Any]:
    """A target's wire options as the `options` of a run's `submit`: every option, those the
    target does not set as null, so the run's root step has the caller's options (as a child step
    has), not the registered workflow's merged under them (`with_requires(None)` clears)."""
    out: dict[str, Any] = dict.fromkeys(protocol.OPTION_NAMES)
    out.update(options)
    return out


def run_overrides(raw: Any) -> dict[str, Any]:
    """Overrides for one run of a workflow, in the decorator's forms (`{"requires": {"gpu":
    "A100"}, "retries": 2, "memo": True, "delay": 5}`), as the wire `options` of a run's
    `submit`: each option named is sent, one switched off (`None`, `0`, `False`) as null, so it
    clears the workflow's own; the options not named stay the workflow's. Forms that name
    parameters (`wait`, `Cache(params=...)`) are not accepted here: the parameters are the
    registered workflow's, which the client does not have."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError(f"options must be a dict of option name -> value, not {raw!r}")
    for name in raw:
        if name not in protocol.OPTION_NAMES:
            raise TypeError(f"unknown option {name!r} (options: {', '.join(protocol.OPTION_NAMES)})")
    parsed, _ = parse_options(raw, [], kind="workflow")
    return {name: parsed.get(name) for name in raw}

"""Every number a client sends is checked here, at the edge, before anything changes.

A value the orchestrator cannot hold (NaN, infinity, a delay of centuries, an integer the
database cannot store) must fail the one request that carried it with a clear `bad_request`,
never the orchestrator thread or the batch it shares with other clients' commands.
"""

from __future__ import annotations

import math
import re
from typing import Any

from coflux.protocol import MAX_REQUEST_KEY, MAX_SECONDS

from ..errors import BadRequest

# Absolute times (`execute_after`) are seconds since the epoch, up to now + MAX_SECONDS.
MAX_EPOCH = 4102444800.0 + MAX_SECONDS  # 2100-01-01 plus ten years
MAX_INT = 2**53  # what JSON, SQLite and PostgreSQL BIGINT all hold exactly
MAX_RETRIES = 10000
MAX_KEY = MAX_REQUEST_KEY  # steps.request_key


def seconds(value: Any, what: str, *, maximum: float = MAX_SECONDS, allow_none: bool = False) -> float | None:
    """A finite, non-negative number of seconds no larger than `maximum`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{what} must be a number of seconds, not {_show(value)}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise BadRequest(f"{what} is out of range: {_show(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise BadRequest(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0:
        raise BadRequest(f"{what} must not be negative, got {value!r}")
    if value > maximum:
        raise BadRequest(f"{what} of {value:g} s is longer than the maximum of {maximum:g} s")
    return value


def integer(value: Any, what: str, *, low: int = 0, high: int = MAX_INT, allow_none: bool = False) -> int | None:
    """An integer in [low, high] (a JSON float with an integral value is accepted)."""
    if value is None and allow_none:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{what} must be an integer, not {_show(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{what} must be between {low} and {high}, got {_show(value)}")
    return value


def text(value: Any, what: str, *, maximum: int, allow_none: bool = True) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, not {_show(value)}")
    if len(value) > maximum:
        raise BadRequest(f"{what} is longer than {maximum} characters")
    return value


_HEX64 = re.compile(r"[0-9a-f]{64}")


def options(value: Any) -> dict:
    """The scheduling options of a submit, with every number the orchestrator turns into a timer
    or a count checked (the rest is read by rules that tolerate anything)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("options must be an object")
    for name in ("delay", "timeout"):
        if value.get(name) is not None:
            seconds(value[name], f"options.{name}")
    retries = value.get("retries")
    if retries is not None:
        if not isinstance(retries, dict):
            raise BadRequest("options.retries must be an object {limit, backoff}")
        integer(retries.get("limit"), "options.retries.limit", high=MAX_RETRIES, allow_none=True)
        backoff = retries.get("backoff")
        if backoff is not None:
            if not isinstance(backoff, list | tuple) or len(backoff) != 2:
                raise BadRequest("options.retries.backoff must be [min, max] seconds")
            for bound in backoff:
                seconds(bound, "options.retries.backoff")
    cache = value.get("cache")
    if isinstance(cache, dict) and cache.get("max_age") is not None:
        seconds(cache["max_age"], "options.cache.max_age", maximum=MAX_SECONDS * 10)
    code = value.get("code")
    if code is not None:  # a cell's task shipped by value: its code hash and the blob holding it
        if not isinstance(code, dict) or not all(
                isinstance(code.get(k), str) and _HEX64.fullmatch(code[k]) for k in ("hash", "blob")):
            raise BadRequest("options.code must be {hash, blob}: the code hash and blob key (sha256 hex)")
    for name in ("wait", "memo"):
        listed = value.get(name)
        if isinstance(listed, list):
            for index in listed:
                integer(index, f"options.{name}[]", high=10000)
    return value


def shipped_code_hash(options: Any) -> str | None:
    """`options.code.hash` of a step shipped by value (its form checked by `options`), else None:
    the code such a step runs when its submitter sent no code hash of its own."""
    code = options.get("code") if isinstance(options, dict) else None
    shipped = code.get("hash") if isinstance(code, dict) else None
    return shipped if isinstance(shipped, str) and _HEX64.fullmatch(shipped) else None


MAX_TAG = 200  # a requires key or value


def run_options(value: dict) -> dict:
    """The options of a new run (over its workflow's): besides what `options` checks, `requires`
    must be tags (an object of key -> list of values; an empty list removes the key) and `memo`
    a bool, as the run records them. Child steps' options are not checked here (the hot path)."""
    requires = value.get("requires")
    if requires is not None:
        if not isinstance(requires, dict):
            raise BadRequest(f"options.requires must be an object of tag -> [values], not {_show(requires)}")
        for key, values in requires.items():
            if not key or len(key) > MAX_TAG:
                raise BadRequest(f"options.requires keys must be 1 to {MAX_TAG} characters, got {_show(key)}")
            if not isinstance(values, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_TAG
                                                       for v in values):
                raise BadRequest(f"options.requires[{key!r}] must be a list of non-empty strings, "
                                 f"not {_show(values)}")
    memo = value.get("memo")
    if memo is not None and not isinstance(memo, bool):
        raise BadRequest(f"options.memo of a run must be true or false, not {_show(memo)}")
    return value


def epoch(value: Any, what: str) -> float | None:
    """An absolute time in seconds since the epoch (or None)."""
    return seconds(value, what, maximum=MAX_EPOCH, allow_none=True)


def finite_or(value: float | None, default: float) -> float:
    """A stored number that may predate validation: NaN becomes `default`, infinity is capped."""
    if value is None or value != value:
        return default
    return min(float(value), MAX_EPOCH)


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."

"""Values on the wire: JSON with typed wrappers, and references to executions.

A wire value is ``{"v": data}`` plus ``"refs": [...]`` when it references executions. Plain JSON
passes through unchanged; other types become objects with a ``"$"`` key. The encoding is
canonical (sets and non-string-keyed dicts are sorted) so equal values give equal cache keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import pickle
import uuid
from collections.abc import Callable
from typing import Any

MAX_INLINE_BYTES = 16 * 1024 * 1024


class Ref:
    """Something a value points at by id (an execution); the handle types subclass this."""

    def to_ref(self) -> dict:
        raise NotImplementedError


def encode(value: Any) -> dict:
    refs: list[dict] = []
    data = _encode(value, refs)
    return {"v": data, "refs": refs} if refs else {"v": data}


def _encode(value: Any, refs: list[dict]) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$": "float", "v": repr(value)}
    if isinstance(value, list):
        return [_encode(v, refs) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "$" not in value:
            return {k: _encode(v, refs) for k, v in value.items()}
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        return {"$": "dict", "items": [[_encode(k, refs), _encode(v, refs)] for k, v in items]}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"$": "tuple", "items": [_encode(v, refs) for v in value]}
    if isinstance(value, set | frozenset):
        kind = "set" if isinstance(value, set) else "frozenset"
        return {"$": kind, "items": [_encode(v, refs) for v in sorted(value, key=repr)]}
    if isinstance(value, Ref):
        refs.append(value.to_ref())
        return {"$": "ref", "i": len(refs) - 1}
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$": "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$": "timedelta", "v": value.total_seconds()}
    if isinstance(value, decimal.Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$": "uuid", "v": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$": "bytes", "b64": base64.b64encode(bytes(value)).decode()}
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(f"cannot serialise {type(value).__qualname__} value {value!r:.80}: {exc}") from exc
    if len(data) > MAX_INLINE_BYTES:
        raise ValueError(f"value of type {type(value).__qualname__} is too large ({len(data)} bytes)")
    cls = type(value)
    return {"$": "pickle", "b64": base64.b64encode(data).decode(), "class": f"{cls.__module__}.{cls.__qualname__}"}


def decode(wire: dict, resolve_ref: Callable[[dict], Any] | None = None) -> Any:
    if not isinstance(wire, dict) or "v" not in wire:
        raise ValueError(f"not a wire value: {wire!r:.200}")
    return _decode(wire["v"], wire.get("refs") or [], resolve_ref)


def _decode(data: Any, refs: list[dict], resolve_ref: Callable[[dict], Any] | None) -> Any:
    if isinstance(data, list):
        return [_decode(v, refs, resolve_ref) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("$")
    if kind is None:
        return {k: _decode(v, refs, resolve_ref) for k, v in data.items()}
    if kind == "dict":
        return {_hashable(_decode(k, refs, resolve_ref)): _decode(v, refs, resolve_ref) for k, v in data["items"]}
    if kind == "tuple":
        return tuple(_decode(v, refs, resolve_ref) for v in data["items"])
    if kind in ("set", "frozenset"):
        items = (_hashable(_decode(v, refs, resolve_ref)) for v in data["items"])
        return set(items) if kind == "set" else frozenset(items)
    if kind == "ref":
        ref = refs[data["i"]]
        return resolve_ref(ref) if resolve_ref is not None else ref
    if kind == "float":
        return float(data["v"])
    if kind == "datetime":
        return dt.datetime.fromisoformat(data["v"])
    if kind == "date":
        return dt.date.fromisoformat(data["v"])
    if kind == "time":
        return dt.time.fromisoformat(data["v"])
    if kind == "timedelta":
        return dt.timedelta(seconds=data["v"])
    if kind == "decimal":
        return decimal.Decimal(data["v"])
    if kind == "uuid":
        return uuid.UUID(data["v"])
    if kind == "bytes":
        return base64.b64decode(data["b64"])
    if kind == "pickle":
        return pickle.loads(base64.b64decode(data["b64"]))
    raise ValueError(f"unknown value type {kind!r}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def execution_refs(wire: dict) -> list[str]:
    """Ids of the executions a wire value references."""
    return [r["id"] for r in wire.get("refs") or [] if r.get("type") == "execution"]


def to_display(wire: dict) -> Any:
    """A JSON-friendly rendering of a wire value for terminals and viewers (no unpickling)."""
    refs = wire.get("refs") or []

    def show(data: Any) -> Any:
        if isinstance(data, list):
            return [show(v) for v in data]
        if not isinstance(data, dict):
            return data
        kind = data.get("$")
        if kind is None:
            return {k: show(v) for k, v in data.items()}
        if kind in ("tuple", "set", "frozenset"):
            return [show(v) for v in data["items"]]
        if kind == "dict":
            return {str(show(k)): show(v) for k, v in data["items"]}
        if kind == "ref":
            ref = refs[data["i"]]
            return f"<execution {ref.get('id')}>"
        if kind == "pickle":
            return f"<{data.get('class')}>"
        if kind == "bytes":
            return f"<{len(base64.b64decode(data['b64']))} bytes>"
        return data.get("v")

    return show(wire.get("v"))

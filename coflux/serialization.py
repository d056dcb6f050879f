"""Values on the wire: JSON with typed wrappers, and references to executions.

Layer: a leaf. It imports no other coflux module: the types that travel as their own objects
(assets) register their codec here (`register_inline`, or `register_inline_loader` to be loaded
when first met), and the blob store that large values go to is found through the lookup that
`coflux.blobs` registers (`use_blob_store`).

A wire value is ``{"v": data}`` plus ``"refs": [...]`` when it references executions. Plain JSON
passes through unchanged; other types become objects with a ``"$"`` key. The encoding is
canonical (sets and non-string-keyed dicts are sorted) so equal values give equal cache keys.
"""

from __future__ import annotations

import base64
import contextvars
import datetime as dt
import decimal
import json
import math
import os
import pickle
import sys
import uuid
from collections.abc import Callable
from typing import Any

MAX_INLINE_BYTES = 16 * 1024 * 1024
# Bytes, pickles and JSON above this size travel and are stored as blobs (`{"$": "blob"}`, the
# content in the server's blob store under its sha256); values above MAX_VALUE_BYTES are refused.
BLOB_THRESHOLD = int(os.environ.get("COFLUX_BLOB_THRESHOLD", 1024 * 1024))
MAX_VALUE_BYTES = int(os.environ.get("COFLUX_MAX_VALUE_BYTES", 2 * 1024 ** 3))
# The blob store an encode/decode call uses (a coflux.blobs.BlobClient; None: the one in scope).
_blob_client: contextvars.ContextVar[Any] = contextvars.ContextVar("coflux_blob_client", default=None)
# How to find the blob store in scope: `lookup(required)` (registered by coflux.blobs).
_blob_lookup: Callable[[bool], Any] | None = None
# Levels of nesting a wire value may have (its JSON: a list in a list is two levels; a tuple or a
# set adds two, a dict with non-string keys three). JSON parsers and encoders recurse, and the
# server refuses deeper frames, so deeper values fail here with a clear error, in the caller.
MAX_DEPTH = 256


class ValueTooDeep(ValueError):
    """A value nests containers more deeply than coflux values allow (or contains itself)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or (
            f"value is nested more than {MAX_DEPTH} levels deep (containers inside containers, "
            f"or a container that contains itself); coflux values allow at most {MAX_DEPTH} levels: "
            "flatten it, or pickle it yourself and pass the bytes"))


class ValueTooLarge(ValueError):
    """A value is larger than one coflux value may be (MAX_VALUE_BYTES)."""


class Inline:
    """A value type that travels as its own `{"$": kind, ...}` object (assets, asset entries):
    `to_data()` gives the fields, `from_data(fields)` rebuilds it. Subclasses register with
    `register_inline` so any process that imports coflux can decode them."""

    kind = ""

    def to_data(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_data(cls, data: dict) -> Any:
        raise NotImplementedError


_INLINE: dict[str, type[Inline]] = {}
_INLINE_LOADERS: dict[str, Callable[[], Any]] = {}


def register_inline(cls: type[Inline]) -> type[Inline]:
    _INLINE[cls.kind] = cls
    return cls


def register_inline_loader(kinds: tuple[str, ...], load: Callable[[], Any]) -> None:
    """`load()` registers the classes of `kinds` (importing their module): called the first time
    one of them is decoded, so a process loads a codec only once a value needs it."""
    for kind in kinds:
        _INLINE_LOADERS[kind] = load


def use_blob_store(lookup: Callable[[bool], Any]) -> None:
    """How values find the blob store in scope when an encode or decode names none:
    `lookup(required)` returns it, or None (or raises, when `required`) if there is none."""
    global _blob_lookup
    _blob_lookup = lookup


class Ref:
    """Something a value points at by id (an execution); the handle types subclass this."""

    def to_ref(self) -> dict:
        raise NotImplementedError


def encode(value: Any, *, blobs: Any = None) -> dict:
    """The wire value of `value`; ValueTooDeep when it nests more than MAX_DEPTH levels.
    Parts above BLOB_THRESHOLD are uploaded to `blobs` (default: the blob store in scope)."""
    kind = type(value)
    if kind is int or kind is bool or value is None or (kind is float and math.isfinite(value)) \
            or (kind is str and len(value) <= BLOB_THRESHOLD // 4):
        return {"v": value}  # the common case (log values, small arguments) without the walk
    refs: list[dict] = []
    token = _blob_client.set(blobs) if blobs is not None else None
    try:
        data = _encode(value, refs, 1)
        if not refs and isinstance(data, list | dict | str):
            data = _json_blob(data)
    except RecursionError:  # the caller's own stack was already deep
        raise ValueTooDeep() from None
    finally:
        if token is not None:
            _blob_client.reset(token)
    return {"v": data, "refs": refs} if refs else {"v": data}


def _blob_store(required: bool) -> Any:
    store = _blob_client.get()
    if store is None and _blob_lookup is not None:
        store = _blob_lookup(required)
    if store is None and required:  # (coflux.blobs, never loaded here, knows no server either)
        raise RuntimeError("this value is stored as a blob, and there is no coflux server to read it from")
    return store


def _offload(data: bytes, fmt: str, cls: type | None) -> dict | None:
    """A blob node for `data` when it is above the threshold (and a blob store is in scope)."""
    if len(data) <= BLOB_THRESHOLD:
        return None
    name = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else fmt
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"value of type {name} is {len(data)} bytes serialised, more than the maximum of "
                            f"{MAX_VALUE_BYTES} bytes for one value (COFLUX_MAX_VALUE_BYTES)")
    store = _blob_store(False)
    if store is None:
        return None  # outside coflux (no server): inline, up to MAX_INLINE_BYTES
    node = {"$": "blob", "format": fmt, "key": store.put_bytes(data), "size": len(data)}
    if cls is not None:
        node["class"] = name
    return node


def _json_blob(data: Any) -> Any:
    """Large plain data (without references) as one JSON blob; small data as it is."""
    if isinstance(data, str) and len(data) <= BLOB_THRESHOLD // 4:
        return data
    if isinstance(data, dict) and data.get("$") == "blob":
        return data
    text = json.dumps(data, separators=(",", ":")).encode()
    return _offload(text, "json", None) or data


def _encode(value: Any, refs: list[dict], depth: int) -> Any:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > BLOB_THRESHOLD:  # (also inside a value with refs)
            return _offload(value.encode("utf-8", "surrogatepass"), "str", None) or value
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$": "float", "v": repr(value)}
    if depth > MAX_DEPTH:
        raise ValueTooDeep()
    inner = depth + 1
    if isinstance(value, list):
        return [_encode(v, refs, inner) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "$" not in value:
            return {k: _encode(v, refs, inner) for k, v in value.items()}
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        inner = depth + 3  # {"$": "dict", "items": [[k, v], ...]}
        return {"$": "dict", "items": [[_encode(k, refs, inner), _encode(v, refs, inner)] for k, v in items]}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"$": "tuple", "items": [_encode(v, refs, depth + 2) for v in value]}
    if isinstance(value, set | frozenset):
        kind = "set" if isinstance(value, set) else "frozenset"
        return {"$": kind, "items": [_encode(v, refs, depth + 2) for v in sorted(value, key=repr)]}
    if isinstance(value, Inline):
        return {**value.to_data(), "$": value.kind}
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
        return (_offload(value, "bytes", None)  # type: ignore[arg-type]
                or {"$": "bytes", "b64": base64.b64encode(bytes(value)).decode()})
    node = _encode_library_value(value)
    if node is not None:
        return node
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except RecursionError:
        raise ValueTooDeep(f"cannot pickle {type(value).__qualname__} value: it is nested too deeply "
                           "(or contains itself)") from None
    except Exception as exc:
        raise TypeError(f"cannot serialise {type(value).__qualname__} value {value!r:.80}: {exc}") from exc
    cls = type(value)
    node = _offload(data, "pickle", cls)
    if node is not None:
        return node
    if len(data) > MAX_INLINE_BYTES:
        raise ValueError(f"value of type {type(value).__qualname__} is too large ({len(data)} bytes) to "
                         "send without a coflux server's blob store")
    return {"$": "pickle", "b64": base64.b64encode(data).decode(), "class": f"{cls.__module__}.{cls.__qualname__}"}


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_pydantic_model(value: Any) -> bool:
    pydantic = sys.modules.get("pydantic")  # never imported here: a model's module has done it
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _is_dataframe(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _encode_library_value(value: Any) -> dict | None:
    """Pydantic models as their JSON, pandas DataFrames as Parquet: readable without unpickling
    (in `runs inspect` and the step panel) and not tied to the producer's Python. None: neither."""
    if _is_pydantic_model(value):
        data = value.model_dump(mode="json")
        # (through _encode: a "$" key in the model's JSON must not read as a coflux type)
        node = {"$": "pydantic", "class": _class_name(type(value)), "v": _encode(data, [], 2)}
        text = json.dumps(data, separators=(",", ":")).encode()
        if len(text) > BLOB_THRESHOLD:
            blob = _offload(text, "json", None)
            if blob is not None:
                node["v"] = blob
        return node
    if _is_dataframe(value):
        try:
            buffer = _write_parquet(value)
        except Exception:  # a frame Parquet cannot hold (object columns of mixed types): pickled
            return None
        data = buffer.getbuffer()  # (no copy of what may be hundreds of MiB)
        rows, columns = value.shape
        meta = {"rows": rows, "columns": [str(c) for c in value.columns[:50]], "ncolumns": columns}
        blob = _offload(data, "parquet", type(value))
        if blob is not None:
            return {**blob, **meta}
        return {"$": "dataframe", "format": "parquet", "b64": base64.b64encode(data).decode(), **meta}
    return None


def _write_parquet(frame: Any) -> Any:
    """The frame as Parquet (LZ4; dictionary encoding only for non-numeric columns, where it
    pays: on millions of distinct numbers it costs seconds and saves nothing)."""
    import io

    import pyarrow
    import pyarrow.parquet

    table = pyarrow.Table.from_pandas(frame)
    numeric = (pyarrow.types.is_integer, pyarrow.types.is_floating, pyarrow.types.is_boolean,
               pyarrow.types.is_temporal)
    dictionary = [field.name for field in table.schema if not any(test(field.type) for test in numeric)]
    buffer = io.BytesIO()
    pyarrow.parquet.write_table(table, buffer, compression="lz4", use_dictionary=dictionary or False)
    return buffer


def _restore_model(class_name: str, data: Any) -> Any:
    """The model `class_name` (module.Qualname) rebuilt from its JSON when its class can be
    imported here; else the JSON itself (a consumer without the producer's code still reads it)."""
    import importlib

    module_name, _, qualname = class_name.rpartition(".")
    while module_name:
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            return obj.model_validate(data)
        except (ImportError, AttributeError):
            module_name, _, head = module_name.rpartition(".")
            qualname = f"{head}.{qualname}"  # (a class nested in a class)
        except Exception:  # the class changed since the value was made: its JSON is still the value
            return data
    return data


def _read_parquet(data: Any) -> Any:
    import pyarrow
    import pyarrow.parquet

    return pyarrow.parquet.read_table(pyarrow.BufferReader(data)).to_pandas()  # (reads the bytes in place)


def decode(wire: dict, resolve_ref: Callable[[dict], Any] | None = None, *, blobs: Any = None) -> Any:
    if not isinstance(wire, dict) or "v" not in wire:
        raise ValueError(f"not a wire value: {wire!r:.200}")
    token = _blob_client.set(blobs) if blobs is not None else None
    try:
        return _decode(wire["v"], wire.get("refs") or [], resolve_ref, 1)
    except RecursionError:
        raise ValueTooDeep() from None
    finally:
        if token is not None:
            _blob_client.reset(token)


def _decode(data: Any, refs: list[dict], resolve_ref: Callable[[dict], Any] | None, depth: int) -> Any:
    if isinstance(data, list):
        if depth > MAX_DEPTH:
            raise ValueTooDeep()
        return [_decode(v, refs, resolve_ref, depth + 1) for v in data]
    if not isinstance(data, dict):
        return data
    if depth > MAX_DEPTH:
        raise ValueTooDeep()
    kind = data.get("$")
    if kind is None:
        return {k: _decode(v, refs, resolve_ref, depth + 1) for k, v in data.items()}
    if kind == "dict":
        inner = depth + 3
        return {_hashable(_decode(k, refs, resolve_ref, inner)): _decode(v, refs, resolve_ref, inner)
                for k, v in data["items"]}
    if kind == "tuple":
        return tuple(_decode(v, refs, resolve_ref, depth + 2) for v in data["items"])
    if kind in ("set", "frozenset"):
        items = (_hashable(_decode(v, refs, resolve_ref, depth + 2)) for v in data["items"])
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
    if kind == "pydantic":
        return _restore_model(str(data.get("class", "")), _decode(data["v"], refs, resolve_ref, depth + 1))
    if kind == "dataframe":
        return _read_parquet(base64.b64decode(data["b64"]))
    if kind in _INLINE_LOADERS and kind not in _INLINE:
        _INLINE_LOADERS[kind]()
    if kind in _INLINE:
        return _INLINE[kind].from_data(data)
    if kind == "blob":
        content = _blob_store(True).get(data["key"])
        if data.get("format") == "bytes":
            return bytes(content)
        if data.get("format") == "str":
            return bytes(content).decode("utf-8", "surrogatepass")
        if data.get("format") == "json":
            return _decode(json.loads(content), refs, resolve_ref, depth)
        if data.get("format") == "parquet":
            return _read_parquet(content)
        return pickle.loads(content)
    raise ValueError(f"unknown value type {kind!r}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def execution_refs(wire: dict) -> list[str]:
    """Ids of the executions a wire value references."""
    return [r["id"] for r in wire.get("refs") or [] if r.get("type") == "execution"]


def to_display(wire: dict) -> Any:
    """A JSON-friendly rendering of a wire value for terminals and viewers (no unpickling)."""
    refs = wire.get("refs") or []

    def show(data: Any, depth: int = 1) -> Any:
        if not isinstance(data, list | dict):
            return data
        if depth > MAX_DEPTH:
            return "<nested too deeply>"
        if isinstance(data, list):
            return [show(v, depth + 1) for v in data]
        kind = data.get("$")
        if kind is None:
            return {k: show(v, depth + 1) for k, v in data.items()}
        if kind in ("tuple", "set", "frozenset"):
            return [show(v, depth + 2) for v in data["items"]]
        if kind == "dict":
            return {str(show(k, depth + 3)): show(v, depth + 3) for k, v in data["items"]}
        if kind == "ref":
            ref = refs[data["i"]]
            return f"<execution {ref.get('id')}>"
        if kind == "pickle":
            return f"<{data.get('class')}>"
        if kind == "pydantic":  # the model's own JSON: what it holds, readable
            return show(data.get("v"), depth + 1)
        if kind == "dataframe" or (kind == "blob" and data.get("format") == "parquet"):
            return f"<DataFrame {data.get('rows')} rows x {data.get('ncolumns')} columns: " \
                   f"{', '.join(data.get('columns') or [])}>"
        if kind == "bytes":
            return f"<{len(base64.b64decode(data['b64']))} bytes>"
        if kind == "asset":
            return f"<asset {data.get('id')}{' ' + data['name'] if data.get('name') else ''}: " \
                   f"{len(data.get('entries') or [])} file(s)>"
        if kind == "asset_entry":
            return f"<asset entry {data.get('path')}: {data.get('size')} bytes>"
        if kind == "blob":
            return f"<{data.get('class') or data.get('format')}: {data.get('size')} bytes in blob {data.get('key')}>"
        return data.get("v")

    try:
        return show(wire.get("v"))
    except RecursionError:
        return "<nested too deeply>"

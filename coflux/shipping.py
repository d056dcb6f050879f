"""Code shipped by value: a task defined in a notebook cell, run by a worker that accepts it.

A cell-defined task runs in the kernel that defined it, unless it must run elsewhere: it has
`requires` (a kernel provides no tags) or is marked `@cf.task(remote=True)`. Then the kernel
pickles the function by value (cloudpickle: its code with the globals and cell-defined helpers it
uses; installed packages by reference), stores the bytes once in the blob store (content
addressed: the same code is uploaded once) and puts `{"hash": code hash, "blob": key}` in the
step's options. The server gives such a step only to a worker started with `--accept-code`,
which loads the function by its blob key and keeps it (in memory, and in a file cache its
processes share), so later calls load nothing. Both are bounded: the newest functions in memory
(`LOADED_LIMIT`), and the most recently used files up to COFLUX_CODE_CACHE_BYTES (default
256 MiB), the least recently used removed first.

Layer: beside target and blobs (the kernel's context ships, a worker's process loads).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import blobs
from .target import Target

_lock = threading.Lock()
_uploaded: set[tuple[str, str]] = set()  # (server, blob key) this process has stored (the kernel's side)
_loaded: OrderedDict[str, Callable[..., Any]] = OrderedDict()  # blob key -> function, newest last (a worker's)
LOADED_LIMIT = 256
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
_BLOB_KEY = re.compile(r"[0-9a-f]{64}")  # a sha256: the only names the file cache holds


class ShippedCodeError(RuntimeError):
    """Shipped code cannot run here (a package it needs is missing on this worker, or its
    blob is gone): the step fails with this message, not a bare unpickling error."""


def should_ship(target: Target) -> bool:
    """Whether a call of `target` is sent by value: a task defined in `__main__` (a notebook
    cell) that requires tags (the kernel provides none) or is marked `remote=True`."""
    if target.kind != "task" or target.stub or getattr(target.fn, "__module__", None) != "__main__":
        return False
    return bool(getattr(target, "remote", False) or target.options.get("requires"))


def ship(target: Target) -> dict[str, str]:
    """Pickle `target`'s function by value, store it (once per content) and return the step
    option `{"hash": code hash, "blob": blob key}`."""
    import cloudpickle

    data = cloudpickle.dumps(target.fn)
    key = hashlib.sha256(data).hexdigest()
    store = blobs.require()
    with _lock:
        known = (store.url, key) in _uploaded
    if not known:
        store.put_bytes(data, key)
        with _lock:
            _uploaded.add((store.url, key))
    # The code hash (coflux/codehash.py) says which code ran; without readable source (rare in a
    # cell) the content key stands in.
    return {"hash": target.code_hash() or key, "blob": key}


def _cache_dir() -> str:
    path = os.environ.get("COFLUX_CODE_CACHE") or os.path.join(
        tempfile.gettempdir(), f"coflux-code-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    os.makedirs(path, exist_ok=True)
    return path


def _cache_limit() -> int:
    try:
        return max(0, int(os.environ.get("COFLUX_CODE_CACHE_BYTES", DEFAULT_CACHE_BYTES)))
    except ValueError:
        return DEFAULT_CACHE_BYTES


def _prune(directory: str, keep: str) -> None:
    """Remove the least recently used cached code until the cache fits its limit (`keep`, just
    written, stays). A file another process removes meanwhile is simply gone."""
    entries = []
    for entry in os.scandir(directory):
        if _BLOB_KEY.fullmatch(entry.name):
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((info.st_mtime, info.st_size, entry.path))
    total, limit = sum(size for _, size, _ in entries), _cache_limit()
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if os.path.basename(path) != keep:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            total -= size


def _read_blob(key: str) -> bytes:
    """The pickled code: from the file cache, else the blob store (then cached)."""
    if not _BLOB_KEY.fullmatch(key):
        raise ShippedCodeError(f"the shipped code names no valid blob (got {key[:80]!r})")
    directory = _cache_dir()
    path = os.path.join(directory, key)
    try:
        with open(path, "rb") as file:
            data = file.read()
        if hashlib.sha256(data).hexdigest() == key:
            os.utime(path)  # recently used: the last to be pruned
            return data
    except FileNotFoundError:
        pass
    store = blobs.current()
    if store is None:
        raise ShippedCodeError("this worker has no coflux server to read shipped code from")
    try:
        data = bytes(store.get(key))
    except blobs.BlobError as exc:
        raise ShippedCodeError(f"the shipped code (blob {key}) could not be read from the server: {exc}") from None
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "wb") as file:
        file.write(data)
    os.replace(partial, path)  # whole or absent: processes of this worker share the cache
    _prune(directory, key)
    return data


def load(code: dict, *, module: str, name: str, worker: str) -> Target:
    """The shipped function `code` names, as a target to call (unregistered: it is nobody's
    module's). ShippedCodeError names the missing package and this worker."""
    key = str(code.get("blob", ""))
    with _lock:
        fn = _loaded.get(key)
        if fn is not None:
            _loaded.move_to_end(key)
    if fn is None:
        import cloudpickle

        data = _read_blob(key)
        try:
            fn = cloudpickle.loads(data)
        except ModuleNotFoundError as exc:
            raise missing_package(exc, module, name, worker) from None
        with _lock:
            _loaded[key] = fn
            while len(_loaded) > LOADED_LIMIT:
                _loaded.popitem(last=False)
    return Target(fn, "task", name=name, module=module, stub=True)


def missing_package(exc: ModuleNotFoundError, module: str, name: str, worker: str) -> ShippedCodeError:
    package = (exc.name or str(exc)).split(".")[0]
    return ShippedCodeError(
        f"{module}/{name} (shipped code) needs package {package!r}, which is not installed on worker "
        f"{worker}: install it there, or run the task on a worker that has it")

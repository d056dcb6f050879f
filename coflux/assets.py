"""Assets: files an execution persists (`cf.asset`), passed between tasks as `cf.Asset` values.

Each file goes to the server's blob store (content-addressed: a file the server has already is
not uploaded again), then the asset (its name and entries: path, blob key, size, metadata with
a MIME `type`) is recorded for the execution. An `Asset` carries its entries, so a task that
receives one can restore or read files without asking the server first.

Where files come from: a headless execution runs in a fresh temporary working directory, so
by default `cf.asset()` takes every file that execution wrote. In a notebook kernel, executions
share the kernel's working directory (`os.getcwd()`, the notebook's directory by default), and
relative paths resolve against it. Either way, a file must be inside the working directory:
a path outside it (`../x`, an absolute path elsewhere, a symlink pointing out) is a ValueError.

Layer: beside the targets (serialization, the runtime interface, blobs). `Asset` and
`AssetEntry` register their codec with serialization when this module is loaded; the handles
(coflux/models.py) have it loaded when a value first holds one.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from . import runtime
from .serialization import Inline, register_inline

PathLike = str | os.PathLike


def _blob_client(explicit: Any = None) -> Any:
    from . import blobs

    return explicit or blobs.require()


def check_asset_path(path: Any) -> str:
    """`path` as a normalised relative POSIX path inside an asset, else ValueError."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise ValueError(f"asset path {path!r} must be a non-empty relative path with '/' separators")
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal in (".", "..") or normal.startswith("../"):
        raise ValueError(f"asset path {path!r} must be relative and stay inside the asset (no leading '/' "
                         "and no '..' that leaves it)")
    return normal


def _inside(base: Path, target: Path, what: str) -> Path:
    real = target.resolve()
    if real != base and not real.is_relative_to(base):
        raise ValueError(f"{what} {str(target)!r} is outside {str(base)!r}")
    return real


def restore_path(base: Path, asset_path: str) -> Path:
    """Where the entry `asset_path` goes under `base`; ValueError if that would be outside it
    (a '..' in the path, or a symlink under `base` pointing elsewhere)."""
    path = check_asset_path(asset_path)
    base = base.resolve()
    return _inside(base, base.joinpath(*PurePosixPath(path).parts), "restoring to")


@register_inline
class AssetEntry(Inline):
    """One file of an asset: `.path` (inside the asset), `.blob_key`, `.size`, `.metadata`
    (`{"type": MIME type}`)."""

    kind = "asset_entry"
    __slots__ = ("path", "blob_key", "size", "metadata", "_blobs")

    def __init__(self, path: str, blob_key: str, size: int, metadata: dict | None = None, *,
                 blobs: Any = None) -> None:
        self.path = path
        self.blob_key = blob_key
        self.size = size
        self.metadata = metadata or {}
        self._blobs = blobs

    def __repr__(self) -> str:
        return f"AssetEntry({self.path!r}, size={self.size}, type={self.metadata.get('type')!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetEntry) and (self.path, self.blob_key, self.size, self.metadata) == (
            other.path, other.blob_key, other.size, other.metadata)

    def __hash__(self) -> int:
        return hash((self.path, self.blob_key))

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """The file's bytes (or `length` of them from `offset`), from the blob store."""
        if not isinstance(offset, int) or offset < 0 or (length is not None and (not isinstance(length, int)
                                                                                  or length < 0)):
            raise ValueError("offset and length must be non-negative integers")
        return bytes(_blob_client(self._blobs).get(self.blob_key, offset, length))

    def restore(self, *, at: PathLike | None = None) -> Path:
        """Download the file to `at` (default: the working directory) under its asset path;
        returns where it went."""
        target = restore_path(Path(at) if at is not None else Path.cwd(), self.path)
        _blob_client(self._blobs).download(self.blob_key, str(target))
        return target

    def to_wire(self) -> list:
        return [self.path, self.blob_key, self.size, self.metadata]

    def to_data(self) -> dict:
        return {"path": self.path, "key": self.blob_key, "size": self.size, "metadata": self.metadata}

    @classmethod
    def from_data(cls, data: dict) -> AssetEntry:
        return cls(data["path"], data["key"], data["size"], data.get("metadata"))


@register_inline
class Asset(Inline):
    """A persisted collection of files: `.id`, `.name`, `.entries`, `asset["path"]`,
    `"path" in asset`, `.restore(match=, at=)`. Pass it to tasks or return it like any value."""

    kind = "asset"

    def __init__(self, asset_id: str, name: str | None, entries: list[AssetEntry], *, blobs: Any = None) -> None:
        self.id = asset_id
        self.name = name
        self._entries = {e.path: e for e in sorted(entries, key=lambda e: e.path)}
        self._blobs = blobs
        if blobs is not None:
            for entry in self._entries.values():
                entry._blobs = blobs

    @property
    def entries(self) -> list[AssetEntry]:
        return list(self._entries.values())

    @property
    def metadata(self) -> dict:
        return {"name": self.name, "total_count": len(self._entries),
                "total_size": sum(e.size for e in self._entries.values())}

    def __getitem__(self, path: str) -> AssetEntry:
        try:
            return self._entries[path]
        except KeyError:
            raise KeyError(f"asset {self.id} has no entry {path!r}") from None

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __iter__(self) -> Iterator[AssetEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and self.id == other.id and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Asset {self.id}{name}: {len(self)} file(s), {self.metadata['total_size']} bytes>"

    def restore(self, *, match: str | None = None, at: PathLike | None = None) -> dict[str, Path]:
        """Download the entries (those whose path matches the glob `match`) to `at` (default: the
        working directory), keeping their relative paths; returns {asset path: local path}.
        Every target is checked before anything is written."""
        base = Path(at) if at is not None else Path.cwd()
        chosen = [e for e in self._entries.values() if match is None or fnmatch.fnmatchcase(e.path, match)]
        targets = {e.path: restore_path(base, e.path) for e in chosen}
        client = _blob_client(self._blobs)
        for entry in chosen:
            client.download(entry.blob_key, str(targets[entry.path]))
        return targets

    def to_data(self) -> dict:
        return {"id": self.id, "name": self.name, "entries": [e.to_wire() for e in self._entries.values()]}

    @classmethod
    def from_data(cls, data: dict, *, blobs: Any = None) -> Asset:
        entries = []
        for item in data.get("entries") or []:
            if isinstance(item, dict):  # as the server lists them: {path, blob, size, metadata}
                entries.append(AssetEntry(item["path"], item["blob"], item["size"], item.get("metadata")))
            else:
                entries.append(AssetEntry(*item))
        return cls(data["id"], data.get("name"), entries, blobs=blobs)


# ---------------------------------------------------------------------- cf.asset


def _metadata(path: str) -> dict:
    return {"type": mimetypes.guess_type(path)[0] or "application/octet-stream"}


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            yield Path(root, name)


class _Collector:
    """Files (local path -> asset path) and re-referenced entries, checked as they are added."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.files: dict[str, Path] = {}
        self.entries: dict[str, AssetEntry] = {}

    def _claim(self, asset_path: str) -> str:
        asset_path = check_asset_path(asset_path)
        if asset_path in self.files or asset_path in self.entries:
            raise ValueError(f"asset path {asset_path!r} is given twice")
        return asset_path

    def file(self, local: Path, asset_path: str) -> None:
        real = _inside(self.workdir, local, "file")
        if not real.is_file():
            raise ValueError(f"{str(local)!r} is not a file")
        self.files[self._claim(asset_path)] = real

    def entry(self, entry: AssetEntry, asset_path: str) -> None:
        self.entries[self._claim(asset_path)] = entry

    def tree(self, directory: Path, base: Path, match: str | None, prefix: str = "") -> None:
        for path in _walk(directory):
            relative = path.relative_to(base).as_posix()
            if match is None or fnmatch.fnmatchcase(relative, match):
                self.file(path, posixpath.join(prefix, relative) if prefix else relative)


def asset(entries: Any = None, *, at: PathLike | None = None, match: str | None = None,
          name: str | None = None) -> Asset:
    """Persist files as an asset of the running execution and return it as a `cf.Asset`.

    - `None`: every file under `at` (default: the working directory), filtered by the glob `match`;
    - a path (`str`/`Path`) or a list of them, relative to `at`: those files (a directory: the
      files under it);
    - an `Asset`: its entries again (those matching `match`), nothing uploaded;
    - a dict {asset path: file path | `Asset` (its entries under that prefix) | `AssetEntry`}
      (`at` is not allowed with a dict).
    Raises ValueError when no file is found, or a path is outside the working directory."""
    context = runtime.current()
    if context is None:
        raise RuntimeError("cf.asset() can only be called inside a running workflow or task")
    if name is not None and not isinstance(name, str):
        raise TypeError("name must be a string")
    workdir = Path.cwd().resolve()
    collector = _Collector(workdir)
    if isinstance(entries, Mapping):
        if at is not None:
            raise ValueError("'at' is not allowed when entries is a dict (its keys are the asset paths)")
        for key, item in entries.items():
            asset_path = check_asset_path(key if isinstance(key, str) else os.fspath(key))
            if isinstance(item, Asset):
                for entry in item:
                    collector.entry(entry, posixpath.join(asset_path, entry.path))
            elif isinstance(item, AssetEntry):
                collector.entry(item, asset_path)
            elif isinstance(item, str | os.PathLike):
                collector.file(workdir / Path(item), asset_path)
            else:
                raise TypeError(f"a dict of asset paths maps to file paths, Assets or AssetEntries, not "
                                f"{type(item).__name__}")
    else:
        base = _inside(workdir, workdir / Path(at), "'at'") if at is not None else workdir
        if entries is None:
            collector.tree(base, base, match)
        elif isinstance(entries, Asset):
            for entry in entries:
                if match is None or fnmatch.fnmatchcase(entry.path, match):
                    collector.entry(entry, entry.path)
        else:
            items = [entries] if isinstance(entries, str | os.PathLike) else list(entries)
            for item in items:
                if isinstance(item, AssetEntry):
                    collector.entry(item, item.path)
                    continue
                if not isinstance(item, str | os.PathLike):
                    raise TypeError(f"asset entries are paths, not {type(item).__name__}")
                local = base / Path(item)
                real = _inside(workdir, local, "path")
                if real.is_dir():
                    collector.tree(real, base, match)
                elif not real.exists():
                    raise ValueError(f"no file {str(item)!r} (in {str(base)!r})")
                elif match is None or fnmatch.fnmatchcase(real.relative_to(base).as_posix(), match):
                    collector.file(local, real.relative_to(base).as_posix())
    if not collector.files and not collector.entries:
        where = f" matching {match!r}" if match else ""
        raise ValueError(f"no files found for the asset{where} (in {str(workdir)!r})")
    client = _blob_client()
    wire: list[dict] = []
    for asset_path, local in collector.files.items():
        key, size = client.put_file(str(local))
        wire.append({"path": asset_path, "blob": key, "size": size, "metadata": _metadata(asset_path)})
    for asset_path, entry in collector.entries.items():
        wire.append({"path": asset_path, "blob": entry.blob_key, "size": entry.size, "metadata": entry.metadata})
    reply = context.put_asset(name, wire)
    return Asset(reply["id"], name, [AssetEntry(e["path"], e["blob"], e["size"], e["metadata"]) for e in wire])

"""Assets: named collections of files that running code persisted (`cf.asset`).

The files themselves are blobs, uploaded over HTTP before the asset is recorded; the `put_asset`
operation records the asset row with its entries (path, blob key, size, metadata) in the batch's
transaction and publishes an `asset` event on the run's topic after commit. Only the session
running the execution may attach an asset to it. A re-sent `put_asset` (same `key`) gets the
same asset id, so a reconnect never records an asset twice.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import time
from typing import Any

from coflux.protocol import AssetEvent, run_topic

from ..errors import BadRequest
from ..ids import _ALPHABET, run_of
from ..store import schema as t
from .component import Component
from .model import Peer

MAX_ENTRIES = 100_000
MAX_PATH = 1000
MAX_NAME = 300
MAX_METADATA_BYTES = 4096
_BLOB_KEY = re.compile(r"[0-9a-f]{64}")


def asset_path(path: Any) -> str:
    """`path` if it is a relative POSIX path that stays inside its asset, else BadRequest."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise BadRequest(f"asset path {str(path)[:80]!r} must be a relative path of at most {MAX_PATH} characters")
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal != path or normal == "." or normal.split("/")[0] == "..":
        raise BadRequest(f"asset path {path[:80]!r} must be relative, normalised and inside the asset "
                         "(no leading '/', no '.' or '..' parts)")
    return path


def _entries(raw: Any) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'entries' must be a non-empty list of {path, blob, size, metadata}")
    if len(raw) > MAX_ENTRIES:
        raise BadRequest(f"an asset has at most {MAX_ENTRIES} entries")
    entries, seen = [], set()
    for entry in raw:
        if not isinstance(entry, dict):
            raise BadRequest("each entry must be an object {path, blob, size, metadata}")
        path = asset_path(entry.get("path"))
        if path in seen:
            raise BadRequest(f"asset path {path[:80]!r} appears twice")
        seen.add(path)
        blob, size, metadata = entry.get("blob"), entry.get("size"), entry.get("metadata") or {}
        if not isinstance(blob, str) or not _BLOB_KEY.fullmatch(blob):
            raise BadRequest(f"entry {path[:80]!r}: 'blob' must be a blob key (64 lowercase hex characters)")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest(f"entry {path[:80]!r}: 'size' must be a non-negative integer")
        if not isinstance(metadata, dict) or len(repr(metadata)) > MAX_METADATA_BYTES:
            raise BadRequest(f"entry {path[:80]!r}: 'metadata' must be an object of at most "
                             f"{MAX_METADATA_BYTES} bytes")
        entries.append({"path": path, "blob": blob, "size": size, "metadata": metadata})
    return entries


def _asset_id(execution_id: str, key: str) -> str:
    digest = int.from_bytes(hashlib.sha256(f"{execution_id}\x00{key}".encode()).digest()[:16], "big")
    letters = []
    for _ in range(12):
        digest, index = divmod(digest, len(_ALPHABET))
        letters.append(_ALPHABET[index])
    return "A" + "".join(letters)


class Assets(Component):
    def on_put_asset(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """`put_asset` {execution, name, entries, key}: record an asset of a running execution;
        replies {id, name, count, size}."""
        session = self.o.workers.peer_session(peer)
        execution_id = params.get("execution")
        if not isinstance(execution_id, str) or self.ws.active.get(execution_id) != session.id:
            raise BadRequest(f"execution {str(execution_id)[:80]!r} is not running on this worker")
        name = params.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise BadRequest(f"'name' must be a string of at most {MAX_NAME} characters")
        key = params.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise BadRequest("'key' must be a string of 1 to 64 characters")
        entries = _entries(params.get("entries"))
        asset_id = _asset_id(execution_id, key)
        size = sum(e["size"] for e in entries)
        self.w.insert_ignore(t.assets, dict(
            id=asset_id, run_id=run_of(execution_id), execution_id=execution_id, name=name,
            entries=entries, created_at=time.time()))
        self.o.publish(run_topic(run_of(execution_id)), AssetEvent(
            type="asset", execution=execution_id, asset=asset_id, name=name, count=len(entries), size=size))
        self.o.reply(peer, request_id, {"id": asset_id, "name": name, "count": len(entries), "size": size})

"""HTTP access to the blob store (`api/blobs/<key>`) and to assets (`api/assets/<id>`,
`api/runs/<id>/assets`), behind the same authentication as the rest of the API.

`PUT api/blobs/<key>` streams its body into the store (`stream_request_body`): authentication
runs in `prepare`, right after the headers, so nothing of a body is read before the client has
authenticated; the body is hashed as it arrives and stored under its key only if its sha256 is
the key (otherwise 400 and nothing is stored). `GET` supports `Range: bytes=a-b` (206), `HEAD`
tells whether a blob exists (clients skip uploads of content the server has).

Layer: a handler module, on the HTTP base (http_base.py) alone; routes.py mounts its routes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import tornado.web

from .blobs import BlobError, BlobMismatch, BlobStore, BlobTooLarge, BlobWriter, check_key
from .errors import BadRequest, NotFound
from .http_base import RUN_ID_PATTERN, ApiHandler, AuthRequired
from .state import ServerState
from .store import queries

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
ASSET_ID_PATTERN = r"A[A-Za-z0-9]+"


def blob_store(state: ServerState) -> BlobStore:
    store = getattr(state, "blobs", None)
    if store is None:
        raise tornado.web.HTTPError(503, "this server has no blob store configured")
    return store


@tornado.web.stream_request_body
class BlobHandler(ApiHandler):
    """`GET|HEAD|PUT api/blobs/<key>`."""

    def initialize(self, state: ServerState) -> None:  # type: ignore[override]
        super().initialize(state)
        self._writer: BlobWriter | None = None
        self._failure: BlobError | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        # Authentication first (not ApiHandler.prepare: its body limit is for JSON requests).
        await AuthRequired.prepare(self)
        self.authorized()

    def authorized(self) -> None:
        """Check the key and, for a PUT, get ready for the body: called once the caller is
        authenticated (by `prepare`, and by the Jupyter extension's own prepare); idempotent."""
        if self._finished or self._writer is not None or self._failure is not None:
            return
        key = self.path_args[0] if self.path_args else ""
        try:
            check_key(key)
        except BlobError as exc:
            raise BadRequest(str(exc)) from None
        if self.request.method != "PUT":
            return
        store = blob_store(self.state)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > store.max_size:
            raise tornado.web.HTTPError(413, f"blob of {length} bytes is larger than this server's maximum "
                                             f"of {store.max_size} bytes (coflux server --max-blob-bytes)")
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if set_max_body_size is not None:
            set_max_body_size(store.max_size)
        self._writer = store.open_writer(key)

    def data_received(self, chunk: bytes) -> None:
        if self._writer is None or self._failure is not None:
            return
        try:
            self._writer.write(chunk)
        except BlobError as exc:
            self._failure = exc
            self._writer = None

    def on_connection_close(self) -> None:
        if self._writer is not None:  # the client went away mid-upload: nothing is stored
            self._writer.abort()
            self._writer = None

    def on_finish(self) -> None:
        if self._writer is not None:  # refused after the upload was opened: drop the partial file
            self._writer.abort()
            self._writer = None

    async def put(self, key: str) -> None:
        if self._failure is not None:
            status = 413 if isinstance(self._failure, BlobTooLarge) else 400
            raise tornado.web.HTTPError(status, str(self._failure))
        writer, self._writer = self._writer, None
        assert writer is not None
        try:  # fsync and rename off the I/O loop
            size = await asyncio.get_running_loop().run_in_executor(None, writer.commit)
        except BlobMismatch as exc:
            raise BadRequest(str(exc)) from None
        self.write_json({"key": key, "size": size}, 201)

    def _size_or_404(self, key: str) -> int:
        size = blob_store(self.state).size(key)
        if size is None:
            raise NotFound(f"no blob {key}")
        return size

    def head(self, key: str) -> None:
        # Clients check before uploading whether the server has the blob, and how large one may be.
        self.set_header("X-Coflux-Max-Blob-Bytes", str(blob_store(self.state).max_size))
        self.set_header("Content-Length", str(self._size_or_404(key)))
        self.set_header("Accept-Ranges", "bytes")
        self.finish()

    async def get(self, key: str) -> None:
        size = self._size_or_404(key)
        offset, length = 0, size
        header = self.request.headers.get("Range")
        if header:
            match = _RANGE.fullmatch(header.strip())
            if match is None or not (match.group(1) or match.group(2)):
                raise BadRequest(f"unsupported Range {header[:80]!r} (one range: bytes=START-END)")
            start, end = match.group(1), match.group(2)
            if start:
                offset = int(start)
                last = min(int(end), size - 1) if end else size - 1
            else:  # bytes=-N: the last N bytes
                offset = max(0, size - int(end))
                last = size - 1
            if offset >= size or last < offset:
                self.set_header("Content-Range", f"bytes */{size}")  # send_error would clear it
                self.write_json({"error": {"code": "bad_range", "message": f"range {header[:80]!r} is outside "
                                                                           f"the blob ({size} bytes)"}}, 416)
                return
            length = last - offset + 1
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {offset}-{last}/{size}")
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(length))
        self.set_header("Accept-Ranges", "bytes")
        for chunk in blob_store(self.state).read(key, offset, length):
            self.write(chunk)
            await self.flush()  # one chunk in memory at a time
        self.finish()


class AssetHandler(ApiHandler):
    """`GET api/assets/<id>`: the asset with its entries."""

    async def get(self, asset_id: str) -> None:
        asset = await self.state.read(queries.get_asset, asset_id)
        await self.require_run(asset["run"])  # a token limited to other workspaces: 403
        self.write_json(asset)


class RunAssetsHandler(ApiHandler):
    """`GET api/runs/<id>/assets`: the assets the run's executions created, oldest first."""

    async def get(self, run_id: str) -> None:
        await self.require_run(run_id)
        self.write_json({"assets": await self.state.read(queries.list_run_assets, run_id)})


def blob_routes(state: ServerState) -> list[tuple[str, type, dict[str, Any]]]:
    kw = {"state": state}
    return [
        (r"api/blobs/([^/]*)", BlobHandler, kw),
        (rf"api/assets/({ASSET_ID_PATTERN})", AssetHandler, kw),
        (rf"api/runs/({RUN_ID_PATTERN})/assets", RunAssetsHandler, kw),
    ]

"""The SDK side of the blob store: upload and download content-addressed blobs over the server's
HTTP API (`PUT|GET|HEAD {server}api/blobs/<sha256>`), with the same URL and token as the
WebSocket connection.

Which server: inside an execution, the one its worker talks to (the runtime's `blobs`: a
headless worker's pool process gets the URL and token with each execution and uploads directly,
so a 500 MiB value never crosses the pipe to its parent); elsewhere the client or kernel created
last in this process. Values above serialization's blob threshold find it through `for_values`,
which the runtime (coflux/context.py) and the client register with serialization (this module
does not import serialization: `coflux assets` commands use it and start light).

Layer: beside the targets, above the runtime interface.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tempfile
import threading
import urllib.parse
from typing import Any, BinaryIO

from . import runtime

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


class BlobError(RuntimeError):
    """The blob store refused a request, or returned content that does not match its key."""


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise BlobError(f"not a blob key: {str(key)[:80]!r} (64 lowercase hex characters)")
    return key


def file_key(path: str) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class BlobClient:
    """Blobs of one server. Thread-safe: each request uses its own HTTP connection."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 600.0) -> None:
        parts = urllib.parse.urlsplit(url if url.endswith("/") else url + "/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) server URL: {url!r}")
        self.url = urllib.parse.urlunsplit(parts)
        self.token = token
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<BlobClient {self.url}>"

    # ------------------------------------------------------------------ HTTP

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def _path(self, key: str) -> str:
        return f"{self._base}api/blobs/{check_key(key)}"

    @staticmethod
    def _fail(response: http.client.HTTPResponse, what: str) -> BlobError:
        body = response.read(64 * 1024)
        try:
            message = json.loads(body)["error"]["message"]
        except Exception:
            message = body.decode("utf-8", "replace")[:500] or response.reason
        return BlobError(f"{what}: HTTP {response.status}: {message}")

    def exists(self, key: str, size: int | None = None) -> bool:
        """Whether the server has the blob; with `size`, BlobError if it would refuse a blob that large."""
        conn = self._connection()
        try:
            conn.request("HEAD", self._path(key), headers=self._headers())
            response = conn.getresponse()
            response.read()
            limit = response.getheader("X-Coflux-Max-Blob-Bytes") or ""
            if size is not None and limit.isdigit() and size > int(limit) and response.status != 200:
                raise BlobError(f"blob of {size} bytes is larger than this server's maximum of {limit} bytes "
                                "(coflux server --max-blob-bytes)")
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            raise BlobError(f"checking blob {key}: HTTP {response.status} {response.reason}")
        finally:
            conn.close()

    def _put(self, key: str, body: Any, size: int) -> None:
        conn = self._connection()
        try:
            try:
                conn.request("PUT", self._path(key), body=body,
                             headers=self._headers({"Content-Length": str(size),
                                                    "Content-Type": "application/octet-stream"}))
            except (BrokenPipeError, ConnectionResetError) as exc:
                try:  # the server answered before reading the whole body (a refusal): say why
                    response = conn.getresponse()
                except Exception:
                    raise BlobError(f"uploading blob {key} ({size} bytes): connection lost ({exc})") from None
                raise self._fail(response, f"uploading blob {key} ({size} bytes)") from None
            response = conn.getresponse()
            if response.status not in (200, 201):
                raise self._fail(response, f"uploading blob {key} ({size} bytes)")
            response.read()
        finally:
            conn.close()

    # ------------------------------------------------------------------ API

    def put_bytes(self, data: bytes | bytearray | memoryview, key: str | None = None) -> str:
        """Store `data` (skipped when the server has it already); returns its key."""
        key = key or hashlib.sha256(data).hexdigest()
        if not self.exists(key, len(data)):
            self._put(key, data, len(data))
        return key

    def put_file(self, path: str) -> tuple[str, int]:
        """Store a file (streamed, never read whole into memory); returns (key, size)."""
        key, size = file_key(path)
        if not self.exists(key, size):
            with open(path, "rb") as file:
                self._put(key, file, size)
        return key, size

    def _get(self, key: str, offset: int, length: int | None) -> tuple[http.client.HTTPConnection,
                                                                        http.client.HTTPResponse]:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        conn = self._connection()
        conn.request("GET", self._path(key), headers=self._headers(headers))
        response = conn.getresponse()
        if response.status not in (200, 206):
            try:
                raise self._fail(response, f"reading blob {key}")
            finally:
                conn.close()
        return conn, response

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytearray:
        """The blob's bytes (or `length` of them from `offset`); a whole blob is checked
        against its key."""
        if length == 0:
            return bytearray()
        try:
            conn, response = self._get(key, offset, length)
        except BlobError as exc:
            if "HTTP 416" in str(exc):
                return bytearray()  # past the end: nothing there, as a file read gives
            raise
        try:
            size = int(response.getheader("Content-Length") or 0)
            buffer = bytearray(size)  # read into place: no second copy of a large value
            view = memoryview(buffer)
            got = 0
            while got < size:
                n = response.readinto(view[got:got + CHUNK])
                if not n:
                    raise BlobError(f"reading blob {key}: the connection closed after {got} of {size} bytes")
                got += n
        finally:
            conn.close()
        if offset == 0 and length is None:
            actual = hashlib.sha256(buffer).hexdigest()
            if actual != key:
                raise BlobError(f"blob {key} came back with different content (sha256 {actual})")
        return buffer

    def download(self, key: str, path: str) -> int:
        """Write the blob to `path` (through a temporary file beside it, renamed once the content
        matches its key); returns its size."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        conn, response = self._get(key, 0, None)
        fd, tmp = tempfile.mkstemp(prefix=".coflux-download-", dir=directory)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as file:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    file.write(chunk)
                    size += len(chunk)
            if digest.hexdigest() != key:
                raise BlobError(f"blob {key} came back with different content (sha256 {digest.hexdigest()})")
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        finally:
            conn.close()
        return size

    def api_get(self, path: str) -> Any:
        """GET `{server}api/<path>` as JSON (assets, listings); BlobError with the server's message."""
        conn = self._connection()
        try:
            conn.request("GET", f"{self._base}api/{urllib.parse.quote(path)}", headers=self._headers())
            response = conn.getresponse()
            if response.status != 200:
                raise self._fail(response, f"GET api/{path}")
            return json.loads(response.read())
        finally:
            conn.close()

    def open_stream(self, key: str) -> BinaryIO:
        """A file-like reader of the blob (not verified: for previews and copies)."""
        _conn, response = self._get(key, 0, None)
        return response  # type: ignore[return-value]


# ---------------------------------------------------------------------- which server

_lock = threading.Lock()
_default: BlobClient | None = None


def configure(url: str, token: str | None) -> BlobClient:
    """Make the server at `url` this process's blob store (clients, kernels, pool processes)."""
    global _default
    with _lock:
        if _default is None or _default.url != BlobClient(url, token).url or _default.token != token:
            _default = BlobClient(url, token)
        return _default


def for_endpoint(url: str | None, token: str | None) -> BlobClient | None:
    return BlobClient(url, token) if url else None


def default() -> BlobClient | None:
    """The process default: the server configured last (by a client, a kernel, a pool process)."""
    return _default


def current() -> BlobClient | None:
    """The blob store in scope: the running execution's server, else the process default."""
    context = runtime.current()
    if context is not None:
        found = context.blobs
        if found is not None:
            return found
    return _default


def require() -> BlobClient:
    found = current()
    if found is None:
        raise BlobError("no coflux server to store blobs on: create a Client, or run inside a worker")
    return found


def for_values(required: bool) -> BlobClient | None:
    """The blob store serialization uses when a value names none (`serialization.use_blob_store`)."""
    found = current()
    if found is None and required:
        raise BlobError("this value is stored as a blob, and there is no coflux server to read it from")
    return found

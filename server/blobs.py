"""The content-addressed blob store: values too large for a database row, and asset files.

A blob's key is the sha256 of its content, as 64 lowercase hex characters (nothing else is a
key: no path separators, no dots, no upper case), so equal content is stored once and a key can
be checked against what it names. `BlobStore` is the interface the HTTP handlers use; the
local directory store implements it, and an S3-compatible store can implement it later (its
`open_writer` would stream a multipart upload and `commit` verify the digest before completing).

Writes never leave a partial blob under its key: the content goes to a temporary file in the
store's directory, is hashed while it streams, and is renamed to its key only when the digest
matches (a mismatch removes the temporary file and raises `BlobMismatch`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from typing import BinaryIO, Protocol

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
# What one blob may be (a value or an asset file); `coflux server --max-blob-bytes` changes it.
DEFAULT_MAX_BLOB_BYTES = 4 * 1024 ** 3
CHUNK = 1024 * 1024


class BlobError(ValueError):
    """A request the store refuses (bad key, content that does not match its key, too large)."""


class BadKey(BlobError):
    pass


class BlobMismatch(BlobError):
    pass


class BlobTooLarge(BlobError):
    pass


def check_key(key: str) -> str:
    """`key` if it is a blob key (64 lowercase hex characters), else BadKey."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise BadKey(f"not a blob key: {str(key)[:80]!r} (a key is the sha256 of the content, "
                     "64 lowercase hex characters)")
    return key


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> int: ...  # verify and store; returns the size
    def abort(self) -> None: ...


class BlobStore(Protocol):
    max_size: int

    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def open_writer(self, key: str) -> BlobWriter: ...
    def read(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...


class _LocalWriter:
    def __init__(self, store: LocalBlobStore, key: str) -> None:
        self.store = store
        self.key = key
        os.makedirs(store.tmp_dir, exist_ok=True)
        fd, self.tmp_path = tempfile.mkstemp(prefix="upload-", dir=store.tmp_dir)
        self.file: BinaryIO | None = os.fdopen(fd, "wb")
        self.digest = hashlib.sha256()
        self.written = 0

    def write(self, chunk: bytes) -> None:
        if self.file is None:
            raise BlobError("the upload was already finished")
        self.written += len(chunk)
        if self.written > self.store.max_size:
            self.abort()
            raise BlobTooLarge(f"blob larger than the server's maximum of {self.store.max_size} bytes")
        self.digest.update(chunk)
        self.file.write(chunk)

    def commit(self) -> int:
        if self.file is None:
            raise BlobError("the upload was already finished")
        actual = self.digest.hexdigest()
        if actual != self.key:
            self.abort()
            raise BlobMismatch(f"content does not match its key: its sha256 is {actual}, not {self.key}")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.file = None
        path = self.store.path(self.key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(self.tmp_path, path)  # atomic: readers see nothing or the whole blob
        return self.written

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass


class LocalBlobStore:
    """Blobs as files `<root>/ab/cd/<key>` (the first two byte pairs of the key as directories)."""

    def __init__(self, root: str, *, max_size: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self.root = os.path.abspath(root)
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.max_size = max_size  # directories are made by the first upload
        self._remove_stale_uploads()

    def _remove_stale_uploads(self, older_than: float = 86400.0) -> None:
        """Temporary files of uploads a crashed server never finished (never under a key)."""
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return
        cutoff = time.time() - older_than
        for name in names:
            path = os.path.join(self.tmp_dir, name)
            try:
                if name.startswith("upload-") and os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
            except OSError:
                pass

    def path(self, key: str) -> str:
        check_key(key)  # the key is the only part of the path that comes from outside
        return os.path.join(self.root, key[:2], key[2:4], key)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def size(self, key: str) -> int | None:
        try:
            return os.stat(self.path(key)).st_size
        except FileNotFoundError:
            return None

    def open_writer(self, key: str) -> _LocalWriter:
        check_key(key)
        return _LocalWriter(self, key)

    def put(self, data: bytes) -> str:
        """Store `data` (tests, small values); returns its key."""
        key = hashlib.sha256(data).hexdigest()
        if not self.exists(key):
            writer = self.open_writer(key)
            writer.write(data)
            writer.commit()
        return key

    def read(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The blob's bytes from `offset` (at most `length` of them), in chunks; FileNotFoundError
        when there is no such blob."""
        file = open(self.path(key), "rb")  # noqa: SIM115 (closed by the generator)

        def chunks() -> Iterator[bytes]:
            with file:
                file.seek(offset)
                remaining = length
                while remaining is None or remaining > 0:
                    chunk = file.read(CHUNK if remaining is None else min(CHUNK, remaining))
                    if not chunk:
                        return
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk

        return chunks()

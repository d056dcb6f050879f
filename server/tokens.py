"""Service tokens as the server's authentication sees them: a token's SHA-256 and who holds it.

Layer: the server's HTTP base (beside principal.py); the headless app's authentication asks it
who a presented token belongs to. The rows are written by the orchestrator's `tokens`
component and read at start (store/tokens.py); this book is the in-memory copy, so a request
or a WebSocket connection costs one hash and one dict lookup, never a database read.

Revoking takes the token out of the book at once (the next request with it gets 403) and
closes the WebSockets that authenticated with it (a worker, a kernel, the CLI).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .principal import Principal

TOKEN_PREFIX = "cft_"
# The close code a WebSocket authenticated by a revoked token is closed with (4000-4999: the
# application's own; 4003 reads as HTTP's 403).
REVOKED_CLOSE_CODE = 4003


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def principal_from_row(row: Mapping[str, Any]) -> Principal:
    workspaces = row["workspaces"]
    return Principal(name=row["name"], kind="service",
                     workspaces=tuple(workspaces) if workspaces is not None else None,
                     tags={key: tuple(values) for key, values in (row["tags"] or {}).items()},
                     may_ship_code=bool(row["may_ship_code"]))


@dataclass(frozen=True)
class TokenHolder:
    id: str
    principal: Principal


class TokenBook:
    """The live service tokens by hash, the revoked hashes (for a clear refusal), and the
    WebSockets open with each token (to close them when it is revoked). Used on the I/O loop."""

    def __init__(self) -> None:
        self._live: dict[str, TokenHolder] = {}
        self._revoked: set[str] = set()
        self._sockets: dict[str, set[Any]] = {}

    def load(self, rows: list[Mapping[str, Any]]) -> None:
        for row in rows:
            if row["revoked_at"] is None:
                self.add(row)
            else:
                self._revoked.add(row["token_hash"])

    def add(self, row: Mapping[str, Any]) -> None:
        self._live[row["token_hash"]] = TokenHolder(row["id"], principal_from_row(row))

    def lookup(self, token: str) -> TokenHolder | None:
        return self._live.get(hash_token(token)) if self._live else None

    def is_revoked(self, token: str) -> bool:
        return bool(self._revoked) and hash_token(token) in self._revoked

    def revoke(self, token_hash: str) -> list[Any]:
        """Forget the token; returns the sockets open with it (the caller closes them)."""
        holder = self._live.pop(token_hash, None)
        self._revoked.add(token_hash)
        return list(self._sockets.pop(holder.id, ())) if holder is not None else []

    def track(self, token_id: str, socket: Any) -> None:
        self._sockets.setdefault(token_id, set()).add(socket)

    def untrack(self, token_id: str, socket: Any) -> None:
        sockets = self._sockets.get(token_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[token_id]

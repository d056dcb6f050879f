"""Service tokens: created and revoked in the orchestrator's transaction (the single writer).

The token itself is made here and handed back once; only its SHA-256 is stored.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from ..errors import BadRequest, NotFound
from ..ids import random_id
from ..store import schema as t
from ..tokens import hash_token, new_token
from .component import Component


class Tokens(Component):
    def create(self, name: str, *, workspaces: list[str] | None, tags: dict[str, list[str]],
               may_ship_code: bool, by: str | None) -> tuple[str, dict]:
        """A new token: (the token, its row). The token is not stored and cannot be shown again."""
        name = name.strip()
        if not name or len(name) > 200:
            raise BadRequest("a token name must be 1 to 200 characters")
        if workspaces is not None and (not workspaces or not all(isinstance(p, str) and p.strip()
                                                                 for p in workspaces)):
            raise BadRequest("'workspaces' must be a non-empty list of workspace names or patterns")
        token = new_token()
        row = {"id": random_id("T", 10), "name": name, "token_hash": hash_token(token),
               "workspaces": [p.strip() for p in workspaces] if workspaces is not None else None,
               "tags": tags, "may_ship_code": may_ship_code, "created_at": time.time(),
               "created_by": by, "revoked_at": None}
        self.db.execute(t.tokens.insert().values(**row))
        return token, row

    def revoke(self, token_id: str) -> dict[str, Any]:
        row = self.db.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no token {token_id!r}")
        if row.revoked_at is not None:
            raise BadRequest(f"token {token_id!r} ({row.name}) is already revoked")
        self.db.execute(t.tokens.update().where(t.tokens.c.id == token_id).values(revoked_at=time.time()))
        return {"id": row.id, "name": row.name, "token_hash": row.token_hash}

"""Reads of the service tokens (the orchestrator's `tokens` component writes them)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from . import schema as t


def all_tokens(engine: Engine) -> list[dict]:
    """Every token row, revoked ones too (hash included: for the server's own token book)."""
    with engine.connect() as db:
        return [dict(row._mapping) for row in db.execute(select(t.tokens).order_by(t.tokens.c.created_at))]


def list_tokens(engine: Engine) -> list[dict]:
    """What `coflux tokens list` shows: never the hash."""
    return [{key: value for key, value in row.items() if key != "token_hash"} for row in all_tokens(engine)]

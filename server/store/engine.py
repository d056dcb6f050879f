"""Engine creation: SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine, event

from .migrations import migrate


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL keeps readers and the single writer apart; NORMAL sync in WAL mode never loses a
    # committed transaction to a process crash (only an OS crash can drop the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """Create an engine for `url`, create or migrate its schema, and return it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _tune_sqlite)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine

"""Versioned schema migrations, applied in order by the server at start.

Each migration is a function taking a connection inside a transaction. Version 1 creates the
tables of `schema.py` as they were first released; later versions add to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select

from . import schema


def _v1_initial(conn: Connection) -> None:
    tables = [t for name, t in schema.metadata.tables.items() if name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)
    conn.execute(schema.workspaces.insert().values(name="default", base_id=None, created_at=time.time()))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial]


def migrate(engine: Engine) -> int:
    """Bring the database to the latest version; returns that version."""
    with engine.begin() as conn:
        if not inspect(conn).has_table("schema_version"):
            schema.schema_version.create(conn)
        current = conn.execute(select(schema.schema_version.c.version).order_by(
            schema.schema_version.c.version.desc()).limit(1)).scalar() or 0
        for version, step in enumerate(MIGRATIONS, start=1):
            if version > current:
                step(conn)
                conn.execute(schema.schema_version.insert().values(version=version, applied_at=time.time()))
        return len(MIGRATIONS)

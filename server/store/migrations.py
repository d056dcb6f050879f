"""Versioned schema migrations, applied in order by the server at start.

Each migration is a function taking a connection inside a transaction. Version 1 creates the
tables of `schema.py` (as they are now: later versions check before they add); version 2 adds
`sessions.secret_hash`; version 4 drops SQLite's log-indexing trigger (the orchestrator indexes);
version 5 makes the cache, memo and successor indexes partial.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

from . import schema, search


def _v1_initial(conn: Connection) -> None:
    tables = [t for name, t in schema.metadata.tables.items() if name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)
    conn.execute(schema.workspaces.insert().values(name="default", base_id=None, created_at=time.time()))


def _v2_session_secret(conn: Connection) -> None:
    # A database created by this version's _v1_initial already has the column.
    if "secret_hash" not in {c["name"] for c in inspect(conn).get_columns("sessions")}:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN secret_hash VARCHAR(64)"))


def _v3_observability(conn: Connection) -> None:
    """The event feed, logs, metrics and assets (tables a v1 database of this version has already),
    and the full-text index of log lines."""
    schema.metadata.create_all(conn, tables=[schema.events, schema.logs, schema.metric_definitions,
                                             schema.metric_points, schema.assets, schema.telemetry_batches])
    search.create_log_index(conn)


def _v4_log_index_written_by_orchestrator(conn: Connection) -> None:
    """SQLite: the orchestrator fills the log search index itself, in the transaction that
    inserts the lines (server/orchestrator/telemetry.py); the per-row trigger goes."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER IF EXISTS logs_fts_insert"))


def _v5_partial_key_indexes(conn: Connection) -> None:
    """The cache, memo and successor indexes leave out rows without a key (most rows): a step's
    commit then writes fewer index pages."""
    for index in (schema.steps.indexes | schema.results.indexes):
        if index.name in ("ix_steps_cache_key", "ix_steps_memo_key", "ix_results_successor"):
            conn.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
            index.create(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_session_secret, _v3_observability,
                                                  _v4_log_index_written_by_orchestrator, _v5_partial_key_indexes]


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

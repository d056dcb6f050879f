"""Versioned schema migrations, applied in order by the server at start.

Each migration is a function taking a connection inside a transaction. Version 1 creates the
tables of `schema.py` (as they are now: later versions check before they add); version 2 adds
`sessions.secret_hash`; version 4 drops SQLite's log-indexing trigger (the orchestrator indexes);
version 5 makes the cache, memo and successor indexes partial; version 6 stores log lines and
metric points a batch to a row (`telemetry`), converting the rows of the tables before it;
version 7 adds `executions.assignment` (which hand-out of an execution a worker's message is about);
version 8 adds `tokens` (service tokens, as hashes); version 9 records who did what
(`runs.created_by`, `actions`); version 10 adds `executions.code_hash`; version 11 adds `inputs`
(prompts raised for a person); version 12 adds `workspaces.paused_at`; version 13 adds pools and
their launches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    func,
    inspect,
    select,
    text,
)

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
    schema.metadata.create_all(conn, tables=[schema.events, schema.assets, schema.telemetry])
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


# The tables of log lines and metrics before version 6 (a row per line, point and definition).
legacy = MetaData()
legacy_logs = Table("logs", legacy, Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
                    Column("run_id", String(40), nullable=False), Column("execution_id", String(70), nullable=False),
                    Column("level", String(10), nullable=False), Column("template", Text), Column("fields", JSON),
                    Column("at", Float, nullable=False))
legacy_metric_definitions = Table(
    "metric_definitions", legacy, Column("execution_id", String(70), primary_key=True),
    Column("key", String(200), primary_key=True), Column("run_id", String(40), nullable=False),
    Column("group", JSON), Column("scale", JSON), Column("created_at", Float, nullable=False))
legacy_metric_points = Table(
    "metric_points", legacy, Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("run_id", String(40), nullable=False), Column("execution_id", String(70), nullable=False),
    Column("key", String(200), nullable=False), Column("x", Float, nullable=False),
    Column("value", Float, nullable=False))
legacy_telemetry_batches = Table("telemetry_batches", legacy, Column("execution_id", String(70), primary_key=True),
                                 Column("batch", Integer, primary_key=True))

_CHUNK = 10_000  # legacy rows converted at a time
_MAX_BATCH = 1000  # entries per converted batch


def _v6_telemetry_batches(conn: Connection) -> None:
    """Log lines and metric points a batch to a row. The lines keep their ids (the feed's stored
    events name them); points, whose ids were a sequence of their own, move after the last line,
    and the feed's stored `metrics` events move with them. The search index now holds a document
    per batch: it is emptied here and filled when the server starts."""
    schema.metadata.create_all(conn, tables=[schema.telemetry])
    if conn.dialect.name == "sqlite":  # it indexed lines; now batches (the server indexes them at start)
        conn.execute(text("DROP TABLE IF EXISTS logs_fts"))
    search.create_log_index(conn)
    present = set(inspect(conn).get_table_names())
    if "logs" not in present:
        return
    writer = _BatchWriter(conn)
    c = legacy_logs.c
    after = 0
    while rows := conn.execute(select(c.id, c.run_id, c.execution_id, c.level, c.template, c.fields, c.at)
                               .where(c.id > after).order_by(c.id).limit(_CHUNK)).all():
        for r in rows:
            writer.add_line(r.id, r.run_id, r.execution_id, [r.level, r.template, r.fields, r.at], r.at)
        after = rows[-1].id
    writer.close()
    shift = writer.next_id - 1  # point ids move after every line id
    p = legacy_metric_points.c
    after = 0
    while rows := conn.execute(select(p.id, p.run_id, p.execution_id, p.key, p.x, p.value)
                               .where(p.id > after).order_by(p.id).limit(_CHUNK)).all():
        for r in rows:
            writer.add_point(r.id + shift, r.run_id, r.execution_id, [r.key, r.x, r.value])
        after = rows[-1].id
    writer.close()
    d = legacy_metric_definitions.c
    for r in conn.execute(select(d.execution_id, d.key, d.run_id, d.group, d.scale, d.created_at)
                          .order_by(d.created_at)).all():
        writer.add_definition(r.run_id, r.execution_id, r.key, {"group": r.group, "scale": r.scale}, r.created_at)
    writer.close()
    if shift:
        _shift_stored_metric_events(conn, shift)
    for table in (legacy_logs, legacy_metric_points, legacy_metric_definitions, legacy_telemetry_batches):
        table.drop(conn, checkfirst=True)


class _BatchWriter:
    """Groups legacy rows into `telemetry` rows: consecutive entries of one execution."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.next_id = (conn.execute(select(func.max(schema.telemetry.c.id))).scalar() or 0) + 1
        self.row: dict[str, Any] | None = None
        self.entries: list = []
        self.rows: list[dict] = []
        self.definitions: dict[str, dict] = {}  # execution -> its definitions (one row each)

    def add_line(self, line_id: int, run_id: str, execution_id: str, line: list, at: float) -> None:
        self._continue("lines", line_id, run_id, execution_id, at)
        self.entries.append(line)

    def add_point(self, point_id: int, run_id: str, execution_id: str, point: list) -> None:
        self._continue("points", point_id, run_id, execution_id, 0.0)
        self.entries.append(point)

    def add_definition(self, run_id: str, execution_id: str, key: str, definition: dict, at: float) -> None:
        row = self.definitions.get(execution_id)
        if row is None:
            row = self.definitions[execution_id] = self._new("definitions", self.next_id, run_id, execution_id, at)
            row["definitions"] = {}
            self.next_id += 1
        row["definitions"].setdefault(key, definition)

    def _continue(self, kind: str, entry_id: int, run_id: str, execution_id: str, at: float) -> None:
        row = self.row
        if row is None or row["_kind"] != kind or row["execution_id"] != execution_id \
                or entry_id != row["id"] + len(self.entries) or len(self.entries) >= _MAX_BATCH:
            self._end()
            self.row = self._new(kind, entry_id, run_id, execution_id, at)

    def _new(self, kind: str, first: int, run_id: str, execution_id: str, at: float) -> dict:
        return {"_kind": kind, "id": first, "run_id": run_id, "execution_id": execution_id, "batch": 0,
                "at": at, "line_count": 0, "levels": 0, "lines": None, "point_count": 0, "points": None,
                "definitions": None, "wide_ints": True}  # not looked at: read exactly, if slower

    def _end(self) -> None:
        row, entries, self.row, self.entries = self.row, self.entries, None, []
        if row is None or not entries:
            return
        if row["_kind"] == "lines":
            row.update(line_count=len(entries), lines=json.dumps(entries),
                       levels=_levels_of(entries))
        else:
            row.update(point_count=len(entries), points=json.dumps(entries))
        self.next_id = max(self.next_id, row["id"] + len(entries))
        self.rows.append(row)
        if len(self.rows) >= _CHUNK // 10:
            self._write()

    def _write(self) -> None:
        rows, self.rows = self.rows, []
        if rows:
            self.conn.execute(schema.telemetry.insert(), [{k: v for k, v in r.items() if k != "_kind"} for r in rows])

    def close(self) -> None:
        self._end()
        for row in self.definitions.values():
            row["definitions"] = json.dumps(row["definitions"])
            self.rows.append(row)
        self.definitions = {}
        self._write()


def _levels_of(lines: list) -> int:
    levels = 0
    for line in lines:
        levels |= schema.LEVEL_BITS.get(line[0], 0)
    return levels


def _shift_stored_metric_events(conn: Connection, shift: int) -> None:
    """The feed's stored `metrics` events name their points by id: move them with the points."""
    e = schema.events.c
    for seq, data in conn.execute(select(e.seq, e.data).where(cast(e.data, Text).like('%"metrics"%'))).all():
        changed = False
        for event in data.get("events", ()):
            if event.get("type") == "metrics" and "first" in event:
                event["first"] = int(event["first"]) + shift
                changed = True
        if changed:
            conn.execute(schema.events.update().where(e.seq == seq).values(data=data))


def _v7_execution_assignment(conn: Connection) -> None:
    """The number of the latest hand-out of each execution to a worker. Executions assigned
    before it existed count as hand-out 0 (NULL), which is what their workers (that know no
    numbers) are taken to mean."""
    # A database created by this version's _v1_initial already has the column.
    if "assignment" not in {c["name"] for c in inspect(conn).get_columns("executions")}:
        conn.execute(text("ALTER TABLE executions ADD COLUMN assignment INTEGER"))


def _v8_service_tokens(conn: Connection) -> None:
    """Service tokens, kept as SHA-256 hashes (a database created by this version's _v1_initial
    has the table already)."""
    schema.metadata.create_all(conn, tables=[schema.tokens])


def _v9_who_did_it(conn: Connection) -> None:
    """Who submitted each run (`runs.created_by`) and who re-ran or cancelled what (`actions`)."""
    if "created_by" not in {c["name"] for c in inspect(conn).get_columns("runs")}:
        conn.execute(text("ALTER TABLE runs ADD COLUMN created_by VARCHAR(200)"))
    schema.metadata.create_all(conn, tables=[schema.actions])


def _v10_execution_code_hash(conn: Connection) -> None:
    """The hash of the code each attempt runs (NULL for attempts made before it was recorded,
    which a resume then matches on target and arguments alone)."""
    if "code_hash" not in {c["name"] for c in inspect(conn).get_columns("executions")}:
        conn.execute(text("ALTER TABLE executions ADD COLUMN code_hash VARCHAR(64)"))


def _v11_inputs(conn: Connection) -> None:
    """Prompts raised for a person (`cf.Prompt`), one row each (a database created by this
    version's _v1_initial has the table already)."""
    if not inspect(conn).has_table("inputs"):
        schema.metadata.create_all(conn, tables=[schema.inputs])


def _v12_workspace_pause(conn: Connection) -> None:
    """`workspaces.paused_at`: a paused workspace dispatches nothing new (`coflux workspaces pause`)."""
    if "paused_at" not in {c["name"] for c in inspect(conn).get_columns("workspaces")}:
        conn.execute(text("ALTER TABLE workspaces ADD COLUMN paused_at FLOAT"))


def _v13_pools(conn: Connection) -> None:
    """Pools and the workers launched for them (tables a database created by this version's
    _v1_initial has already)."""
    schema.metadata.create_all(conn, tables=[schema.pools, schema.launches], checkfirst=True)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_session_secret, _v3_observability,
                                                  _v4_log_index_written_by_orchestrator, _v5_partial_key_indexes,
                                                  _v6_telemetry_batches, _v7_execution_assignment,
                                                  _v8_service_tokens, _v9_who_did_it, _v10_execution_code_hash,
                                                  _v11_inputs, _v12_workspace_pause, _v13_pools]


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

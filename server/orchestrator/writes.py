"""Buffered writes of one orchestrator batch, flushed as executemany statements.

Rows are appended during a batch and written at its end (or before a read that needs them), so
a fan-out of a thousand submits costs a handful of statements rather than thousands. The
statements are compiled once per dialect and run through the driver directly: on the hot path
SQLAlchemy's per-execution statement caching cost more than the SQLite work itself.
"""

from __future__ import annotations

import json
import time
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from ..store import schema as t

# Parents before children, so a database with foreign keys enforced accepts every flush.
_ORDER = [t.runs, t.steps, t.executions, t.children, t.results, t.dependencies, t.groups, t.events]


class _Statement:
    __slots__ = ("sql", "names", "positional", "json_columns", "_row", "_json_at")

    def __init__(self, statement: Any, db: Connection, json_columns: set[str]) -> None:
        compiled = statement.compile(dialect=db.dialect)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names = list(compiled.positiontup or []) if self.positional else None
        self.json_columns = json_columns
        if self.names:
            # A row's values in the statement's order, taken in C: the hot path writes many rows.
            self._row = itemgetter(*self.names) if len(self.names) > 1 else lambda row, n=self.names[0]: (row[n],)
            self._json_at = [i for i, n in enumerate(self.names) if n in json_columns]

    def params(self, rows: list[dict]) -> list:
        if self.positional:
            get, json_at = self._row, self._json_at
            if not json_at:
                return [get(row) for row in rows]
            out = []
            for row in rows:
                values = list(get(row))
                for i in json_at:
                    if values[i] is not None:
                        values[i] = json.dumps(values[i])
                out.append(values)
            return out
        json_columns = self.json_columns
        return [{k: (json.dumps(v) if k in json_columns and v is not None else v) for k, v in row.items()}
                for row in rows]


_cache: dict[tuple, _Statement] = {}


def _json_columns(table: Table, prefix: str = "") -> set[str]:
    return {prefix + c.name for c in table.columns if isinstance(c.type, JSON)}


class WriteBuffer:
    def __init__(self, db: Connection) -> None:
        self.db = db
        self._inserts: dict[Table, list[dict]] = {}
        self._ignores: dict[Table, list[dict]] = {}
        self._execution_updates: dict[str, dict[str, Any]] = {}
        self._feed: dict[str, list[dict]] = {}  # topic -> events since the last flush (feed.py)
        self._raw: dict[str, list[tuple]] = {}  # SQL -> parameter rows (tables SQLAlchemy does not model)
        self._new_executions: dict[str, dict] = {}  # id -> its row, while its insert is pending

    def feed(self, topic: str, seq: int, event: dict) -> None:
        """An event of the durable feed: grouped per topic into one row at the next flush."""
        self._feed.setdefault(topic, []).append(event)

    def insert(self, table: Table, row: dict) -> None:
        self._inserts.setdefault(table, []).append(row)
        if table is t.executions:
            self._new_executions[row["id"]] = row

    def insert_ignore(self, table: Table, row: dict) -> None:
        """Insert unless a row with the same primary key exists (edges recorded more than once)."""
        self._ignores.setdefault(table, []).append(row)

    def raw(self, sql: str, row: tuple) -> None:
        """A row for a plain SQL statement, written after the tables (the log search index)."""
        self._raw.setdefault(sql, []).append(row)

    def update_execution(self, execution_id: str, **values: Any) -> None:
        row = self._new_executions.get(execution_id)
        if row is not None and values.keys() <= row.keys() and execution_id not in self._execution_updates:
            row.update(values)  # not written yet: the insert carries it (assigned in its own batch)
            return
        self._execution_updates.setdefault(execution_id, {}).update(values)

    def flush(self) -> None:
        if self._feed:
            now = time.time()
            for topic, events in self._feed.items():
                self._inserts.setdefault(t.events, []).append(
                    {"seq": events[-1]["seq"], "topic": topic, "data": {"events": events}, "at": now})
            self._feed = {}
        self._new_executions = {}
        for table in _ORDER + [tb for tb in list(self._inserts) + list(self._ignores) if tb not in _ORDER]:
            rows = self._inserts.pop(table, None)
            if rows:
                self._run("insert", table, rows)
            rows = self._ignores.pop(table, None)
            if rows:
                self._run("ignore", table, _unique(table, rows))
        if self._execution_updates:
            by_columns: dict[tuple[str, ...], list[dict]] = {}
            for execution_id, values in self._execution_updates.items():
                by_columns.setdefault(tuple(sorted(values)), []).append(
                    {"_id": execution_id, **{"v_" + k: v for k, v in values.items()}})
            self._execution_updates = {}
            for columns, rows in by_columns.items():
                self._run("update", t.executions, rows, columns)
        if self._raw:
            statements, self._raw = self._raw, {}
            cursor = self.db.connection.dbapi_connection.cursor()
            try:
                for sql, params in statements.items():
                    cursor.executemany(sql, params)
            finally:
                cursor.close()

    def _run(self, kind: str, table: Table, rows: list[dict], columns: tuple[str, ...] | None = None) -> None:
        names = columns or tuple(rows[0])
        key = (self.db.dialect.name, kind, table.name, names)
        statement = _cache.get(key)
        if statement is None:
            statement = _cache[key] = self._compile(kind, table, names)
        # Same size and (below) every named column present: the same columns (a key missing
        # from a row raises KeyError in params; an extra one would otherwise go unnoticed).
        if kind != "update" and any(len(r) != len(names) for r in rows):
            raise ValueError(f"rows for {table.name} must all have the same columns")
        # The DB-API cursor directly, inside the same transaction as everything else.
        cursor = self.db.connection.dbapi_connection.cursor()
        try:
            cursor.executemany(statement.sql, statement.params(rows))
        finally:
            cursor.close()

    def _compile(self, kind: str, table: Table, names: tuple[str, ...]) -> _Statement:
        if kind == "update":
            stmt = (update(table).where(table.c.id == bindparam("_id"))
                    .values({c: bindparam("v_" + c) for c in names}))
            return _Statement(stmt, self.db, _json_columns(table, "v_"))
        values = {c: bindparam(c) for c in names}
        if kind == "insert":
            stmt = table.insert().values(values)
        elif self.db.dialect.name == "sqlite":
            stmt = sqlite.insert(table).values(values).on_conflict_do_nothing()
        elif self.db.dialect.name == "postgresql":
            stmt = postgresql.insert(table).values(values).on_conflict_do_nothing()
        else:
            stmt = table.insert().values(values).prefix_with("IGNORE")
        return _Statement(stmt, self.db, _json_columns(table))


def _unique(table: Table, rows: list[dict]) -> list[dict]:
    keys = [c.name for c in table.primary_key.columns]
    seen: dict[tuple, dict] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in keys), row)
    return list(seen.values())

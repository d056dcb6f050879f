"""Buffered writes of one orchestrator batch, flushed as executemany statements.

Rows are appended during a batch and written at its end (or before a read that needs them), so
a fan-out of a thousand submits costs a handful of statements rather than thousands.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from ..store import schema as t

# Parents before children, so a database with foreign keys enforced accepts every flush.
_ORDER = [t.runs, t.steps, t.executions, t.children, t.results, t.dependencies, t.groups]


class WriteBuffer:
    def __init__(self, db: Connection) -> None:
        self.db = db
        self._inserts: dict[Table, list[dict]] = {}
        self._ignores: dict[Table, list[dict]] = {}
        self._execution_updates: dict[str, dict[str, Any]] = {}

    def insert(self, table: Table, row: dict) -> None:
        self._inserts.setdefault(table, []).append(row)

    def insert_ignore(self, table: Table, row: dict) -> None:
        """Insert unless a row with the same primary key exists (edges recorded more than once)."""
        self._ignores.setdefault(table, []).append(row)

    def update_execution(self, execution_id: str, **values: Any) -> None:
        self._execution_updates.setdefault(execution_id, {}).update(values)

    def flush(self) -> None:
        for table in _ORDER:
            rows = self._inserts.pop(table, None)
            if rows:
                self.db.execute(table.insert(), rows)
            rows = self._ignores.pop(table, None)
            if rows:
                self.db.execute(self._insert_ignore(table), _unique(table, rows))
        for table in list(self._inserts):
            self.db.execute(table.insert(), self._inserts.pop(table))
        if self._execution_updates:
            by_columns: dict[tuple[str, ...], list[dict]] = {}
            for execution_id, values in self._execution_updates.items():
                by_columns.setdefault(tuple(sorted(values)), []).append(
                    {"_id": execution_id, **{"v_" + k: v for k, v in values.items()}})
            self._execution_updates = {}
            for columns, rows in by_columns.items():
                statement = (update(t.executions).where(t.executions.c.id == bindparam("_id"))
                             .values({c: bindparam("v_" + c) for c in columns}))
                self.db.execute(statement, rows)

    def _insert_ignore(self, table: Table):
        dialect = self.db.dialect.name
        if dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return table.insert().prefix_with("IGNORE")


def _unique(table: Table, rows: list[dict]) -> list[dict]:
    keys = [c.name for c in table.primary_key.columns]
    seen: dict[tuple, dict] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in keys), row)
    return list(seen.values())

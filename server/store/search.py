"""Full-text search of log lines, by the database's own index (never a scan of the run's lines).

SQLite: an FTS5 table without content of its own (it indexes; `logs` keeps the text), filled by
the orchestrator in the transaction that inserts the line (a per-row trigger cost five times the
rest of the write; migration v4 dropped it). PostgreSQL: a GIN index over the same text's
`to_tsvector`. Both index the template and the values, so a word in either is found.

A page of matches is read from the index in line order, bounded to the run's span of line ids
and starting after the page before: a word in every one of a million lines costs one page of
index entries, not a million (which an `id IN (all matches)` filter would gather first).
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, false, func, select, text
from sqlalchemy.sql import ColumnElement, column, table

from . import schema

_fts = table("logs_fts", column("rowid"))

_SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(body, content='', tokenize='unicode61')",
    """CREATE TRIGGER IF NOT EXISTS logs_fts_insert AFTER INSERT ON logs BEGIN
         INSERT INTO logs_fts(rowid, body)
         VALUES (new.id, coalesce(new.template, '') || ' ' || coalesce(new.fields, ''));
       END""",
]
_POSTGRES_DOCUMENT = "to_tsvector('simple', coalesce(logs.template, '') || ' ' || coalesce(logs.fields::text, ''))"
_POSTGRES = [f"CREATE INDEX IF NOT EXISTS ix_logs_search ON logs USING gin ({_POSTGRES_DOCUMENT})"]


def create_log_index(conn: Connection) -> None:
    for statement in _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES if \
            conn.dialect.name == "postgresql" else []:
        conn.execute(text(statement))


def _fts_phrase(words: str) -> str:
    """The user's text as FTS5 phrases (one per word, all required), with quotes escaped."""
    terms = [w.replace('"', '""') for w in words.split()]
    return " ".join(f'"{term}"' for term in terms if term)


def matching(query: Select, db: Connection, words: str, *, run_id: str, after: int) -> Select:
    """`query` (over `logs`, of lines of `run_id` after line id `after`, in id order) narrowed to
    lines containing every word of `words`."""
    if not words.split():
        return query
    if db.dialect.name == "sqlite":
        logs = schema.logs.c
        # Two queries: SQLite answers a lone min() or max() from the index, not both together.
        first = db.execute(select(func.min(logs.id)).where(logs.run_id == run_id)).scalar()
        last = db.execute(select(func.max(logs.id)).where(logs.run_id == run_id)).scalar()
        if first is None:
            return query.where(false())
        # The index drives: its rowids in order within these bounds (FTS5 takes rowid ranges and
        # rowid order itself), each joined to its line by primary key, until the page is full.
        return (query.join(_fts, _fts.c.rowid == logs.id)
                .where(text("logs_fts MATCH :phrase").bindparams(phrase=_fts_phrase(words)),
                       _fts.c.rowid >= max(first, after + 1), _fts.c.rowid <= last)
                .order_by(None).order_by(_fts.c.rowid))
    if db.dialect.name == "postgresql":
        condition: ColumnElement = text(f"{_POSTGRES_DOCUMENT} @@ plainto_tsquery('simple', :words)").bindparams(
            words=words)
        return query.where(condition)
    like = f"%{words}%"  # other databases: correct, if slower
    return query.where(schema.logs.c.template.like(like))

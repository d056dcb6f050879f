"""Full-text search of log lines, by the database's own index (never a scan of the run's lines).

SQLite: an FTS5 table without content of its own (it indexes; `logs` keeps the text), filled by a
trigger in the transaction that inserts the line. PostgreSQL: a GIN index over the same text's
`to_tsvector`. Both index the template and the values, so a word in either is found.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, text
from sqlalchemy.sql import ColumnElement, literal_column

from . import schema

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


def matching(query: Select, dialect: str, words: str) -> Select:
    """`query` (over `logs`) narrowed to lines containing every word of `words`."""
    if not words.split():
        return query
    if dialect == "sqlite":
        hits = text("SELECT rowid FROM logs_fts WHERE logs_fts MATCH :phrase").bindparams(
            phrase=_fts_phrase(words)).columns(literal_column("rowid"))
        return query.where(schema.logs.c.id.in_(hits.scalar_subquery() if hasattr(hits, "scalar_subquery")
                                                else hits))
    if dialect == "postgresql":
        condition: ColumnElement = text(f"{_POSTGRES_DOCUMENT} @@ plainto_tsquery('simple', :words)").bindparams(
            words=words)
        return query.where(condition)
    like = f"%{words}%"  # other databases: correct, if slower
    return query.where(schema.logs.c.template.like(like))

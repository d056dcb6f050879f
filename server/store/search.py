"""Full-text search of log lines, by the database's own index (never a scan of the run's lines).

Lines are stored a batch to a row (`telemetry`, see schema.py), and both databases index a
batch as one document: the templates and values of its lines.
The index finds the batches with every word; each of their lines is then matched on its own, so
a line is found exactly when its own text has every word. SQLite: an FTS5 table without content
of its own (a document per 100 lines of a batch, its rowid the id of the first), filled by the
orchestrator (server/orchestrator/telemetry.py); a line is matched by `line_matches`, which
splits text into words as FTS5's unicode61 tokenizer does (letters and digits; case and Latin
diacritics folded). PostgreSQL: a stored `tsvector` of each batch's lines (a generated column,
GIN-indexed), and `to_tsvector` of each line's own text.

A page of matches is read in line order, starting after the page before: a word in every one of
a million lines costs one page of index entries, not a million.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from sqlalchemy import Connection, text

from .jsontext import loads

_SQLITE = ["CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(body, content='', tokenize='unicode61')"]
# The templates and values of the batch's lines (not their levels and times), escapes made
# spaces, as `document` does for SQLite.
_POSTGRES_BATCH = ("to_tsvector('simple', regexp_replace(jsonb_path_query_array(coalesce(lines, '[]')::jsonb, "
                   "'$[*][1 to 2]')::text, '\\\\(u[0-9a-fA-F]{4}|.)', ' ', 'g'))")
# Stored, not an expression index: the planner may test rows one by one (a word in most batches),
# and reading a stored document is cheap where computing it is not.
_POSTGRES = [f"ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS ({_POSTGRES_BATCH}) STORED",
             "CREATE INDEX IF NOT EXISTS ix_telemetry_search ON telemetry USING gin (search)"]
# A line's own document: its template and the JSON of its values (as it was before batches).
_POSTGRES_LINE_TEXT = "coalesce(e.line->>1, '') || ' ' || coalesce(e.line->>2, '')"
_POSTGRES_LINE = f"to_tsvector('simple', {_POSTGRES_LINE_TEXT})"


def create_log_index(conn: Connection) -> None:
    for statement in _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES if \
            conn.dialect.name == "postgresql" else []:
        conn.execute(text(statement))


def _fts_phrase(words: str) -> str:
    """The user's text as FTS5 phrases (one per word, all required), with quotes escaped."""
    terms = [w.replace('"', '""') for w in words.split()]
    return " ".join(f'"{term}"' for term in terms if term)


def line_text(template: str | None, fields: dict | None) -> str:
    """What a search finds a line by: its template, its values' names and their text (numbers,
    `true`, `false` and `null` as JSON writes them)."""
    parts = [template or ""]
    _add_values(parts, fields)
    return " ".join(parts)


def _add_values(parts: list[str], fields: dict | None) -> None:
    for name, value in (fields or {}).items():
        v = value.get("v") if type(value) is dict else value
        parts.append(name)
        kind = type(v)
        if kind is str:
            parts.append(v)
        elif kind is int or (kind is float and v - v == 0):  # a finite number: its JSON text
            parts.append(repr(v))
        else:
            parts.append(_dumps(v))


_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def document(lines: list[list]) -> str:
    """A document of the SQLite index: these lines' `line_text`, a line each (levels and times
    stay out, so a search for `info` does not bring every batch). A batch is indexed as
    documents of DOCUMENT_LINES lines, each with the id of its first line as its rowid."""
    parts: list[str] = []
    for line in lines:
        parts.append(line[1] or "")
        if line[2]:
            _add_values(parts, line[2])
        parts.append("\n")
    return " ".join(parts)


_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits: unicode61's tokens


def _tokens(text: str) -> list[str]:
    found = _TOKEN.findall(text.lower())
    if not text.isascii():
        found = ["".join(ch for ch in unicodedata.normalize("NFD", token) if not unicodedata.combining(ch))
                 for token in found]
    return found


def query_terms(words: str) -> list[list[str]]:
    """Each word of the query as the run of tokens a line must hold (one FTS5 phrase each)."""
    return [tokens for tokens in (_tokens(word) for word in words.split()) if tokens]


def line_matches(terms: list[list[str]], template: str | None, fields: dict | None) -> bool:
    """Whether the line holds every term, each as consecutive tokens (what FTS5 finds)."""
    text = line_text(template, fields)
    if text.isascii():  # then each token is a piece of the lowered text: most lines fail here, cheaply
        lowered = text.lower()
        if not all(token in lowered for term in terms for token in term):
            return False
    tokens = _tokens(text)
    for term in terms:
        if len(term) == 1:
            if term[0] not in tokens:
                return False
            continue
        n = len(term)
        if not any(tokens[i:i + n] == term for i in range(len(tokens) - n + 1)):
            return False
    return True


def matching_lines(db: Connection, words: str, *, run_id: str, after: int, limit: int,
                   step_like: str | None, levels: list[str] | None) -> list[tuple[int, str, list]]:
    """Up to `limit` lines of `run_id` after line id `after` with every word of `words`, in id
    order: (line id, execution id, [level, template, values, at]). Lines of other levels or
    steps are left out; fewer than `limit` means there are no more."""
    if db.dialect.name == "sqlite":
        return _sqlite_matches(db, words, run_id=run_id, after=after, limit=limit, step_like=step_like,
                               levels=levels)
    if db.dialect.name == "postgresql":
        return _postgres_matches(db, words, run_id=run_id, after=after, limit=limit, step_like=step_like,
                                 levels=levels)
    raise NotImplementedError(f"log search on {db.dialect.name}")


_PAGE = 200  # documents read from the index at a time
DOCUMENT_LINES = 100  # lines of a batch per document: a match tests these, not the whole batch


def _sqlite_matches(db: Connection, words: str, *, run_id: str, after: int, limit: int,
                    step_like: str | None, levels: list[str] | None) -> list[tuple[int, str, list]]:
    from .schema import LEVEL_BITS

    # The batch that may hold line `after + 1` starts at or before it; later ones follow.
    start = db.execute(text("SELECT max(id) FROM telemetry WHERE run_id = :run AND id <= :after"),
                       {"run": run_id, "after": after + 1}).scalar() or 0
    # The last batch's parts have rowids up to its last line's id.
    end = db.execute(text("SELECT id + line_count FROM telemetry WHERE run_id = :run ORDER BY id DESC LIMIT 1"),
                     {"run": run_id}).scalar()
    if end is None:
        return []
    terms = query_terms(words)
    # The index drives: its rowids (a part's first line id) in order within the run's span
    # (FTS5 takes rowid ranges and order itself), each joined to the batch that holds it.
    query = text(
        "SELECT f.rowid, b.id, b.execution_id, b.lines, b.wide_ints FROM logs_fts f "
        "JOIN telemetry b ON b.id = (SELECT max(t.id) FROM telemetry t WHERE t.id <= f.rowid) "
        "WHERE logs_fts MATCH :phrase AND f.rowid >= :lo AND f.rowid < :hi AND b.run_id = :run"
        + (" AND b.execution_id LIKE :step" if step_like else "")
        + (" AND (b.levels & :mask) != 0" if levels is not None else "")
        + " ORDER BY f.rowid LIMIT :n")
    params = {"phrase": _fts_phrase(words), "hi": end, "run": run_id, "step": step_like, "n": _PAGE,
              "mask": sum(LEVEL_BITS[name] for name in levels) if levels is not None else 0}
    found: list[tuple[int, str, list]] = []
    parsed: dict[int, list] = {}  # batch id -> its lines (several parts of one batch may match)
    while True:
        rows = db.execute(query, {**params, "lo": start}).all()
        for part, batch_id, execution_id, lines_json, wide_ints in rows:
            lines = parsed.get(batch_id)
            if lines is None:
                lines = parsed[batch_id] = loads(lines_json, wide_ints) if lines_json else []
            first = part - batch_id
            for offset in range(first, min(first + DOCUMENT_LINES, len(lines))):
                line, line_id = lines[offset], batch_id + offset
                if line_id > after and (levels is None or line[0] in levels) \
                        and line_matches(terms, line[1], line[2]):
                    found.append((line_id, execution_id, line))
                    if len(found) == limit:
                        return found
        if len(rows) < _PAGE:
            return found
        start = rows[-1][0] + 1


def _postgres_matches(db: Connection, words: str, *, run_id: str, after: int, limit: int,
                      step_like: str | None, levels: list[str] | None) -> list[tuple[int, str, list]]:
    # The query's words as PostgreSQL splits them: each is in the lowered text of a line that
    # matches, so a LIKE sorts out most lines before the costlier full-text test.
    lexemes = db.execute(text("SELECT unnest(tsvector_to_array(to_tsvector('simple', :words)))"),
                         {"words": words}).scalars().all()
    if not lexemes:
        return []
    conditions, line_conditions = "", ""
    params: dict[str, Any] = {"run": run_id, "words": words, "after": after}
    if step_like:
        conditions += " AND b.execution_id LIKE :step"
        params["step"] = step_like
    if levels is not None:
        line_conditions += " AND e.line->>0 = ANY(:levels)"
        params["levels"] = list(levels)
    for i, lexeme in enumerate(lexemes):
        params[f"like{i}"] = "%" + lexeme.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        line_conditions += f" AND lower({_POSTGRES_LINE_TEXT}) LIKE :like{i}"
    # The batches the index finds, then a few at a time in id order, their lines tested one by
    # one. (jsonb: parsed once a batch. The line itself is taken from
    # the stored text, as written.)
    start = db.execute(text("SELECT max(id) FROM telemetry WHERE run_id = :run AND id <= :after"),
                       {"run": run_id, "after": after + 1}).scalar() or 0
    ids = [i for i in db.execute(text(
        "SELECT b.id FROM telemetry b WHERE b.run_id = :run AND b.line_count > 0 AND b.search "
        f"@@ plainto_tsquery('simple', :words){conditions} ORDER BY b.id"), params).scalars() if i >= start]
    query = text(
        "SELECT p.id, e.ord - 1 AS offset FROM telemetry p "
        "CROSS JOIN LATERAL jsonb_array_elements(p.lines::jsonb) WITH ORDINALITY AS e(line, ord) "
        f"WHERE p.id = ANY(:ids) AND p.id + e.ord - 1 > :after{line_conditions} "
        f"AND {_POSTGRES_LINE} @@ plainto_tsquery('simple', :words) ORDER BY p.id, e.ord")
    found: list[tuple[int, str, list]] = []
    at, pages = 0, 1
    while at < len(ids):
        page, at, pages = ids[at:at + pages], at + pages, min(pages * 4, 256)
        batches: dict[int, Any] = {}
        for batch_id, offset in db.execute(query, {**params, "ids": page}).all():
            batch = batches.get(batch_id)
            if batch is None:
                row = db.execute(text("SELECT execution_id, lines, wide_ints FROM telemetry WHERE id = :id"),
                                 {"id": batch_id}).first()
                batch = batches[batch_id] = (row.execution_id, loads(row.lines, row.wide_ints))
            found.append((batch_id + offset, batch[0], batch[1][offset]))
            if len(found) == limit:
                return found
    return found

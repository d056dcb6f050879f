"""PostgreSQL's log search finds a line exactly when its own text has every word: the GIN index
over each batch's lines finds batches, and every line of them is then tested on its own. Checked
against the same test applied to every line of the run, with no index in the way."""

from __future__ import annotations

import json
import time

import pytest
from test_log_search import LINES, QUERIES

from coflux_server.store import schema, search
from coflux_server.store.engine import create_store_engine

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def engine(postgres_url: str):
    import psycopg

    base = postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS coflux_search")
        conn.execute("CREATE DATABASE coflux_search")
    engine = create_store_engine(postgres_url.rsplit("/", 1)[0] + "/coflux_search")
    now = time.time()
    with engine.begin() as conn:
        conn.execute(schema.runs.insert().values(id="Rsearch", workspace_id=1, module="m", target="w",
                                                 memo=False, created_at=now))
        # Three lines to a batch, as a worker sends them; ids as the orchestrator gives them.
        for first in range(0, len(LINES), 3):
            chunk = [["info", t, f, 1764612345.25] for t, f in LINES[first:first + 3]]
            conn.execute(schema.telemetry.insert().values(
                id=first + 1, run_id="Rsearch", execution_id="Rsearch:1:1", batch=first // 3 + 1, at=1764612345.25,
                line_count=len(chunk), levels=2, lines=json.dumps(chunk, ensure_ascii=False), point_count=0))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("words", QUERIES)
def test_a_line_is_found_exactly_when_its_own_text_has_every_word(engine, words: str) -> None:
    with engine.connect() as db:
        found = [line_id for line_id, _, _ in search.matching_lines(
            db, words, run_id="Rsearch", after=0, limit=1000, step_like=None, levels=None)]
        every_line = {
            i + 1 for i, (template, fields) in enumerate(LINES)
            if db.exec_driver_sql(
                "SELECT to_tsvector('simple', coalesce(%s, '') || ' ' || coalesce(%s::json::text, '')) "
                "@@ plainto_tsquery('simple', %s)",
                (template, json.dumps(fields, ensure_ascii=False) if fields is not None else None, words)).scalar()}
    assert found == sorted(every_line), words


def test_levels_and_times_stay_out_of_the_index(engine) -> None:
    with engine.connect() as db:
        for word in ("info", "1764612345"):
            assert db.exec_driver_sql("SELECT count(*) FROM telemetry WHERE search "
                                      "@@ plainto_tsquery('simple', %s)", (word,)).scalar() == 0

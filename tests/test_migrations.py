"""Schema migrations: a database made by an earlier version is brought to the latest one with its
rows intact, and a server started on it serves them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from harness import Server, run_cli
from sqlalchemy import create_engine

from server.store import migrations, schema


def _index_sql(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("select name, sql from sqlite_master where type = 'index' and sql is not null"))


def test_a_version_4_database_gets_partial_key_indexes_and_keeps_its_runs(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "coflux.db"
    engine = create_engine(f"sqlite:///{db_path}")
    # The database as version 4 left it: full indexes over the cache, memo and successor columns.
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
    assert migrations.migrate(engine) == 4
    with engine.begin() as conn:
        for name in ("ix_steps_cache_key", "ix_steps_memo_key", "ix_results_successor"):
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.exec_driver_sql("CREATE INDEX ix_steps_cache_key ON steps (cache_key)")
        conn.exec_driver_sql("CREATE INDEX ix_steps_memo_key ON steps (run_id, memo_key)")
        conn.exec_driver_sql("CREATE INDEX ix_results_successor ON results (successor_id)")
        now = time.time()
        conn.execute(schema.runs.insert().values(id="RoldRun", workspace_id=1, module="m", target="w",
                                                 memo=False, created_at=now))
        conn.execute(schema.steps.insert().values(id="RoldRun:1", run_id="RoldRun", number=1, module="m",
                                                  target="w", type="workflow", arguments=[], options={},
                                                  cache_key="k1", created_at=now))
        conn.execute(schema.executions.insert().values(id="RoldRun:1:1", step_id="RoldRun:1", run_id="RoldRun",
                                                       attempt=1, workspace_id=1, created_at=now))
        conn.execute(schema.results.insert().values(execution_id="RoldRun:1:1", kind="value", value={"v": 42},
                                                    created_at=now))
    assert "WHERE" not in _index_sql(db_path)["ix_steps_cache_key"]
    engine.dispose()
    monkeypatch.undo()

    server = Server(data).start()  # migrates at start
    try:
        indexes = _index_sql(db_path)
        assert indexes["ix_steps_cache_key"].endswith("WHERE cache_key IS NOT NULL")
        assert indexes["ix_steps_memo_key"].endswith("WHERE memo_key IS NOT NULL")
        assert indexes["ix_results_successor"].endswith("WHERE successor_id IS NOT NULL")
        result = run_cli("runs", "result", "RoldRun", env=server.env())
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "42"
        with sqlite3.connect(db_path) as db:
            plan = db.execute("explain query plan select id from steps where cache_key = 'k1'").fetchall()
            assert "ix_steps_cache_key" in str(plan)
            assert db.execute("select max(version) from schema_version").fetchone()[0] == len(migrations.MIGRATIONS)
    finally:
        server.stop()

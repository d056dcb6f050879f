"""Schema migrations: a database made by an earlier version is brought to the latest one with its
rows intact, and a server started on it serves them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from harness import Server, run_cli
from sqlalchemy import create_engine

from coflux_server.store import migrations, schema


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


def test_a_version_5_database_keeps_its_lines_points_search_and_feed_in_batches(tmp_path: Path, monkeypatch) -> None:
    """Version 6 stores lines and points a batch to a row. The lines, points and definitions an
    earlier version stored a row each come back the same: in order, searchable (the search
    index keeps the lines' ids), and the feed's stored events still expand to them."""
    from coflux.client import Client
    from coflux_server.store import observe

    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "coflux.db"
    engine = create_engine(f"sqlite:///{db_path}")
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:5])
    assert migrations.migrate(engine) == 5
    a, b = "RoldRun:2:1", "RoldRun:3:1"
    now = time.time()
    lines = [(1, a, "info", "loading {n} rows", {"n": {"v": 7}}), (2, a, "warning", "slow disk", None),
             (3, b, "info", "other step", None), (4, a, "error", "zebra crossing", None),
             (5, a, "stdout", "printed", None)]
    with engine.begin() as conn:
        # The database as version 5 left it: a row per line, point and definition.
        schema.telemetry.drop(conn)
        migrations.legacy.create_all(conn)
        conn.execute(schema.runs.insert().values(id="RoldRun", workspace_id=1, module="m", target="w",
                                                 memo=False, created_at=now))
        conn.execute(schema.steps.insert().values(id="RoldRun:1", run_id="RoldRun", number=1, module="m",
                                                  target="w", type="workflow", arguments=[], options={},
                                                  created_at=now))
        conn.execute(schema.executions.insert().values(id="RoldRun:1:1", step_id="RoldRun:1", run_id="RoldRun",
                                                       attempt=1, workspace_id=1, created_at=now))
        conn.execute(schema.results.insert().values(execution_id="RoldRun:1:1", kind="value", value={"v": 1},
                                                    created_at=now))
        for line_id, execution, level, template, fields in lines:
            conn.execute(migrations.legacy_logs.insert().values(id=line_id, run_id="RoldRun", execution_id=execution,
                                                                level=level, template=template, fields=fields,
                                                                at=now + line_id))
            conn.exec_driver_sql("INSERT INTO logs_fts(rowid, body) VALUES (?, ?)",
                                 (line_id, template + (" n 7" if fields else "")))
        for point_id, x in ((1, 0.0), (2, 1.0), (3, 2.0)):
            conn.execute(migrations.legacy_metric_points.insert().values(id=point_id, run_id="RoldRun",
                                                                         execution_id=a, key="loss", x=x,
                                                                         value=10 - x))
        conn.execute(migrations.legacy_metric_definitions.insert().values(
            execution_id=a, key="loss", run_id="RoldRun", group={"name": "training"}, scale=None, created_at=now))
        conn.execute(schema.events.insert().values(seq=2, topic="run:RoldRun", at=now, data={"events": [
            {"type": "logs", "execution": a, "first": 1, "count": 2, "seq": 1},
            {"type": "metrics", "execution": a, "definitions": {}, "first": 1, "count": 3, "seq": 2}]}))
    engine.dispose()
    monkeypatch.undo()

    server = Server(data).start()  # migrates at start
    try:
        with Client(server.url, server.token) as client:
            got = client.logs("RoldRun")
            assert [(line["id"], line["execution_id"], line["level"], line["message"]) for line in got] == [
                (1, a, "info", "loading 7 rows"), (2, a, "warning", "slow disk"), (3, b, "info", "other step"),
                (4, a, "error", "zebra crossing"), (5, a, "stdout", "printed")]
            assert [line["id"] for line in client.logs("RoldRun", level="warning")] == [2, 4]
            assert [line["id"] for line in client.logs("RoldRun", step="RoldRun:3")] == [3]
            assert [line["id"] for line in client.logs("RoldRun", after=2, limit=2)] == [3, 4]
            assert [line["message"] for line in client.logs("RoldRun", search="zebra")] == ["zebra crossing"]
            assert client.metrics("RoldRun") == [{"execution_id": a, "key": "loss", "group": {"name": "training"},
                                                  "scale": None, "points": [[0.0, 10.0], [1.0, 9.0], [2.0, 8.0]]}]
        with sqlite3.connect(db_path) as db:
            tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
            assert not tables & {"logs", "metric_points", "metric_definitions", "telemetry_batches"}
    finally:
        server.stop()
    events = observe.get_events(create_engine(f"sqlite:///{db_path}"), "run:RoldRun", 0)
    assert [line["template"] for line in events[0]["lines"]] == ["loading {n} rows", "slow disk"]
    assert events[1]["points"] == [["loss", 0.0, 10.0], ["loss", 1.0, 9.0], ["loss", 2.0, 8.0]]


def test_a_version_6_database_gets_hand_out_numbers_and_runs_its_waiting_work(tmp_path: Path, monkeypatch) -> None:
    """Version 7 numbers each hand-out of an execution to a worker (`executions.assignment`). A run
    that waited in a version 6 database is handed out as number 1 and completes."""
    from harness import Worker

    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "coflux.db"
    engine = create_engine(f"sqlite:///{db_path}")
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:6])
    assert migrations.migrate(engine) == 6
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE executions DROP COLUMN assignment")  # as version 6 left it
        now = time.time()
        conn.execute(schema.runs.insert().values(id="RoldRun", workspace_id=1, module="myapp.workflows",
                                                 target="identity", memo=False, created_at=now))
        conn.execute(schema.steps.insert().values(id="RoldRun:1", run_id="RoldRun", number=1,
                                                  module="myapp.workflows", target="identity", type="workflow",
                                                  arguments=[{"v": 5}], options={}, created_at=now))
        conn.exec_driver_sql("INSERT INTO executions (id, step_id, run_id, attempt, workspace_id, created_at) "
                             "VALUES ('RoldRun:1:1', 'RoldRun:1', 'RoldRun', 1, 1, ?)", (now,))
    engine.dispose()
    monkeypatch.undo()

    server = Server(data).start()  # migrates at start
    worker = Worker(server, ["myapp.workflows"], concurrency=1, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        result = run_cli("runs", "result", "--timeout", "30", "RoldRun", env=server.env())
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "5"
        with sqlite3.connect(db_path) as db:
            assert db.execute("select assignment from executions where id = 'RoldRun:1:1'").fetchone() == (1,)
            assert db.execute("select max(version) from schema_version").fetchone()[0] == len(migrations.MIGRATIONS)
    finally:
        worker.stop()
        server.stop()


def test_a_version_7_database_gets_a_code_hash_column_and_keeps_its_executions(tmp_path: Path, monkeypatch) -> None:
    """Version 10 records the code hash each attempt ran with (`executions.code_hash`); executions
    made before it keep NULL, and running the migration twice changes nothing."""
    db_path = tmp_path / "coflux.db"
    engine = create_engine(f"sqlite:///{db_path}")
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:7])
    assert migrations.migrate(engine) == 7
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE executions DROP COLUMN code_hash")  # as version 7 left it
        now = time.time()
        conn.execute(schema.runs.insert().values(id="RoldRun", workspace_id=1, module="m", target="w",
                                                 memo=False, created_at=now))
        conn.execute(schema.steps.insert().values(id="RoldRun:1", run_id="RoldRun", number=1, module="m",
                                                  target="w", type="workflow", arguments=[], options={},
                                                  created_at=now))
        conn.exec_driver_sql("INSERT INTO executions (id, step_id, run_id, attempt, workspace_id, created_at) "
                             "VALUES ('RoldRun:1:1', 'RoldRun:1', 'RoldRun', 1, 1, ?)", (now,))
    monkeypatch.undo()
    assert migrations.migrate(engine) == len(migrations.MIGRATIONS)
    migrations._v10_execution_code_hash(engine.connect())  # idempotent: the column is there already
    engine.dispose()
    with sqlite3.connect(db_path) as db:
        assert db.execute("select code_hash from executions where id = 'RoldRun:1:1'").fetchone() == (None,)

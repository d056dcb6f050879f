"""The operational surface's migrations (service tokens, who did it, workspace pause): a database
from before them keeps its runs, and a server started on it serves the new commands."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from harness import Server, run_cli
from sqlalchemy import create_engine

from coflux_server.store import migrations, schema


def test_a_database_from_before_tokens_and_pause_gets_them_and_keeps_its_runs(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "coflux.db"
    engine = create_engine(f"sqlite:///{db_path}")
    before = migrations.MIGRATIONS.index(migrations._v8_service_tokens)
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:before])
    migrations.migrate(engine)
    with engine.begin() as conn:  # as the versions before left it
        conn.exec_driver_sql("DROP TABLE tokens")
        conn.exec_driver_sql("DROP TABLE actions")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN created_by")
        conn.exec_driver_sql("ALTER TABLE workspaces DROP COLUMN paused_at")
        now = time.time()
        conn.exec_driver_sql("INSERT INTO runs (id, workspace_id, module, target, memo, created_at) "
                             "VALUES ('RoldRun', 1, 'myapp.workflows', 'child', 0, ?)", (now,))
        conn.execute(schema.steps.insert().values(id="RoldRun:1", run_id="RoldRun", number=1,
                                                  module="myapp.workflows", target="child", type="workflow",
                                                  arguments=[{"v": 5}], options={}, created_at=now))
        conn.exec_driver_sql("INSERT INTO executions (id, step_id, run_id, attempt, workspace_id, created_at) "
                             "VALUES ('RoldRun:1:1', 'RoldRun:1', 'RoldRun', 1, 1, ?)", (now,))
        conn.execute(schema.results.insert().values(execution_id="RoldRun:1:1", kind="value", value={"v": 50},
                                                    created_at=now))
    engine.dispose()
    monkeypatch.undo()

    server = Server(data).start()  # migrates at start
    try:
        env = server.env()
        run = json.loads(run_cli("runs", "inspect", "RoldRun", "-o", "json", env=env).stdout)
        assert run["by"] is None and run["steps"][0]["executions"][0]["result"]["value"] == {"v": 50}
        assert run_cli("workspaces", "pause", "default", env=env).stdout.strip() == "workspace default is paused"
        created = run_cli("tokens", "create", "--name", "after-upgrade", env=env)
        assert created.returncode == 0 and created.stdout.startswith("cft_"), created.stderr
        with sqlite3.connect(db_path) as db:
            assert db.execute("select max(version) from schema_version").fetchone()[0] == len(migrations.MIGRATIONS)
            assert db.execute("select paused_at is not null from workspaces where name = 'default'").fetchone() == (1,)
    finally:
        server.stop()

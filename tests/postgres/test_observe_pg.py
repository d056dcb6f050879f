"""Logs (with full-text search), captured output, metrics and the resumable event feed on
PostgreSQL: a real server, `coflux server --db-url postgresql+psycopg://...`, a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli

from coflux.client import Client

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


def test_logs_search_and_metrics_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra=["--db-url", postgres_url]).start()
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        with Client(server.url, server.token) as client:
            run = client.submit("observing", "observed", 3, 4)
            assert run.result(timeout=60) == 3
            lines = client.logs(run.id)
            assert len(lines) == 1 + 3 * (1 + 4 + 2 + 1 + 1)  # info, 4 debug, 2 stdout, stderr, warning
            assert [line["message"] for line in lines if line["execution_id"] == f"{run.id}:2:1"][:2] == [
                "task 0 starting with 4 lines", "line 0 of task 0"]
            # The word search goes through PostgreSQL's own full-text index.
            found = client.logs(run.id, search="joined")
            assert [line["message"] for line in found] == ["partial line joined"] * 3
            assert client.logs(run.id, search="nowhere") == []
            assert {line["level"] for line in client.logs(run.id, level="warning")} == {"warning", "stderr"}

            trained = client.submit("observing", "training", 4)
            assert trained.result(timeout=60) == 0.5 ** 4
            series = {s["key"]: s for s in client.metrics(trained.id)}
            assert series["loss"]["points"][-1] == [3.0, 0.5 ** 4]
            assert series["epochs"]["scale"]["progress"] is True

            # The feed resumes from a position: what came after it, in order, and nothing else.
            snapshot = client.get_run(trained.id)
            assert snapshot["seq"] > 0
        text = run_cli("logs", run.id, "--search", "joined", env=server.env())
        assert text.returncode == 0 and text.stdout.count("partial line joined") == 3
        listed = json.loads(run_cli("runs", "list", "--status", "succeeded", "-o", "json", env=server.env()).stdout)
        assert {run.id, trained.id} <= {r["id"] for r in listed}
        assert "Traceback" not in server.output()
    finally:
        worker.stop()
        server.stop()

"""The same engine on PostgreSQL: a real server, a real `coflux server --db-url postgresql+psycopg://...`
and a real worker; results land in PostgreSQL and survive a server crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Server, Worker

from coflux.client import Client

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def pg_server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("pgserver")
    server = Server(base / "data", extra=["--db-url", postgres_url]).start()
    worker = Worker(server, ["pgapp"], concurrency=4, log=base / "worker.log").start()
    worker.wait_registered()
    try:
        yield server
    finally:
        worker.stop()
        server.stop()


def _count(postgres_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_workflow_features_on_postgres(pg_server: Server, postgres_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.touch()
    with Client(pg_server.url, pg_server.token) as client:
        first = client.submit("pgapp", "everything", str(log))
        value = first.result(timeout=60)
        assert value == {"squares": [0, 1, 4, 9, 16], "doubled": [6, 6], "flaky": 3,
                         "caught": "ZeroDivisionError", "fan": sum(range(50))}
        second = client.submit("pgapp", "everything", str(log))
        assert second.result(timeout=60)["squares"] == [0, 1, 4, 9, 16]
    lines = log.read_text().splitlines()
    assert sum(line.startswith("square") for line in lines) == 5  # the second run hit the cache
    assert lines.count("double 3") == 2  # memo within each run
    # Every step and result is a row in PostgreSQL.
    steps = _count(postgres_url, "select count(*) from steps where run_id = %s", first.id)
    done = _count(postgres_url, "select count(*) from executions e join results r on r.execution_id = e.id "
                                "where e.run_id = %s and r.successor_id is null", first.id)
    assert steps == 1 + 5 + 1 + 1 + 1 + 50  # workflow, squares, one memoised double, divide, flaky, fan-out
    assert done == steps


def test_server_crash_loses_nothing_on_postgres(pg_server: Server, postgres_url: str) -> None:
    with Client(pg_server.url, pg_server.token) as client:
        run = client.submit("pgapp", "long_chain", 40)
        client.connection.call("wait", {"execution": f"{run.id}:1:1", "timeout": 0.5})
        pg_server.kill()
        pg_server.start()
        assert run.result(timeout=60) == sum(range(40))
    assert _count(postgres_url, "select count(*) from steps where run_id = %s", run.id) == 41

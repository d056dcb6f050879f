"""A PostgreSQL outage as an operator sees it (issue 22): the private PostgreSQL server is stopped
for a few seconds under a running `coflux server`, then started again.

While it is down, reads answer 503 "database unavailable, retrying" (and the CLI prints that),
a write waits and completes once it is back, and `GET api/health` answers 503 saying what is
wrong: the database unreachable since when, the orchestrator busy on one batch for how long.
Once the database is back, health is ok again and everything works."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from harness import Server, Worker, run_cli, wait_until

from coflux.client import Client
from coflux_server.handlers import STUCK_AFTER

if TYPE_CHECKING:
    from .conftest import PrivatePostgres

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")

UNAVAILABLE = "database unavailable, retrying"


def _health(server: Server) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + "api/health", headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _own_database(postgres: PrivatePostgres, name: str) -> str:
    admin = postgres.url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


def test_a_database_outage_is_told_as_it_is_and_writes_wait(postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra=["--db-url", _own_database(postgres, "coflux_outage")]).start()
    worker = Worker(server, ["myapp.workflows"], concurrency=2, log=tmp_path / "worker.log").start()
    client = Client(server.url, server.token)
    submitted: dict[str, Any] = {}
    try:
        worker.wait_registered()
        before = client.submit("myapp.workflows", "identity", 1)
        assert before.result(timeout=30) == 1
        status, body = _health(server)
        assert status == 200 and body["ok"] is True and body["database"]["reachable"] is True, body

        stopped_at = time.time()
        postgres.stop()
        try:
            def submit_during_outage() -> None:
                try:
                    run = client.submit("myapp.workflows", "identity", 2)
                    submitted["value"] = run.result(timeout=90)
                except Exception as exc:  # reported by the assertion below
                    submitted["error"] = exc

            writer = threading.Thread(target=submit_during_outage, daemon=True)
            writer.start()

            for args in (("runs", "list"), ("runs", "inspect", before.id)):
                started = time.monotonic()
                failed = run_cli(*args, env=server.env(), timeout=60)
                assert failed.returncode != 0, failed.stdout
                assert UNAVAILABLE in failed.stderr, failed.stderr
                assert time.monotonic() - started < 20  # told, not left hanging

            def unhealthy() -> tuple[int, dict] | None:
                status, body = _health(server)
                busy = body.get("orchestrator", {}).get("busy_for", 0)
                return (status, body) if status == 503 and busy >= STUCK_AFTER else None

            # The write holds the orchestrator on its batch until the database is back.
            status, body = wait_until(unhealthy, STUCK_AFTER + 20, 0.2, message="health to report the outage")
            assert body["ok"] is False
            database = body["database"]
            assert database["reachable"] is False
            assert stopped_at - 1 <= database["unreachable_since"] <= time.time()
            assert database["unreachable_for"] >= STUCK_AFTER - 1
            assert any("database unreachable since" in problem for problem in body["problems"]), body
            assert any("busy on one batch for" in problem for problem in body["problems"]), body
            assert "value" not in submitted and "error" not in submitted  # the write waits
        finally:
            postgres.start()

        recovered = wait_until(lambda: _health(server)[0] == 200, 60, 0.2, message="health to be ok again")
        assert recovered
        status, body = _health(server)
        assert body["ok"] is True and body["database"]["reachable"] is True and not body.get("problems")
        writer.join(90)
        assert submitted.get("value") == 2, submitted
        listed = run_cli("runs", "list", env=server.env())
        assert listed.returncode == 0, listed.stderr
    finally:
        client.close()
        worker.stop()
        server.stop()

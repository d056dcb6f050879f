"""The server-kill scenario (tests/server_kills.py) on PostgreSQL: the server killed (-9) again and
again while its worker holds work given to it ahead of time; every body runs exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_kills import kill_server_repeatedly

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


def test_server_kills_never_run_a_body_twice_postgres(postgres_url: str, tmp_path: Path) -> None:
    admin = postgres_url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS coflux_kills")
        conn.execute("CREATE DATABASE coflux_kills")
    figures = kill_server_repeatedly(tmp_path, db_url=postgres_url.rsplit("/", 1)[0] + "/coflux_kills")
    print(f"\nserver kills (PostgreSQL): {figures.summary()}")
    assert figures.completed == figures.kills, figures.summary()
    assert figures.duplicated == 0, figures.summary()
    assert figures.attempts_beyond_first == 0, figures.summary()
    assert figures.handed_out_again > 0, figures.summary()

"""The fault test under load (tests/fault_scenario.py) on PostgreSQL: the same faults, the same
figures, with the server on its own database of the private PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_scenario import run_fault_scenario

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


def test_faults_under_load_postgres(postgres_url: str, tmp_path: Path) -> None:
    admin = postgres_url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS coflux_faults")
        conn.execute("CREATE DATABASE coflux_faults")
    figures = run_fault_scenario(tmp_path, db_url=postgres_url.rsplit("/", 1)[0] + "/coflux_faults")
    print(f"\nfault test under load (PostgreSQL): {figures.summary()}")
    assert figures.completed == figures.runs, figures.summary()
    assert figures.duplicated == 0, figures.summary()
    assert figures.abandoned_unstarted == 0, figures.summary()
    assert figures.seconds < 90, figures.summary()

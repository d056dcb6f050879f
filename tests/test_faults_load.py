"""The fault test under load, on SQLite: 100 runs in flight with retries at 0, then kill -9 of the
server, kill -9 of one of two task workers and SIGSTOP of the other past the reconnect grace.
Every run completes with its right value, no body runs twice unless it crashed mid-way, work that
never started is re-queued rather than abandoned, and nothing hangs. See fault_scenario.py; the
PostgreSQL variant is tests/postgres/test_faults_load_pg.py."""

from __future__ import annotations

from pathlib import Path

from fault_scenario import run_fault_scenario


def test_faults_under_load_sqlite(tmp_path: Path) -> None:
    figures = run_fault_scenario(tmp_path)
    print(f"\nfault test under load (SQLite): {figures.summary()}")
    assert figures.completed == figures.runs, figures.summary()
    assert figures.duplicated == 0, figures.summary()
    assert figures.abandoned_unstarted == 0, figures.summary()
    assert figures.seconds < 90, figures.summary()

"""A server killed (-9) again and again while its worker holds work given to it ahead of time:
every body runs exactly once (SQLite; the PostgreSQL variant is
tests/postgres/test_server_kills_pg.py). See server_kills.py."""

from __future__ import annotations

from pathlib import Path

from server_kills import kill_server_repeatedly


def test_server_kills_never_run_a_body_twice_sqlite(tmp_path: Path) -> None:
    figures = kill_server_repeatedly(tmp_path)
    print(f"\nserver kills (SQLite): {figures.summary()}")
    assert figures.completed == figures.kills, figures.summary()
    assert figures.duplicated == 0, figures.summary()
    assert figures.attempts_beyond_first == 0, figures.summary()
    # The work the worker handed back while the server was down was given out again: the
    # scenario reached the moment it is about.
    assert figures.handed_out_again > 0, figures.summary()

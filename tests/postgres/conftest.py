"""A private PostgreSQL server for the tests that claim PostgreSQL works (Debian's packages)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import free_port, wait_until


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(args: list[str]) -> list[str]:
    # The server refuses to run as root; Debian's package creates a `postgres` user for it.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    """The PostgreSQL server of this test session (its own data directory and port); a test may
    stop it for a while (a database outage) and must start it again."""

    def __init__(self, bin_dir: Path, base: Path, port: int) -> None:
        self.bin_dir, self.base, self.port = bin_dir, base, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/coflux"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), *args]),
                       check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-l", str(self.base / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.base / 'sockets'} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        """Stop at once (clients see their connections cut, as in a crash)."""
        self._ctl("-m", "immediate", "-w", "stop")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    # .ci/run sets COFLUX_PG_REQUIRED=1 once it has installed PostgreSQL: then a skip is a failure.
    missing = pytest.fail if os.environ.get("COFLUX_PG_REQUIRED") == "1" else pytest.skip
    bin_dir = _binaries()
    if bin_dir is None:
        missing("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install -e '.[test]')")
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="coflux-pg-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    server = PrivatePostgres(bin_dir, base, free_port())
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    server.start()
    try:
        import psycopg

        def ready() -> bool:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                                     autocommit=True) as conn:
                    conn.execute("CREATE DATABASE coflux")
                return True
            except psycopg.OperationalError:
                return False

        wait_until(ready, 30, 0.1, message="PostgreSQL to accept connections")
        yield server
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres: PrivatePostgres) -> str:
    return postgres.url

"""Assets and large values on PostgreSQL: a `coflux server --db-url postgresql+psycopg://...` (its
blobs in --data-dir), a real worker for tests/apps/assetsapp.py and the Python client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Server, Worker

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def pg_assets(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Worker]]:
    import psycopg

    admin = postgres_url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS coflux_assets")
        conn.execute("CREATE DATABASE coflux_assets")
    base = tmp_path_factory.mktemp("pg-assets")
    server = Server(base / "data", extra=["--db-url", postgres_url.rsplit("/", 1)[0] + "/coflux_assets"]).start()
    worker = Worker(server, ["assetsapp"], concurrency=2, log=base / "worker.log").start()
    worker.wait_registered()
    yield server, worker
    worker.stop()
    server.stop()


def test_assets_and_blobs_on_postgres(pg_assets: tuple[Server, Worker]) -> None:
    from coflux.client import Client

    server, _ = pg_assets
    with Client(server.url, server.token) as client:
        run = client.submit("assetsapp", "asset_roundtrip", "pg")
        out = run.result(timeout=60)
        assert out["a"] == "hello" and out["paths"] == ["a.txt", "img.png", "sub/b.csv", "sub/deeper/c.md"]
        (asset,) = client.assets(run)
        assert asset.id == out["id"] and asset.name == "pg" and asset["sub/b.csv"].read() == b"x,y\n1,2\n"
        assert client.submit("assetsapp", "big_bytes", 5 * 1024 * 1024).result(timeout=60) == 5 * 1024 * 1024
    assert (server.data_dir / "blobs").is_dir()  # type: ignore[operator]

"""Assets through real processes: a `coflux server`, a `coflux worker` for tests/apps/assetsapp.py,
the Python client and the CLI. Every form of `cf.asset`, `cf.Asset`/`cf.AssetEntry` passed between
tasks, the fresh working directory per execution, bad paths, `coflux assets inspect|download`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli

import coflux as cf


@pytest.fixture(scope="module")
def assets_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("assets-worker") / "worker.log"
    worker = Worker(server, ["assetsapp"], concurrency=2, log=log).start()
    worker.wait_registered()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def aclient(server: Server, assets_worker: Worker) -> Iterator[object]:
    from coflux.client import Client

    with Client(server.url, server.token) as c:
        yield c


def test_asset_passes_between_tasks(aclient) -> None:
    run = aclient.submit("assetsapp", "asset_roundtrip", "results")
    out = run.result(timeout=60)
    assert out["name"] == "results"
    assert out["paths"] == ["a.txt", "img.png", "sub/b.csv", "sub/deeper/c.md"]
    assert out["exists"] and out["a"] == "hello"
    assert out["csv"] == ["only/sub/b.csv"]
    assert out["read"] == b"hello" and out["read_range"] == b"ell" and out["read_past_end"] == b""
    assert out["entry_restore"] == "single/a.txt"
    assert out["contains"] == [True, False]
    assert out["types"] == {"a.txt": "text/plain", "img.png": "image/png", "sub/b.csv": "text/csv",
                            "sub/deeper/c.md": "text/markdown"}
    assert out["sizes"]["img.png"] == 8 + 1024
    assert out["metadata"] == {"name": "results", "total_count": 4, "total_size": 5 + 1032 + 8 + 8}
    # The client lists the run's assets, and can read and restore them too.
    assets = aclient.assets(run)
    assert [a.id for a in assets] == [out["id"]]
    asset = assets[0]
    assert isinstance(asset, cf.Asset) and isinstance(asset["a.txt"], cf.AssetEntry)
    assert asset["sub/b.csv"].read() == b"x,y\n1,2\n"
    assert run.assets()[0] == asset


def test_every_form_of_asset(aclient, tmp_path: Path) -> None:
    forms = aclient.submit("assetsapp", "asset_forms").result(timeout=60)
    paths = {k: sorted(e.path for e in v.entries) for k, v in forms.items()}
    assert paths == {
        "all": ["a.txt", "img.png", "sub/b.csv", "sub/deeper/c.md"],
        "glob": ["a.txt"],
        "glob_deep": ["sub/b.csv", "sub/deeper/c.md"],  # fnmatch: * matches '/'
        "path": ["a.txt"],
        "paths": ["a.txt", "img.png"],
        "directory": ["sub/b.csv", "sub/deeper/c.md"],
        "at": ["b.csv", "deeper/c.md"],
        "at_path": ["b.csv"],
        "again": ["img.png"],
        "dict": ["nested/a.txt", "nested/img.png", "nested/sub/b.csv", "nested/sub/deeper/c.md", "one",
                 "renamed/x.txt"],
    }
    assert forms["all"].name == "everything"
    assert len({a.id for a in forms.values()}) == len(forms)  # each call is its own asset
    # Re-referenced entries point at the same blobs (nothing uploaded twice).
    assert forms["dict"]["one"].blob_key == forms["all"]["img.png"].blob_key
    restored = forms["dict"].restore(at=tmp_path)
    assert (tmp_path / "renamed/x.txt").read_text() == "hello"
    assert restored["nested/sub/deeper/c.md"].read_text() == "# title\n"


def test_bad_paths_are_clear_errors(aclient) -> None:
    run = aclient.submit("assetsapp", "bad_asset_paths")
    errors = run.result(timeout=60)
    assert all(errors.values()), errors  # every one raised ValueError
    for label in ("dotdot", "absolute", "symlink", "at_outside"):
        assert "outside" in errors[label], errors[label]
    assert "must be relative" in errors["dict_key"]
    assert "'at' is not allowed" in errors["dict_at"]
    assert "no file 'nope.txt'" in errors["missing"]
    assert "no files found" in errors["nothing"] and "*.nothing" in errors["nothing"]
    assert aclient.assets(run) == []  # nothing recorded; the run itself finished with its value


def test_no_files_is_value_error(aclient) -> None:
    with pytest.raises(ValueError, match="no files found"):
        aclient.submit("assetsapp", "no_files").result(timeout=60)


def test_each_execution_gets_a_fresh_workdir_removed_afterwards(aclient) -> None:
    first, second = aclient.submit("assetsapp", "two_workdirs").result(timeout=60)
    assert first["files"] == [] and second["files"] == []  # each starts empty: nothing of the other's
    assert os.path.basename(first["cwd"]).startswith("coflux-exec-")
    # The files an execution wrote are gone with its directory (workdir() writes one).
    assert not os.path.exists(first["cwd"]) and not os.path.exists(second["cwd"])


def test_cli_inspect_and_download(aclient, server: Server, tmp_path: Path) -> None:
    run = aclient.submit("assetsapp", "asset_roundtrip", "cli")
    run.result(timeout=60)
    env = server.env()
    listed = run_cli("assets", "inspect", run.id, "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    (asset,) = json.loads(listed.stdout)
    assert asset["name"] == "cli" and asset["count"] == 4 and asset["run"] == run.id
    text = run_cli("assets", "inspect", asset["id"], env=env)
    assert text.returncode == 0 and "sub/b.csv" in text.stdout and "text/csv" in text.stdout
    one = run_cli("assets", "inspect", asset["id"], "-o", "json", env=env)
    assert json.loads(one.stdout)["id"] == asset["id"]

    got = run_cli("assets", "download", asset["id"], "--to", str(tmp_path / "all"), env=env)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "all/sub/deeper/c.md").read_text() == "# title\n"
    assert (tmp_path / "all/img.png").stat().st_size == 1032
    some = run_cli("assets", "download", asset["id"], "--to", str(tmp_path / "some"), "--match", "*.csv", env=env)
    assert some.returncode == 0
    assert sorted(p.relative_to(tmp_path / "some").as_posix() for p in (tmp_path / "some").rglob("*")
                  if p.is_file()) == ["sub/b.csv"]

    missing = run_cli("assets", "inspect", "Anothere", env=env)
    assert missing.returncode == 1 and "no asset" in missing.stderr
    nothing = run_cli("assets", "download", asset["id"], "--to", str(tmp_path / "x"), "--match", "*.zip", env=env)
    assert nothing.returncode == 1 and "no entries matching" in nothing.stderr


def test_download_refuses_paths_outside_to(aclient, server: Server, tmp_path: Path) -> None:
    """A symlink inside --to that points out of it: the whole download is refused, nothing written."""
    run = aclient.submit("assetsapp", "asset_roundtrip", None)
    run.result(timeout=60)
    (asset,) = aclient.assets(run)
    to, elsewhere = tmp_path / "to", tmp_path / "elsewhere"
    to.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, to / "sub")
    got = run_cli("assets", "download", asset.id, "--to", str(to), env=server.env())
    assert got.returncode == 1 and "outside" in got.stderr, got.stderr
    assert list(elsewhere.iterdir()) == [] and not (to / "a.txt").exists()
    with pytest.raises(ValueError, match="outside"):
        asset.restore(at=to)


def test_asset_paths_from_the_server_are_checked() -> None:
    from coflux.assets import Asset

    hostile = Asset.from_data({"id": "Ax", "name": None,
                               "entries": [["../../etc/x", "0" * 64, 1, {}]]})
    with pytest.raises(ValueError, match="inside the asset"):
        hostile.restore(at="/tmp")


def test_asset_outside_an_execution_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside a running"):
        cf.asset()


def test_put_asset_is_validated(server: Server, assets_worker: Worker) -> None:
    """The server refuses bad entries (and an execution that is not the caller's) without
    recording anything."""
    from coflux.connection import Connection, RemoteError

    conn = Connection(server.url, server.token, name="asset-probe").start()
    try:
        with pytest.raises(RemoteError, match="registered as a worker"):
            conn.call("put_asset", {"execution": "Rx:1:1", "entries": [], "key": "k"}, timeout=10)
        conn.call("register", {"kind": "headless", "name": "probe", "workspace": "default", "targets": {},
                               "concurrency": 1}, timeout=10)
        with pytest.raises(RemoteError, match="not running on this worker"):
            conn.call("put_asset", {"execution": "Rx:1:1", "key": "k",
                                    "entries": [{"path": "a", "blob": "0" * 64, "size": 1}]}, timeout=10)
    finally:
        conn.close()


def test_server_checks_asset_paths_and_entries() -> None:
    from coflux_server.errors import BadRequest
    from coflux_server.orchestrator.assets import _entries, asset_path

    for good in ["a.txt", "sub/b.csv", "a b/c"]:
        assert asset_path(good) == good
    for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", ".", "a\\b", "a\x00b", "x" * 1001]:
        with pytest.raises(BadRequest):
            asset_path(bad)
    entry = {"path": "a", "blob": "0" * 64, "size": 1}
    assert _entries([entry])[0]["metadata"] == {}
    for bad_entries in [[], "x", [entry, entry], [{**entry, "blob": "../" + "0" * 61}], [{**entry, "size": -1}],
                        [{**entry, "size": True}], [{**entry, "metadata": {"x": "y" * 5000}}]]:
        with pytest.raises(BadRequest):
            _entries(bad_entries)


def test_asset_event_is_published(aclient) -> None:
    import threading

    seen: list[dict] = []
    arrived = threading.Event()

    def listener(event: dict) -> None:
        if event.get("type") == "asset":
            seen.append(event)
            arrived.set()

    run = aclient.submit("assetsapp", "asset_roundtrip", "evt")
    aclient.subscribe(f"run:{run.id}", listener)
    try:
        out = run.result(timeout=60)
        assert arrived.wait(10), "no asset event"
        assert seen[0]["asset"] == out["id"] and seen[0]["count"] == 4 and seen[0]["name"] == "evt"
    finally:
        aclient.unsubscribe(f"run:{run.id}", listener)


def test_corrupted_blob_is_refused_on_the_way_out(aclient, server: Server, tmp_path: Path) -> None:
    """A stored blob whose content no longer matches its key (disk corruption, tampering) is an
    error for whoever reads it, and nothing is written where it was to be restored."""
    from coflux.blobs import BlobError

    run = aclient.submit("assetsapp", "asset_roundtrip", "corrupt")
    run.result(timeout=60)
    (asset,) = aclient.assets(run)
    key = asset["sub/deeper/c.md"].blob_key
    stored = server.data_dir / "blobs" / key[:2] / key[2:4] / key  # type: ignore[operator]
    original = stored.read_bytes()
    try:
        stored.write_bytes(b"# tampered")
        with pytest.raises(BlobError, match="different content"):
            asset["sub/deeper/c.md"].restore(at=tmp_path)
        assert list(tmp_path.rglob("*")) == [tmp_path / "sub", tmp_path / "sub/deeper"]  # no file, no temp file
        with pytest.raises(BlobError, match="different content"):
            asset.restore(at=tmp_path / "all")
        assert asset["a.txt"].read() == b"hello"  # the other entries are intact
    finally:
        stored.write_bytes(original)
    assert asset["sub/deeper/c.md"].restore(at=tmp_path).read_text() == "# title\n"


def test_a_token_limited_to_other_workspaces_cannot_read_an_asset(aclient, server: Server) -> None:
    run = aclient.submit("assetsapp", "asset_roundtrip", "scoped")
    run.result(timeout=60)
    (asset,) = aclient.assets(run)
    made = run_cli("tokens", "create", "--name", "elsewhere", "--workspaces", "team/*", env=server.env())
    assert made.returncode == 0, made.stderr
    scoped = made.stdout.strip()
    refused = run_cli("assets", "inspect", asset.id, "--token", scoped, env=server.env())
    assert refused.returncode != 0 and "may not use workspace 'default'" in refused.stderr, refused.stderr
    assert run_cli("assets", "inspect", asset.id, env=server.env()).returncode == 0

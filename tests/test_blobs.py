"""The blob store and large values, through real processes: `api/blobs/<key>` over HTTP (auth,
key checks, verified uploads, range reads, size limit), values above the blob threshold passed
between tasks of a real worker (bytes, numpy arrays, a 500 MiB pandas DataFrame), and the
local store's atomic writes."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import resource
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, inspect_run, run_cli

from coflux import serialization
from coflux.blobs import BlobClient, BlobError
from coflux_server.blobs import BadKey, BlobMismatch, LocalBlobStore, check_key


def _request(server: Server, method: str, path: str, body: bytes | None = None, *, token: str | None = "",
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    parts = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    all_headers = dict(headers or {})
    token = server.token if token == "" else token
    if token:
        all_headers["Authorization"] = f"token {token}"
    try:
        try:
            conn.request(method, path if path.startswith("/") else "/" + path, body=body, headers=all_headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent: the answer is there to read
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- the local store


def test_local_store_verifies_and_writes_atomically(tmp_path: Path) -> None:
    store = LocalBlobStore(str(tmp_path / "blobs"))
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = store.put(data)
    assert key == _key(data) and store.size(key) == len(data)
    assert b"".join(store.read(key)) == data
    assert b"".join(store.read(key, 10, 5)) == data[10:15]
    assert Path(store.path(key)).relative_to(tmp_path / "blobs").parts[:2] == (key[:2], key[2:4])

    wrong = _key(b"something else")
    writer = store.open_writer(wrong)
    writer.write(b"not that")
    with pytest.raises(BlobMismatch, match="does not match its key"):
        writer.commit()
    assert not store.exists(wrong)
    assert os.listdir(store.tmp_dir) == []  # the partial upload is gone too

    for bad in ["", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "a" * 62 + "/.", key.upper()]:
        with pytest.raises(BadKey):
            check_key(bad)
        with pytest.raises(BadKey):
            store.path(bad)


# ---------------------------------------------------------------------- HTTP


def test_http_put_get_head_range(server: Server) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    key = _key(data)
    assert _request(server, "HEAD", f"api/blobs/{key}")[0] == 404
    status, _, body = _request(server, "PUT", f"api/blobs/{key}", data)
    assert status == 201 and json.loads(body) == {"key": key, "size": len(data)}
    status, headers, _ = _request(server, "HEAD", f"api/blobs/{key}")
    assert status == 200 and headers["Content-Length"] == str(len(data))
    status, _, body = _request(server, "GET", f"api/blobs/{key}")
    assert status == 200 and body == data
    for header, expected in [("bytes=0-9", data[:10]), ("bytes=100-", data[100:]), ("bytes=-5", data[-5:]),
                             ("bytes=10-999999999", data[10:])]:
        status, headers, body = _request(server, "GET", f"api/blobs/{key}", headers={"Range": header})
        assert status == 206 and body == expected, header
        assert headers["Content-Range"].endswith(f"/{len(data)}")
    status, headers, _ = _request(server, "GET", f"api/blobs/{key}", headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
    status, _, body = _request(server, "GET", f"api/blobs/{key}", headers={"Range": "bytes=1-2,5-6"})
    assert status == 400 and b"unsupported Range" in body
    # The same content again is accepted (idempotent), and the client helper agrees.
    assert _request(server, "PUT", f"api/blobs/{key}", data)[0] == 201
    client = BlobClient(server.url, server.token)
    assert client.exists(key) and client.get(key) == data and client.get(key, 5, 3) == data[5:8]


def test_http_refuses_mismatch_bad_keys_and_strangers(server: Server) -> None:
    data = b"the real content"
    wrong = _key(b"other content")
    status, _, body = _request(server, "PUT", f"api/blobs/{wrong}", data)
    assert status == 400 and b"does not match its key" in body
    assert _request(server, "GET", f"api/blobs/{wrong}")[0] == 404  # nothing stored under it
    for bad in ["abc", "A" * 64, "%2e%2e%2f" + "a" * 55, "..%2f..%2fcoflux.db", "a" * 63 + "%00"]:
        status, _, body = _request(server, "PUT", f"api/blobs/{bad}", data)
        assert status in (400, 404), (bad, status)
        status, _, _ = _request(server, "GET", f"api/blobs/{bad}")
        assert status in (400, 404), (bad, status)
    status, _, body = _request(server, "GET", "api/blobs/" + "A" * 64)
    assert status == 400 and b"64 lowercase hex" in body
    key = _key(data)
    assert _request(server, "PUT", f"api/blobs/{key}", data, token=None)[0] == 401
    assert _request(server, "PUT", f"api/blobs/{key}", data, token="wrong")[0] == 403
    assert _request(server, "GET", f"api/blobs/{key}", token=None)[0] == 401
    assert _request(server, "HEAD", f"api/blobs/{key}", token=None)[0] == 401
    assert _request(server, "GET", f"api/blobs/{key}")[0] == 404  # none of them stored anything
    with pytest.raises(BlobError, match="does not match its key"):
        BlobClient(server.url, server.token).put_bytes(data, key=wrong)


def test_unauthenticated_upload_is_refused_before_its_body(server: Server) -> None:
    """The 401 comes right after the headers: a stranger cannot make the server read (or store)
    a large body."""
    parts = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("PUT", "/api/blobs/" + "a" * 64)
        conn.putheader("Content-Length", str(1024 ** 3))
        conn.endheaders()
        conn.send(b"x" * 1024)
        response = conn.getresponse()
        assert response.status == 401
    finally:
        conn.close()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Worker]]:
    """A server that stores blobs of at most 3 MB, with a worker for assetsapp."""
    base = tmp_path_factory.mktemp("small-blobs")
    srv = Server(base / "data", extra=["--max-blob-bytes", "3000000"]).start()
    worker = Worker(srv, ["assetsapp"], concurrency=1, log=base / "worker.log").start()
    worker.wait_registered()
    yield srv, worker
    worker.stop()
    srv.stop()


def test_blob_size_limit(small_server: tuple[Server, Worker]) -> None:
    srv, _ = small_server
    data = b"x" * 3_000_001
    status, _, body = _request(srv, "PUT", f"api/blobs/{_key(data)}", data)
    assert status == 413 and b"larger than this server's maximum" in body
    fits = b"y" * 3_000_000
    assert _request(srv, "PUT", f"api/blobs/{_key(fits)}", fits)[0] == 201
    # A task whose result is above the limit fails with that message; the run is intact.
    from coflux.client import Client

    with Client(srv.url, srv.token) as client:
        with pytest.raises(Exception, match="larger than this server's maximum"):
            client.submit("assetsapp", "big_bytes", 4 * 1024 * 1024).result(timeout=60)
        assert client.submit("assetsapp", "big_bytes", 2 * 1024 * 1024).result(timeout=60) == 2 * 1024 * 1024


# ---------------------------------------------------------------------- large values


@pytest.fixture(scope="module")
def blob_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("blob-worker") / "worker.log"
    worker = Worker(server, ["assetsapp"], concurrency=2, log=log).start()
    worker.wait_registered()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def bclient(server: Server, blob_worker: Worker) -> Iterator[object]:
    from coflux.client import Client

    with Client(server.url, server.token) as c:
        yield c


def _cli(server: Server):
    return lambda *args: run_cli(*args, env=server.env())


def test_large_bytes_travel_as_blobs(bclient, server: Server) -> None:
    n = 5 * 1024 * 1024
    run = bclient.submit("assetsapp", "big_bytes", n)
    assert run.result(timeout=60) == n
    snapshot = inspect_run(_cli(server), run.id)
    make = next(s for s in snapshot["steps"] if s["target"] == "make_bytes")
    value = make["executions"][0]["result"]["value"]
    assert value["v"]["$"] == "blob" and value["v"]["format"] == "bytes" and value["v"]["size"] == n
    assert len(json.dumps(value)) < 300  # the database row holds a reference, not 5 MiB
    key = value["v"]["key"]
    assert BlobClient(server.url, server.token).get(key) == bytes(range(256)) * (n // 256)
    # Below the threshold a value stays inline.
    small = bclient.submit("assetsapp", "big_bytes", 1024)
    assert small.result(timeout=60) == 1024
    make = next(s for s in inspect_run(_cli(server), small.id)["steps"] if s["target"] == "make_bytes")
    assert make["executions"][0]["result"]["value"]["v"]["$"] == "bytes"


def test_numpy_and_large_json_round_trip(bclient) -> None:
    import numpy as np

    array = np.arange(600_000, dtype=np.float64).reshape(1000, 600)  # 4.8 MB: a blob argument
    assert bclient.submit("assetsapp", "pass_array", array).result(timeout=60) == {
        "shape": [1000, 600], "dtype": "float64", "sum": float(array.sum())}
    small = np.eye(3, dtype=np.int32)
    assert bclient.submit("assetsapp", "pass_array", small).result(timeout=60)["sum"] == 3.0
    back = bclient.submit("assetsapp", "echo_flow", array).result(timeout=60)
    assert isinstance(back, np.ndarray) and np.array_equal(back, array)
    big_list = list(range(400_000))  # ~2.7 MB of JSON: one JSON blob
    assert bclient.submit("assetsapp", "echo_flow", big_list).result(timeout=60) == big_list
    text = "é" * (2 * 1024 * 1024)
    assert bclient.submit("assetsapp", "echo_flow", text).result(timeout=60) == text


def test_pandas_frame_small_round_trip(bclient) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    back = bclient.submit("assetsapp", "echo_flow", frame).result(timeout=60)
    assert isinstance(back, pd.DataFrame) and back.equals(frame)


def _tree_peak_rss_mib(pid: int) -> dict[int, float]:
    """VmHWM (peak resident memory) of a process's children, in MiB."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if status.get("PPid", "").strip() == str(pid) and "VmHWM" in status:
            out[int(entry.name)] = int(status["VmHWM"].split()[0]) / 1024
    return out


def test_500_mib_dataframe_between_two_tasks(bclient, blob_worker: Worker, server: Server) -> None:
    mib = 500
    started = time.perf_counter()
    run = bclient.submit("assetsapp", "pass_frame", mib)
    summary = run.result(timeout=600)
    elapsed = time.perf_counter() - started
    rows = mib * 1024 * 1024 // 16
    assert summary == {"rows": rows, "sum_a": rows * (rows - 1) // 2, "sum_b": float(rows),
                       "columns": ["a", "b"], "bytes": mib * 1024 * 1024}
    peaks = _tree_peak_rss_mib(blob_worker.proc.pid)  # type: ignore[union-attr]
    print(f"\n500 MiB DataFrame between two tasks: {elapsed:.1f} s end to end; "
          f"peak RSS of pool processes (MiB): {sorted(round(v) for v in peaks.values())}; "
          f"test process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    # The database holds one blob reference for the frame, not 500 MiB.
    steps = inspect_run(_cli(server), run.id)["steps"]
    timing = {s["target"]: round(s["executions"][0]["result"]["at"] - s["executions"][0]["started_at"], 1)
              for s in steps}
    print(f"seconds per step (from start to result): {timing}")
    make = next(s for s in steps if s["target"] == "make_frame")
    value = make["executions"][0]["result"]["value"]["v"]
    # As Parquet (not a pickle): readable anywhere, and what the step panel describes.
    assert value["$"] == "blob" and value["format"] == "parquet" and value["size"] > 1024 * 1024
    assert (value["class"], value["rows"], value["columns"]) == ("pandas.DataFrame", rows, ["a", "b"])


# ---------------------------------------------------------------------- the SDK's limits


class _FakeStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put_bytes(self, data: bytes, key: str | None = None) -> str:
        key = _key(bytes(data))
        self.blobs[key] = bytes(data)
        return key

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.blobs[key]


def test_max_value_size_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _FakeStore()
    monkeypatch.setattr(serialization, "MAX_VALUE_BYTES", 4 * 1024 * 1024)
    with pytest.raises(serialization.ValueTooLarge, match="COFLUX_MAX_VALUE_BYTES"):
        serialization.encode(b"x" * (5 * 1024 * 1024), blobs=store)
    assert store.blobs == {}  # nothing uploaded
    wire = serialization.encode({"k": b"y" * (2 * 1024 * 1024)}, blobs=store)
    assert wire["v"]["k"]["$"] == "blob" and len(store.blobs) == 1
    assert serialization.decode(wire, blobs=store) == {"k": b"y" * (2 * 1024 * 1024)}
    assert serialization.to_display(wire)["k"].startswith("<bytes: 2097152 bytes in blob")


def test_without_a_server_large_values_stay_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    import coflux.blobs

    monkeypatch.setattr(coflux.blobs, "_default", None)
    wire = serialization.encode(b"z" * (2 * 1024 * 1024))
    assert wire["v"]["$"] == "bytes"


def test_large_log_values_are_blob_references(bclient, server: Server) -> None:
    n = 3 * 1024 * 1024
    run = bclient.submit("assetsapp", "log_big", n)
    assert run.result(timeout=60) == n
    deadline = time.monotonic() + 20
    while True:
        got = run_cli("logs", run.id, "-o", "json", env=server.env())
        lines = [json.loads(line) for line in got.stdout.splitlines() if line.strip()]
        lines = [line for line in lines if line.get("template") == "payload of {size} bytes"]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lines, got.stdout + got.stderr
    payload = lines[0]["values"]["payload"]  # as viewers show it: a reference, not 3 MiB of text
    assert payload.startswith(f"<bytes: {n} bytes in blob "), payload
    assert lines[0]["values"]["size"] == n
    assert BlobClient(server.url, server.token).get(payload.rstrip(">").rsplit(" ", 1)[1]) == b"L" * n


def test_large_strings_beside_references_are_blobs() -> None:
    class Handle(serialization.Ref):
        def to_ref(self) -> dict:
            return {"type": "execution", "id": "Rx:1:1", "module": "m", "target": "t"}

    store = _FakeStore()
    text = "\ud800 lone surrogate and more " * 100_000  # ~2.6 MB
    wire = serialization.encode([Handle(), text], blobs=store)
    assert wire["refs"][0]["id"] == "Rx:1:1" and wire["v"][1]["$"] == "blob" and wire["v"][1]["format"] == "str"
    assert serialization.decode(wire, lambda ref: ref["id"], blobs=store) == ["Rx:1:1", text]

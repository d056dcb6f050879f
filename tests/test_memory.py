"""Bounded memory: what the server keeps in memory is bounded by size, not by count, and deep
values fail with a clear coflux error instead of a bare RecursionError."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
from harness import Server, Worker

from coflux import serialization
from coflux.client import Client
from coflux.serialization import MAX_DEPTH, ValueTooDeep
from coflux_server.orchestrator.caches import BoundedCache, approx_size
from coflux_server.orchestrator.working_set import RESULT_MAX_BYTES, RESULTS_MAX_BYTES, _result_size

MB = 1024 * 1024


# ------------------------------------------------------------------ the caches on their own


def test_bounded_cache_is_bounded_by_bytes_and_count() -> None:
    cache = BoundedCache(1000, 10 * MB, max_entry_bytes=2 * MB, sizeof=len)
    for i in range(20):
        assert cache.put(i, "x" * MB)
    assert cache.bytes <= 10 * MB and len(cache) == 9  # the least recently used went first
    assert 19 in cache and 0 not in cache
    assert not cache.put("big", "x" * (3 * MB))  # too big to keep at all
    assert "big" not in cache
    small = BoundedCache(3)
    for i in range(10):
        small[i] = i
    assert list(small) == [7, 8, 9]
    small.get(7)  # a read makes it recent
    small[10] = 10
    assert list(small) == [9, 7, 10]


def test_results_cache_keeps_no_large_values() -> None:
    """Ten 10 MB results cost nothing in the cache (they are read back from the database)."""
    cache = BoundedCache(100_000, RESULTS_MAX_BYTES, max_entry_bytes=RESULT_MAX_BYTES, sizeof=_result_size)
    for i in range(10):
        cache.put(f"R:{i}:1", ("value", {"v": "x" * (10 * MB)}, None, None))
    assert len(cache) == 0 and cache.bytes == 0
    for i in range(100_000):
        cache.put(f"S:{i}:1", ("value", {"v": i}, None, None))
    assert cache.bytes <= RESULTS_MAX_BYTES


def test_approx_size_of_deep_values_does_not_recurse() -> None:
    value: dict = {}
    for _ in range(100_000):
        value = {"x": value}
    assert approx_size(value) > 100_000
    assert approx_size({"v": "x" * (20 * MB)}, limit=MB) > MB


# ------------------------------------------------------------------ deep values


def nested_dict(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


def test_deep_values_fail_with_a_clear_error() -> None:
    with pytest.raises(ValueTooDeep, match=f"at most {MAX_DEPTH} levels"):
        serialization.encode(nested_dict(2000))
    assert isinstance(ValueTooDeep(), ValueError)
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueTooDeep, match="contains itself"):
        serialization.encode(looped)
    ok = nested_dict(MAX_DEPTH - 1)
    assert serialization.decode(json.loads(json.dumps(serialization.encode(ok)))) == ok
    wire = {"v": nested_dict(600)}
    with pytest.raises(ValueTooDeep):
        serialization.decode(wire)
    assert "nested too deeply" in json.dumps(serialization.to_display(wire))


def test_deep_values_end_to_end(tmp_path: Path) -> None:
    """A 2,000-level argument fails in the caller; a 2,000-level result fails its execution with
    the same error, and the server keeps working; a value within the limit round-trips."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["memapp"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        with Client(server.url, server.token) as client:
            with pytest.raises(ValueTooDeep):
                client.submit("memapp", "deep_result", nested_dict(2000))
            message = client.submit("memapp", "deep_result", 2000).result(timeout=60)
            assert message.startswith("coflux.serialization.ValueTooDeep: value is nested more than"), message
            assert client.submit("memapp", "deep_result", MAX_DEPTH - 10).result(timeout=60) == "ok"
            # The server answers raw over-deep frames with a clear bad_request, and lives on.
            for levels in (700, 2000):
                deep = "[" * levels + "]" * levels
                replies = asyncio.run(raw_frames(server, [
                    '{"id": 1, "op": "wait", "params": {"execution": "R:1:1", "x": ' + deep + '}}',
                    '{"id": 2, "op": "ping", "params": {}}']))
                error = json.dumps(replies[0])
                assert "bad_request" in error and ("deep" in error or "levels" in error), replies
                assert replies[1] == {"re": 2, "ok": {"pong": True}}
            assert client.connection.call("ping", {}, timeout=10) == {"pong": True}
    finally:
        worker.stop()
        server.stop()


async def raw_frames(server: Server, frames: list[str]) -> list[dict]:
    """Send raw text frames on a fresh WebSocket; one reply (or push) per frame."""
    request = tornado.httpclient.HTTPRequest(server.url.replace("http", "ws", 1) + "api/ws",
                                             headers={"Authorization": f"token {server.token}"})
    ws = await tornado.websocket.websocket_connect(request)
    replies = []
    try:
        for frame in frames:
            await ws.write_message(frame)
            replies.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    finally:
        ws.close()
    return replies


# ------------------------------------------------------------------ the server's resident memory


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_large_results_do_not_stay_resident(tmp_path: Path) -> None:
    """Ten results of 10 MB (each waited on by its workflow) leave the server's RSS where one did."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["memapp"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        with Client(server.url, server.token) as client:
            assert client.submit("memapp", "many_big", 1, 10).result(timeout=120) == 10 * MB  # warm-up
            before = rss_mib(server.proc.pid)
            assert client.submit("memapp", "many_big", 10, 10).result(timeout=120) == 100 * MB
            after = rss_mib(server.proc.pid)
        print(f"\nserver RSS around ten 10 MB results: {before:.0f} MiB -> {after:.0f} MiB")
        assert after - before < 40, f"server RSS grew from {before:.0f} MiB to {after:.0f} MiB"
    finally:
        worker.stop()
        server.stop()

"""Seeded fuzz of the WebSocket protocol and the HTTP API against ONE real `coflux server` (with a
real `myapp.workflows` worker), on 127.0.0.1 only.

Each Hypothesis example is a batch: garbled and well-formed frames with every operation of
server/protocol.md (valid-looking and broken parameters) over one WebSocket, or requests to every
HTTP route with random methods, queries, headers and bodies. After each batch the server must
still complete a normal run through the real Client, and its log must hold no traceback.
Per request: no HTTP 5xx, no reply that carries internal exception text, 401/403 exactly where
the credentials are missing/wrong, and a WebSocket that still answers a ping.

The generation is derandomized (the same cases every run; only the ids of real runs and sessions
they pick from differ). COFLUX_FUZZ_SCALE multiplies the number of examples (default 1: 150
batches, about 3700 frames and requests, 30-60 s on 2 cores); COFLUX_FUZZ_BUDGET (default 80 s)
bounds the time: examples past it are skipped (the summary line printed at the end, visible with
-s, gives the counts). COFLUX_FUZZ_SHRINK=1 shrinks a failure to a minimal batch (slow, off in CI).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from harness import TOKEN, Server, Worker
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from coflux.client import Client

SCALE = float(os.environ.get("COFLUX_FUZZ_SCALE", "1"))
BUDGET = float(os.environ.get("COFLUX_FUZZ_BUDGET", "80")) * max(1.0, SCALE)
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if os.environ.get("COFLUX_FUZZ_SHRINK") else [])
FUZZ_SETTINGS = dict(derandomize=True, database=None, deadline=None, phases=PHASES, print_blob=False,
                     suppress_health_check=list(HealthCheck))
# What no reply may contain: text of an internal exception.
LEAKS = ("Traceback", "sqlite3", "psycopg", "[SQL:", "sqlalchemy", "File \"/")
# Workflows of myapp that finish quickly whatever the arguments (the fuzz submits them for real).
FAST = ["process", "identity", "values", "nested", "greetings"]
STATS = {"ws_frames": 0, "http_requests": 0, "batches": 0, "normal_runs": 0}


# ------------------------------------------------------------------ the server


class Fuzzed:
    def __init__(self, server: Server, worker: Worker, client: Client) -> None:
        self.server = server
        self.worker = worker
        self.client = client
        self.deadline = time.monotonic() + BUDGET
        self.run_ids: list[str] = []
        self.session_ids: list[str] = []
        self.checked_log = 0

    def over_budget(self) -> bool:
        """The fuzz keeps to its time budget (COFLUX_FUZZ_BUDGET seconds for the module):
        examples past it are skipped, and the summary line says how many cases ran."""
        return time.monotonic() > self.deadline

    def normal_run(self) -> None:
        """A normal run completes, and the server log has no traceback since the last check."""
        run = self.client.submit("myapp.workflows", "process", "fuzz")
        try:
            value = run.result(timeout=60)
        except Exception as exc:
            raise AssertionError(f"a normal run failed after a fuzz batch: {exc!r}\nworkers: "
                                 f"{self.server.workers()}\nworker log:\n{self.worker.output()[-3000:]}"
                                 f"\nserver log:\n{self.server.output()[-3000:]}") from exc
        assert value == "fuzz has 4 characters"
        self.run_ids.append(run.id)
        del self.run_ids[:-20]
        STATS["normal_runs"] += 1
        log = self.server.output()
        new, self.checked_log = log[self.checked_log:], len(log)
        for bad in ("Traceback", "exception was never retrieved", "Uncaught exception"):
            assert bad not in new, f"server log has {bad!r}:\n{new[-6000:]}"
        assert self.server.proc.poll() is None  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    base = tmp_path_factory.mktemp("fuzz")
    server = Server(base / "data", extra=["--reconnect-grace", "1"]).start()
    worker = Worker(server, ["myapp.workflows"], concurrency=4, log=base / "worker.log").start()
    started = time.monotonic()
    try:
        worker.wait_registered()
        with Client(server.url, TOKEN) as client:
            target = Fuzzed(server, worker, client)
            target.session_ids = [w["id"] for w in server.workers()]
            target.normal_run()
            yield target
    finally:
        worker.stop()
        server.stop()
        print(f"\nfuzz: {STATS['ws_frames']} WebSocket frames and {STATS['http_requests']} HTTP requests "
              f"in {STATS['batches']} batches, {STATS['normal_runs']} normal runs, "
              f"{time.monotonic() - started:.1f} s")


CURRENT: dict[str, Fuzzed] = {}


def pick(pool: str, index: int, fallback: str) -> str:
    """A value known to the running server (a real run id, a real session), by index."""
    target = CURRENT.get("fuzzed")
    values = getattr(target, pool, []) if target is not None else []
    return values[index % len(values)] if values else fallback


# ------------------------------------------------------------------ strategies

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)
request_ids = st.one_of(st.integers(0, 10 ** 6), st.integers(), st.text(max_size=6), json_values)

run_id_strs = st.one_of(st.integers(0, 50).map(lambda i: pick("run_ids", i, "Rbcdfgh")),
                        st.sampled_from(["Rbcdfgh", "R", "Rzz9", "", "R" + "x" * 300]),
                        st.text(max_size=10).map(lambda s: "R" + s))
execution_id_strs = st.one_of(
    st.tuples(st.integers(0, 50), st.sampled_from([":1:1", ":2:1", ":3:1", ":1:2", ":0:0", ":-1:1",
                                                   ":99999999999999999999:1", ":1", ""]))
    .map(lambda t: pick("run_ids", t[0], "Rbcdfgh") + t[1]),
    st.sampled_from(["R:1:1", "Rabc:1:1:1", ":1:1", "x"]), st.text(max_size=12))
step_id_strs = st.one_of(st.integers(0, 50).map(lambda i: pick("run_ids", i, "Rbcdfgh") + ":1"),
                         st.text(max_size=12))
run_ids = st.one_of(run_id_strs, json_values)
execution_ids = st.one_of(execution_id_strs, json_values)
step_ids = st.one_of(step_id_strs, json_values)
session_ids = st.one_of(st.integers(0, 5).map(lambda i: pick("session_ids", i, "S1")), st.text(max_size=10),
                        json_values)
modules = st.one_of(st.sampled_from(["myapp.workflows", "fuzz.mod", "other.workflows", "", "a" * 400]),
                    st.text(max_size=12), json_values)
fuzz_modules = st.one_of(st.sampled_from(["fuzz.mod", "fuzz.other", ""]), st.text(max_size=8).map(lambda s: "fz." + s))
targets = st.one_of(st.sampled_from(FAST + ["fetch_data", "nope", "", "x" * 400]), st.text(max_size=12), json_values)
workspaces = st.one_of(st.sampled_from(["default", "fz1", "fz2", "", "w" * 300]), st.text(max_size=8), json_values)
mutable_workspaces = st.one_of(st.sampled_from(["fz1", "fz2", "fz3", "", "w" * 300]),
                               st.text(max_size=8).map(lambda s: "fz-" + s), json_values)
numbers = st.one_of(st.integers(-10, 10), st.floats(-1, 5), st.sampled_from(
    [10 ** 30, -(10 ** 30), 1e308, -1e308, 1e-9, 0, 0.0, "abc", "nan", "inf", True, None, [], {}]))
small_delays = st.one_of(st.floats(0, 0.3), st.sampled_from([-1, "x", None, 1e308, [], True]))
wire_values = st.one_of(json_values.map(lambda v: {"v": v}), json_values,
                        st.fixed_dictionaries({"v": json_values, "refs": st.one_of(
                            st.lists(st.fixed_dictionaries({"type": st.just("execution"), "id": execution_ids,
                                                            "module": modules, "target": targets}), max_size=2),
                            json_values)}))
def _bounded(option: str, value: Any) -> bool:
    if option == "retries":
        return value is None or value is False or value == "abc" or (type(value) is int and value in (0, 1))
    if option == "recurrent":
        return value is None or value is False or (type(value) is int and value == 0)
    return True


# Options for submits to the real worker: every known option, valid, edge and wrong values, but
# no unbounded retries or recurrences of real work (the worker would be busy for the rest of the run).
real_options = st.dictionaries(st.sampled_from(
    ["cache", "memo", "delay", "timeout", "defer", "wait", "requires", "retries", "recurrent", "unknown"]),
    st.one_of(st.booleans(), small_delays, st.sampled_from([0, 1, "abc", {"max_age": "x"}, {"gpu": "A100"},
                                                             {"limit": 1, "backoff": [0, 0]}, [1]])),
    max_size=3).map(lambda o: {k: v for k, v in o.items() if _bounded(k, v)})
any_options = st.one_of(real_options, st.dictionaries(st.text(max_size=8), json_values, max_size=3), json_values)
target_specs = st.dictionaries(fuzz_modules, st.dictionaries(st.text(max_size=6), st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["workflow", "task", "x"]),
                           "parameters": st.one_of(st.lists(st.fixed_dictionaries(
                               {"name": st.text(max_size=4), "default": json_values}), max_size=2), json_values),
                           "options": any_options, "instruction": st.one_of(st.none(), st.text(max_size=10))}),
    json_values), max_size=2), max_size=2)


def real_submit(call: str) -> st.SearchStrategy[dict]:
    """Submit/call of a fast myapp workflow with arguments that fit it (or not quite)."""
    args = st.one_of(st.lists(st.text(max_size=8).map(lambda s: {"v": s}), min_size=1, max_size=1),
                     st.lists(st.integers(-5, 5).map(lambda i: {"v": i}), min_size=1, max_size=3),
                     st.lists(wire_values, max_size=3))
    return st.fixed_dictionaries({"module": st.just("myapp.workflows"), "target": st.sampled_from(FAST),
                                  "args": args, "type": st.sampled_from(["workflow", "task", "x"])},
                                 optional={"kwargs": st.dictionaries(st.text(max_size=5), wire_values, max_size=2),
                                           "workspace": workspaces, "options": real_options,
                                           "idempotency_key": st.one_of(st.text(max_size=6), json_values),
                                           "parent": execution_ids, "group": json_values, "key": json_values})


def params_for(op: str) -> st.SearchStrategy[Any]:
    optional = {
        "register": {"session": session_ids, "kind": st.sampled_from(["headless", "kernel", "x"]),
                     "name": st.text(max_size=10), "workspace": workspaces, "targets": target_specs,
                     "concurrency": numbers, "prefetch": numbers, "provides": json_values, "accepts": json_values,
                     "running": st.one_of(st.lists(execution_ids, max_size=3), json_values),
                     "kernel_id": st.one_of(st.text(max_size=8), json_values), "secret": st.text(max_size=8)},
        "declare": {"targets": target_specs},
        "result": {"execution": execution_ids, "kind": st.sampled_from(
            ["value", "error", "crashed", "timeout", "suspended", "x"]), "value": wire_values,
            "error": st.one_of(st.fixed_dictionaries({"type": st.text(max_size=8), "message": st.text(max_size=8),
                                                      "frames": json_values, "retryable": json_values}),
                               json_values),
            "execute_after": numbers, "after": json_values, "started_at": numbers},
        "release": {"executions": st.one_of(st.lists(execution_ids, max_size=3), json_values)},
        "submit": {"parent": execution_ids, "module": fuzz_modules, "target": targets, "type": json_values,
                   "args": st.one_of(st.lists(wire_values, max_size=3), json_values), "kwargs": json_values,
                   "options": any_options, "group": json_values, "key": json_values, "workspace": workspaces,
                   "idempotency_key": json_values},
        "wait": {"execution": execution_ids, "from": execution_ids,
                 "timeout": st.one_of(st.floats(0, 0.2), st.sampled_from([0, None, -1, "x", 1e308, "nan"]))},
        "depend": {"from": execution_ids, "execution": execution_ids},
        "group": {"execution": execution_ids, "group": json_values, "name": json_values},
        "cancel": {"execution": execution_ids},
        "get_run": {"run": run_ids},
        "subscribe": {"topic": st.one_of(st.sampled_from(["runs", "workers", "run:"]),
                                         run_ids.map(lambda r: f"run:{r}"), json_values)},
        "unsubscribe": {"topic": st.one_of(st.sampled_from(["runs", "workers"]), json_values)},
        "rerun": {"step": step_ids, "workspace": workspaces},
        "workspaces": {},
        "create_workspace": {"name": mutable_workspaces, "base": workspaces},
        "update_workspace": {"name": mutable_workspaces, "new_name": mutable_workspaces, "base": workspaces,
                             "remove_base": json_values},
        "ping": {},
    }
    if op == "call" or op == "submit":
        broken = st.fixed_dictionaries({}, optional=optional["submit"])
        return st.one_of(real_submit(op), broken, json_values)
    fields = optional.get(op, {"x": json_values})
    return st.one_of(st.fixed_dictionaries({}, optional=fields), st.fixed_dictionaries(fields), json_values)


OPS = ["register", "declare", "result", "release", "submit", "call", "wait", "depend", "group", "cancel",
       "get_run", "subscribe", "unsubscribe", "rerun", "workspaces", "create_workspace", "update_workspace",
       "ping", "nosuchop"]


@st.composite
def messages(draw: st.DrawFn) -> Any:
    op = draw(st.sampled_from(OPS))
    message: dict[str, Any] = {"op": draw(st.one_of(st.just(op), st.just(op), json_values))}
    if draw(st.booleans()) or op in ("ping",):
        message["id"] = draw(request_ids)
    message["params"] = draw(params_for(op))
    if draw(st.integers(0, 9)) == 0:
        message["resent"] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:  # not an object with an 'op'
        return draw(st.one_of(json_values, st.just({"id": 1}), st.just({"op": 5, "id": 2})))
    return message


@st.composite
def frames(draw: st.DrawFn) -> tuple[str, str | bytes]:
    """(kind, frame): kind 'text' or 'binary'."""
    kind = draw(st.integers(0, 19))
    if kind < 11:
        return "text", json.dumps(draw(messages()))
    if kind < 13:
        return "text", json.dumps(draw(st.lists(messages(), max_size=5)))
    if kind == 13:  # cut short
        text = json.dumps(draw(messages()))
        return "text", text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == 14:
        return "text", draw(st.text(max_size=60))
    if kind == 15:
        return "binary", draw(st.binary(max_size=60))
    if kind == 16:  # deep nesting around a request
        depth = draw(st.sampled_from([10, 200, 499, 501, 800, 990, 3000, 100000]))
        return "text", '{"op": "ping", "id": 7, "params": {"x": ' + "[" * depth + "]" * depth + "}}"
    if kind == 17:  # non-standard JSON numbers, duplicate keys, long strings
        return "text", draw(st.sampled_from([
            '{"op": "wait", "id": 1, "params": {"execution": "Rab:1:1", "timeout": NaN}}',
            '{"op": "wait", "id": 1, "params": {"execution": "Rab:1:1", "timeout": 1e999}}',
            '{"op": "ping", "op": "nosuch", "id": 3}',
            '{"op": "submit", "id": 4, "params": {"module": "' + "m" * 100000 + '", "target": "t"}}',
            '{"op": "get_run", "id": 5, "params": {"run": "R\\u0000\\ud800"}}',
            '{"op": "register", "id": 6, "params": {"concurrency": 1e999, "targets": {}}}',
        ]))
    if kind == 18:
        return "binary", json.dumps(draw(messages())).encode("utf-16")
    return "text", json.dumps(draw(messages())).replace('"', "'", 1)


# ------------------------------------------------------------------ WebSocket batches


def _leaks(text: str) -> list[str]:
    return [leak for leak in LEAKS if leak in text]


async def _ws_batch(server: Server, auth: str, batch: list[tuple[str, str | bytes]]) -> None:
    headers = {"Authorization": f"token {TOKEN}"} if auth == "token" else \
        {"Authorization": "token wrong"} if auth == "wrong" else {}
    request = HTTPRequest(server.url.replace("http://", "ws://") + "api/ws", headers=headers,
                          connect_timeout=10, request_timeout=10)
    try:
        ws = await websocket_connect(request)
    except HTTPClientError as exc:
        assert auth != "token", f"refused with the token: {exc}"
        assert exc.code == (403 if auth == "wrong" else 401), exc.code
        return
    assert auth == "token", "a WebSocket without a valid token was accepted"
    try:
        for kind, frame in batch:
            await ws.write_message(frame, binary=kind == "binary")
            STATS["ws_frames"] += 1
        await ws.write_message(json.dumps({"op": "ping", "id": "fuzz-pong"}))
        deadline = time.monotonic() + 20
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the server stopped answering on this WebSocket"
            message = await asyncio.wait_for(ws.read_message(), remaining)
            assert message is not None, f"the server closed the WebSocket ({ws.close_code} {ws.close_reason})"
            assert not _leaks(message), f"a reply carries internal text: {message[:2000]}"
            parsed = json.loads(message)
            if any(isinstance(m, dict) and m.get("re") == "fuzz-pong" for m in
                   (parsed if isinstance(parsed, list) else [parsed])):
                return
    finally:
        ws.close()


@settings(max_examples=int(75 * SCALE), **FUZZ_SETTINGS)
@given(auth=st.sampled_from(["token"] * 18 + ["wrong", "none"]), batch=st.lists(frames(), min_size=20, max_size=50))
def test_fuzz_websocket(fuzzed, auth, batch):
    CURRENT["fuzzed"] = fuzzed
    if fuzzed.over_budget():
        return
    batch_started = time.monotonic()
    asyncio.run(asyncio.wait_for(_ws_batch(fuzzed.server, auth, batch), 60))
    STATS["batches"] += 1
    sent = time.monotonic()
    fuzzed.normal_run()
    if os.environ.get("FUZZ_DEBUG"):
        print("BATCH", len(batch), round(sent - batch_started, 2), round(time.monotonic() - sent, 2))


# ------------------------------------------------------------------ HTTP batches

PATHS = st.one_of(
    st.sampled_from(["api/health", "api/runs", "api/workflows", "api/workspaces", "api/workers", "api/ws", "",
                     "api/", "api/runs/", "api//runs", "api/runs/Rbcd/result/", "nosuch", "api/../api/health"]),
    run_id_strs.map(lambda r: f"api/runs/{r}"),
    run_id_strs.map(lambda r: f"api/runs/{r}/result"),
    execution_id_strs.map(lambda e: f"api/executions/{e}/cancel"),
    step_id_strs.map(lambda s: f"api/steps/{s}/rerun"),
    st.text(max_size=20).map(lambda s: "api/" + s),
    st.one_of(st.text("0123456789abcdefA/.%", min_size=60, max_size=66), st.text(max_size=10)).map(
        lambda k: "api/blobs/" + k),  # blob keys: 64 lowercase hex or a 400 (tests/test_blobs.py)
    run_id_strs.map(lambda r: f"api/runs/{r}/assets"),
    st.sampled_from(["api/assets/Abcd", "api/assets/", "api/assets/A..", "api/blobs/" + "0" * 64]),
)
QUERY_VALUES = st.one_of(st.sampled_from(["abc", "", "-1", "0", "1", "1e9", "nan", "inf", "-inf", "0.1", "1e400",
                                          "99999999999999999999", "%ff", "%00", "a%20b", "default", "fz1",
                                          "myapp.workflows", "process", "\u00e9"]),
                         st.floats(0, 0.3).map(str), st.text(max_size=8))
QUERIES = st.lists(st.tuples(st.sampled_from(["limit", "timeout", "module", "target", "workspace", "token", "x",
                                              "limit", "timeout"]), QUERY_VALUES), max_size=4)
BODIES = st.one_of(
    st.none(),
    st.builds(lambda b: json.dumps(b).encode(), st.fixed_dictionaries(
        {"module": st.just("myapp.workflows"), "target": st.sampled_from(FAST),
         "args": st.one_of(st.lists(st.text(max_size=6), max_size=1), st.lists(st.integers(-3, 3), max_size=3))},
        optional={"kwargs": st.dictionaries(st.text(max_size=4), json_values, max_size=2), "wire": st.booleans(),
                  "workspace": workspaces, "options": real_options, "idempotency_key": json_values})),
    st.builds(lambda b: json.dumps(b).encode(), st.fixed_dictionaries(
        {}, optional={"module": modules, "target": targets, "args": json_values, "kwargs": json_values,
                      "wire": json_values, "workspace": workspaces, "options": any_options,
                      "name": mutable_workspaces, "base": workspaces, "idempotency_key": json_values})),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
    st.sampled_from([b"[" * 100000, b'{"a":' * 600 + b"1" + b"}" * 600, b"{", b"\xff\xfe", b"null", b"NaN",
                     b'{"module": "myapp.workflows", "target": "identity", "args": [1e999]}',
                     b'{"module": "myapp.workflows", "target": "identity", "args": [NaN]}']),
)
METHODS = st.sampled_from(["GET"] * 5 + ["POST"] * 5 + ["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW"])
HEADERS = st.dictionaries(st.sampled_from(["Content-Type", "X-Forwarded-For", "X-Real-Ip", "Origin", "Cookie",
                                           "Accept", "Connection", "Upgrade", "Sec-WebSocket-Version",
                                           "Sec-WebSocket-Key", "Expect"]),
                          st.sampled_from(["application/json", "text/plain", "x", "", "websocket", "Upgrade",
                                           "13", "999", "dGhlIHNhbXBsZSBub25jZQ==", "100-continue",
                                           "http://evil.example", "1.2.3.4", "_xsrf=1"]), max_size=3)
AUTHS = st.sampled_from([f"token {TOKEN}"] * 6 + [f"Bearer {TOKEN}", f"TOKEN  {TOKEN} ", "token wrong", "token ",
                                                  "Basic dXNlcjpwYXNz", "token \u00e9", None, "query", "query-wrong"])


@st.composite
def http_requests(draw: st.DrawFn) -> dict:
    if draw(st.integers(0, 24)) == 0:  # not HTTP at all, or a malformed request line / header
        garbage = draw(st.one_of(st.binary(max_size=60), st.sampled_from([
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1", b"GET  HTTP/1.1", b"GET /api/health HTTP/9.9",
            b"GET /api/health HTTP/1.1\r\n: no-name", b"\x16\x03\x01\x02\x00\x01\x00",  # TLS hello
            b"GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz"] + [
            b"POST /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: token " + TOKEN.encode() + b"\r\n" + extra
            for extra in (b"Content-Length: \xb2", b"Content-Length: 1, 2", b"Content-Length: 99999999999",
                          b"Content-Length: +5", b"Transfer-Encoding: chunked\r\n\r\nffffffffffff",
                          b"Transfer-Encoding: chunked\r\n\r\n3\r\n{}x\r\n0")])))
        return {"raw": garbage}
    query = draw(QUERIES)
    auth = draw(AUTHS)
    if auth == "query":
        query.append(("token", TOKEN))
    elif auth == "query-wrong":
        query.append(("token", "wrong"))
    return {"method": draw(METHODS), "path": draw(PATHS), "query": query, "auth": auth,
            "headers": draw(HEADERS), "body": draw(BODIES)}


def _send_raw(server: Server, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        try:
            sock.sendall(data + b"\r\n\r\n")
            reply = sock.recv(65536)
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            return  # the server may wait for more, or close: both fine
        if reply.startswith(b"HTTP/1.1 "):
            assert int(reply.split()[1]) < 500, reply[:500]


def _credentials(case: dict) -> str:
    auth, query = case["auth"], case["query"]
    tokens = [urllib.parse.unquote(v, errors="replace") for k, v in query if k == "token"]  # as the server reads them
    if auth and auth.split(" ", 1)[0].lower() in ("token", "bearer"):
        given = auth.split(" ", 1)[1].strip() if " " in auth else ""
    else:
        given = re.sub(r"[\x00-\x08\x0e-\x1f]", " ", tokens[-1]).strip() if tokens else ""  # as tornado does
    return "none" if not given else "ok" if given == TOKEN else "wrong"


def _send_http(server: Server, case: dict) -> None:
    if "raw" in case:
        _send_raw(server, case["raw"])
        return
    quote = urllib.parse.quote
    query = "&".join(f"{quote(k)}={quote(v, safe='%')}" for k, v in case["query"])
    path = "/" + quote(case["path"], safe="/:%") + ("?" + query if query else "")
    headers = dict(case["headers"])
    if case["auth"] and not case["auth"].startswith("query"):
        headers["Authorization"] = case["auth"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        body = case["body"]
        if case["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and body is not None and len(body) > 1000:
            body = body[:1000]
        headers.pop("Expect", None)  # http.client does not do 100-continue
        try:
            connection.request(case["method"], path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            # Only a body the server refuses to read (no valid token, or too big for a request
            # that is not routed) may end in a reset: it answers and closes without reading it.
            assert body and (_credentials(case) != "ok" or len(body) > 64 * 1024), case
            return
    finally:
        connection.close()
    text = data.decode("utf-8", "replace")
    assert response.status < 500, (case, response.status, text[:2000])
    assert not _leaks(text), (case, text[:2000])
    credentials = _credentials(case)
    if response.status == 401:
        assert credentials == "none", (case, text)
        assert "Token" in response.headers.get("WWW-Authenticate", ""), (case, dict(response.headers))
    if response.status == 403:
        cross_origin = case["path"] == "api/ws" and "Origin" in headers  # tornado's same-origin check
        assert credentials == "wrong" or cross_origin, (case, text)
    if response.status < 300 and case["path"].startswith("api/") and case["method"] != "HEAD":
        assert credentials == "ok", (case, response.status, text[:500])  # nothing is served without the token
        if case["path"] != "api/ws":
            json.loads(data)


@settings(max_examples=int(75 * SCALE), **FUZZ_SETTINGS)
@given(batch=st.lists(http_requests(), min_size=15, max_size=40))
def test_fuzz_http(fuzzed, batch):
    CURRENT["fuzzed"] = fuzzed
    if fuzzed.over_budget():
        return
    batch_started = time.monotonic()
    for case in batch:
        started = time.monotonic()
        _send_http(fuzzed.server, case)
        if os.environ.get("FUZZ_DEBUG") and time.monotonic() - started > 0.5:
            print("SLOW", round(time.monotonic() - started, 2), repr(case)[:300])
        STATS["http_requests"] += 1
    STATS["batches"] += 1
    sent = time.monotonic()
    fuzzed.normal_run()
    if os.environ.get("FUZZ_DEBUG"):
        print("BATCH", len(batch), round(sent - batch_started, 2), round(time.monotonic() - sent, 2))

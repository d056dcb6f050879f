"""HTTP hygiene of the headless server, through real `coflux server` processes: bodies are read
only after authentication, header and idle timeouts, no query-string token in the log, 400 for
bad query values and over-deep JSON, no internal exception text in replies, 401 (with a
`WWW-Authenticate` hint) for a missing token and 403 for a wrong one."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import TOKEN, Server, Worker, wait_until
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from coflux.client import Client
from coflux.connection import RemoteError

MIB = 1024 * 1024


class VerboseServer(Server):
    """`coflux -v server ...`: the log gets every access line (INFO), as a debugging user sees it."""

    def args(self) -> list[str]:
        args = super().args()
        at = args.index("server")
        return args[:at] + ["-v"] + args[at:]


@pytest.fixture(scope="module")
def hserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("hygiene")
    srv = VerboseServer(base / "data").start()
    worker = Worker(srv, ["myapp.workflows"], concurrency=2, log=base / "worker.log").start()
    try:
        worker.wait_registered()
        yield srv
    finally:
        worker.stop()
        srv.stop()


# ------------------------------------------------------------------ helpers


def request(server: Server, path: str, *, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, token: str | None = TOKEN) -> tuple[int, Any, bytes]:
    """(status, headers, body) of one HTTP request; `token=None` sends no credentials."""
    req = urllib.request.Request(server.url + path, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"token {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def raw_connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_status(sock: socket.socket, timeout: float = 30.0) -> int | None:
    """The status code of the response on `sock`, or None if it closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading and discarding), or None if it did not."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def memory_kb(server: Server, field: str) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()  # type: ignore[union-attr]
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def big_post(server: Server, path: str, size: int, auth: str | None) -> int | None:
    """POST `size` bytes to `path` while reading the answer; the body is sent from a thread,
    as far as the server lets it."""
    sock = raw_connect(server)
    head = (f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n" + (f"Authorization: {auth}\r\n" if auth else "") + "\r\n")
    sock.sendall(head.encode())

    def send_body() -> None:
        chunk = b" " * MIB
        try:
            for _ in range(size // MIB):
                sock.sendall(chunk)
            sock.sendall(b" " * (size % MIB))
        except OSError:
            pass  # the server closed the connection: what it should do

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    status = read_status(sock)
    sender.join(60)
    sock.close()
    return status


def still_runs(server: Server) -> None:
    status, _, body = request(server, "api/runs", method="POST",
                              body=json.dumps({"module": "myapp.workflows", "target": "process",
                                               "args": ["ok"]}).encode())
    assert status == 201, body
    run_id = json.loads(body)["run"]
    status, _, body = request(server, f"api/runs/{run_id}/result?timeout=60")
    assert status == 200 and json.loads(body)["value"]["v"] == "ok has 2 characters", body


# ------------------------------------------------------------------ bodies after auth


def test_unauthenticated_bodies_are_never_read(hserver):
    """8 concurrent 31 MiB POSTs without a valid token: refused after the headers, and the
    server does not grow (tornado used to buffer each body before authentication ran)."""
    before = memory_kb(hserver, "VmHWM")
    size = 31 * MIB
    cases = [("api/runs", None), ("api/runs", "token wrong"), ("api/workspaces", None),
             ("api/workspaces", "token wrong"), ("api/executions/Rabc:1:1/cancel", None),
             ("api/steps/Rabc:1/rerun", "token wrong"), ("api/nosuchroute", None), ("api/ws", None)]
    statuses: list[int | None] = [None] * len(cases)
    barrier = threading.Barrier(len(cases))

    def post(i: int) -> None:
        barrier.wait()
        statuses[i] = big_post(hserver, cases[i][0], size, cases[i][1])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(cases))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    grown_mb = (memory_kb(hserver, "VmHWM") - before) / 1024
    assert grown_mb < 40, f"the server grew by {grown_mb:.0f} MB reading unauthenticated bodies"
    assert statuses[:6] == [401, 403, 401, 403, 401, 403], statuses
    assert statuses[6] in (400, 404) and statuses[7] in (400, 401), statuses  # too big before routing
    assert elapsed < 30
    still_runs(hserver)


def test_authenticated_bodies_up_to_the_limit(hserver):
    # A 2 MiB body is streamed, parsed and answered (unknown workflow: the body was read).
    body = json.dumps({"module": "nosuch", "target": "wf", "args": ["x" * (2 * MIB)]}).encode()
    status, _, reply = request(hserver, "api/runs", method="POST", body=body)
    assert status == 404 and b"unknown workflow nosuch/wf" in reply, reply[:300]
    # A declared body over 32 MiB is refused before it is read.
    assert big_post(hserver, "api/runs", 33 * MIB, f"token {TOKEN}") == 413
    still_runs(hserver)


# ------------------------------------------------------------------ 401 / 403


def _ws_status(server: Server, headers: dict[str, str], query: str = "") -> int:
    async def connect() -> int:
        url = server.url.replace("http://", "ws://") + "api/ws" + query
        try:
            ws = await websocket_connect(HTTPRequest(url, headers=headers))
        except HTTPClientError as exc:
            return exc.code
        ws.close()
        return 101

    return asyncio.run(connect())


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "api/health"), ("GET", "api/runs"), ("POST", "api/runs"), ("GET", "api/runs/Rabc"),
    ("GET", "api/runs/Rabc/result"), ("POST", "api/executions/Rabc:1:1/cancel"),
    ("POST", "api/steps/Rabc:1/rerun"), ("GET", "api/workflows"), ("GET", "api/workspaces"),
    ("POST", "api/workspaces"), ("GET", "api/workers"),
])
def test_missing_token_is_401_with_a_hint_and_wrong_token_is_403(hserver, method, path):
    body = b"{}" if method == "POST" else None
    status, headers, reply = request(hserver, path, method=method, body=body, token=None)
    assert status == 401, reply
    assert "Token" in headers.get("WWW-Authenticate", ""), headers
    assert json.loads(reply)["error"]["code"] == "unauthorized"
    for bad in ({"Authorization": "token wrong"}, {"Authorization": "Bearer wrong"},
                {"Authorization": "token w\u00e9"}):  # a non-ASCII token used to be a 500
        status, headers, reply = request(hserver, path, method=method, body=body, token=None, headers=bad)
        assert status == 403, (bad, reply)
        assert "WWW-Authenticate" not in headers
    status, _, _ = request(hserver, path + "?token=wrong", method=method, body=body, token=None)
    assert status == 403


def test_websocket_missing_token_401_wrong_token_403(hserver):
    assert _ws_status(hserver, {}) == 401
    assert _ws_status(hserver, {"Authorization": "token wrong"}) == 403
    assert _ws_status(hserver, {}, "?token=wrong") == 403
    assert _ws_status(hserver, {"Authorization": f"token {TOKEN}"}) == 101
    assert _ws_status(hserver, {}, f"?token={TOKEN}") == 101


# ------------------------------------------------------------------ no token in the log


def test_query_string_token_never_appears_in_the_log(hserver):
    offset = len(hserver.output())
    secret_wrong = "wrong-secret-5d1e"
    for path in [f"api/health?token={TOKEN}", f"api/runs?limit=abc&token={TOKEN}",
                 f"api/runs/Rnope?token={TOKEN}", f"api/health?token={secret_wrong}",
                 f"api/health?%74oken={TOKEN}", f"api/nosuchroute?token={TOKEN}",
                 f"api/runs/Rnope/result?timeout=abc&token={TOKEN}&x=1"]:
        request(hserver, path, token=None)
    request(hserver, f"api/runs?token={TOKEN}", method="POST", body=b"[" * 100000, token=None)
    assert _ws_status(hserver, {}, f"?token={TOKEN}") == 101
    log = wait_until(lambda: (text := hserver.output()[offset:]).count("tornado.access") >= 8 and text, 10,
                     message="the access log lines")
    assert "token=[redacted]" in log  # the lines are there, the values are not
    assert TOKEN not in log and secret_wrong not in log, log


# ------------------------------------------------------------------ 400, never 500


@pytest.mark.parametrize(("path", "name"), [
    ("api/runs?limit=abc", "limit"), ("api/runs?limit=-1", "limit"), ("api/runs?limit=0", "limit"),
    ("api/runs?limit=1e9", "limit"), ("api/runs?limit=99999999999999999999", "limit"),
    ("api/runs/Rabc/result?timeout=abc", "timeout"), ("api/runs/Rabc/result?timeout=nan", "timeout"),
    ("api/runs/Rabc/result?timeout=inf", "timeout"), ("api/runs/Rabc/result?timeout=-1", "timeout"),
    ("api/runs/Rabc/result?timeout=1e400", "timeout"),
])
def test_bad_query_values_are_400(hserver, path, name):
    status, _, reply = request(hserver, path)
    assert status == 400, reply
    error = json.loads(reply)["error"]
    assert error["code"] == "bad_request" and f"'{name}' must be" in error["message"], error


def test_over_deep_json_is_400(hserver):
    offset = len(hserver.output())
    deep_args = json.dumps({"module": "myapp.workflows", "target": "process", "args": ["["]})
    deep_args = deep_args.replace('"["', "[" * 800 + "]" * 800)
    for body in [b"[" * 100000, b'{"a": ' * 5000 + b"1" + b"}" * 5000, deep_args.encode()]:
        for path in ["api/runs", "api/workspaces", "api/steps/Rabc:1/rerun"]:
            status, _, reply = request(hserver, path, method="POST", body=body)
            assert status == 400, (path, reply[:300])
            assert "nests deeper than" in json.loads(reply)["error"]["message"]
    assert "Traceback" not in hserver.output()[offset:]
    still_runs(hserver)


def test_over_deep_frames_on_the_websocket(hserver):
    frame = json.dumps({"op": "submit", "id": 1, "params": {
        "module": "myapp.workflows", "target": "process", "args": ["["]}}).replace('"["', "[" * 800 + "]" * 800)

    async def exchange() -> list[dict]:
        ws = await websocket_connect(HTTPRequest(hserver.url.replace("http://", "ws://") + "api/ws",
                                                 headers={"Authorization": f"token {TOKEN}"}))
        await ws.write_message(frame)
        first = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        await ws.write_message('{"op": "ping", "id": 2}')
        second = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        ws.close()
        return [first, second]

    offset = len(hserver.output())
    first, second = asyncio.run(exchange())
    assert first["err"]["code"] == "bad_request" and "nests deeper than" in first["err"]["message"], first
    assert second == {"re": 2, "ok": {"pong": True}}
    assert "Traceback" not in hserver.output()[offset:]


# ------------------------------------------------------------------ no internal text in replies


def test_replies_never_carry_internal_exception_text(hserver):
    """A database failure of one request (a trigger makes sqlite refuse its step) is logged with
    its details and answered with a generic internal error, over HTTP and the WebSocket."""
    detail = "secret-internal-detail-91c"
    db = sqlite3.connect(hserver.data_dir / "coflux.db", timeout=30)  # type: ignore[operator]
    db.execute(f"CREATE TRIGGER hygiene_boom BEFORE INSERT ON steps WHEN NEW.arguments LIKE '%boom-7f3a%' "
               f"BEGIN SELECT RAISE(ABORT, '{detail}'); END")
    db.commit()
    offset = len(hserver.output())
    try:
        status, _, reply = request(hserver, "api/runs", method="POST", body=json.dumps(
            {"module": "myapp.workflows", "target": "process", "args": ["boom-7f3a"]}).encode())
        assert status == 500, reply
        error = json.loads(reply)["error"]
        assert error["code"] == "internal", error
        with Client(hserver.url, TOKEN) as client:
            with pytest.raises(RemoteError) as info:
                client.submit("myapp.workflows", "process", "boom-7f3a")
        for text in (reply.decode(), str(info.value)):
            for leak in (detail, "sqlite", "SQL", "IntegrityError", "INSERT"):
                assert leak not in text, text
        assert detail in wait_until(lambda: detail in hserver.output()[offset:] and hserver.output()[offset:], 10,
                                    message="the detail in the server log")
    finally:
        db.execute("DROP TRIGGER hygiene_boom")
        db.commit()
        db.close()
    still_runs(hserver)


# ------------------------------------------------------------------ timeouts


def test_header_and_idle_timeouts(tmp_path):
    srv = Server(tmp_path / "data", extra=["--idle-timeout", "1"]).start()
    try:
        silent = raw_connect(srv)  # connects, sends nothing
        partial = raw_connect(srv)  # sends headers, never ends them
        partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow = raw_connect(srv)  # a byte every 0.2 s (slowloris)
        slow.sendall(b"GET /api/health HTTP/1.1\r\n")

        def trickle() -> None:
            try:
                for _ in range(40):
                    slow.sendall(b"X")
                    time.sleep(0.2)
            except OSError:
                pass

        threading.Thread(target=trickle, daemon=True).start()
        kept = raw_connect(srv)  # one full request, then idle on a kept-alive connection
        kept.sendall(f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n\r\n".encode())
        assert read_status(kept) == 200
        for sock in (silent, partial, slow, kept):
            assert closed_within(sock, 6) is not None, "the server kept a connection that sent no request"
            sock.close()

        # A WebSocket is not an idle HTTP connection: it stays open (pings keep it alive).
        async def websocket_outlives_the_timeout() -> dict:
            ws = await websocket_connect(HTTPRequest(srv.url.replace("http://", "ws://") + "api/ws",
                                                     headers={"Authorization": f"token {TOKEN}"}))
            await asyncio.sleep(2.5)
            await ws.write_message('{"op": "ping", "id": 1}')
            reply = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            ws.close()
            return reply

        assert asyncio.run(websocket_outlives_the_timeout()) == {"re": 1, "ok": {"pong": True}}
        assert srv.get("api/health")["ok"] is True
    finally:
        srv.stop()


def test_whoami_names_the_super_token_and_refuses_strangers(hserver):
    status, _, body = request(hserver, "api/whoami")
    me = json.loads(body)
    assert status == 200 and me["kind"] == "super" and me["name"] == "super token"
    assert me["workspaces"] is None and me["may_ship_code"] is True
    assert request(hserver, "api/whoami", token=None)[0] == 401
    assert request(hserver, "api/whoami", token="wrong")[0] == 403

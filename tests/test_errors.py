"""Bad input gets a clear error and loses nothing: unknown targets, wrong arguments, non-JSON
arguments, garbage on the worker WebSocket, a server that is not running, a wrong token."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from harness import TOKEN, Server, Worker, base_env, free_port, inspect_run, run_cli, wait_until
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

import coflux as cf
from coflux.client import Client
from coflux.connection import RemoteError, ServerUnavailable


def runs_of(server, target: str) -> list[str]:
    return [r["id"] for r in server.get(f"api/runs?module=myapp.workflows&target={target}&limit=1000")["runs"]]


def assert_clean_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture()
def baseline(cli, server):
    """A finished run, and the runs of `process` before the test: neither may change."""
    result = cli("submit", "myapp.workflows/process", '"baseline"')
    assert result.returncode == 0, result.stderr
    run_id = result.stderr.split()[1]
    before = inspect_run(cli, run_id)
    runs = runs_of(server, "process")
    yield run_id
    assert inspect_run(cli, run_id) == before
    assert runs_of(server, "process") == runs  # no run was created by the bad input
    result = cli("submit", "myapp.workflows/process", '"after"')  # and the server still works
    assert result.returncode == 0 and json.loads(result.stdout) == "after has 5 characters"


# ------------------------------------------------------------------ targets and arguments


@pytest.mark.parametrize(("target", "message"), [
    ("nosuch.module/process", "unknown workflow nosuch.module/process"),
    ("myapp.workflows/nope", "unknown workflow myapp.workflows/nope"),
    ("myapp.workflows/fetch_data", "unknown workflow myapp.workflows/fetch_data"),  # a task, not a workflow
])
def test_unknown_module_or_target(cli, baseline, target, message):
    result = cli("submit", target, '"x"')
    assert_clean_failure(result, message, "registered workflows:", "myapp.workflows/process")


def test_target_without_module(cli, baseline):
    assert_clean_failure(cli("submit", "process", '"x"'), "target must be MODULE/WORKFLOW")


@pytest.mark.parametrize(("args", "message"), [
    ([], "process() missing required argument 'url'"),
    (['"a"', '"b"'], "process() takes 1 argument (url) but 2 were given"),
])
def test_wrong_number_of_arguments(cli, baseline, args, message):
    assert_clean_failure(cli("submit", "myapp.workflows/process", *args), message)


@pytest.mark.parametrize("bad", ["hello", "{'a': 1}", "[1,", "NaNx", ""])
def test_arguments_must_be_json(cli, baseline, bad):
    result = cli("submit", "myapp.workflows/process", bad)
    assert_clean_failure(result, "argument 1 is not JSON", "hint: strings need JSON quotes")


def test_client_wrong_argument_names(client, baseline):
    with pytest.raises(RemoteError, match=r"process\(\) got an unexpected keyword argument 'uri'"):
        client.submit("myapp.workflows", "process", uri="x")
    with pytest.raises(RemoteError, match=r"process\(\) got multiple values for argument 'url'"):
        client.submit("myapp.workflows", "process", "x", url="y")
    with pytest.raises(RemoteError, match=r"process\(\) missing required argument 'url'"):
        client.submit("myapp.workflows", "process")
    with pytest.raises(RemoteError, match="unknown workflow myapp.workflows/nope"):
        client.submit("myapp.workflows", "nope")


def test_inspect_unknown_run(cli):
    assert_clean_failure(cli("runs", "inspect", "Rnothere"), "no run 'Rnothere'")
    assert_clean_failure(cli("runs", "result", "Rnothere"), "Rnothere")


# ------------------------------------------------------------------ garbage on the WebSocket


GARBAGE = [
    # (frame, request id or None, what the reply must mention)
    ("this is not json", None, "not JSON"),
    (b"\x00\xff\xfe binary", None, ""),
    ("[1, 2]", None, "'op'"),
    ('{"op": 5}', None, "'op'"),
    ('"just a string"', None, "'op'"),
    ('{"op": "no_such_op", "id": 1}', 1, "unknown operation"),
    ('{"op": "submit", "id": 2, "params": "x"}', 2, "params"),
    ('{"op": "submit", "id": 3, "params": {}}', 3, ""),
    ('{"op": "submit", "id": 4, "params": {"module": "myapp.workflows", "target": "process", "args": 7}}',
     4, "args"),
    ('{"op": "result", "id": 5, "params": {"execution": "Rnope:1:1", "kind": "value"}}', 5, "Rnope:1:1"),
    ('{"op": "result", "id": 6, "params": {"execution": "Rnope:1:1", "kind": "banana"}}', 6, "kind"),
    ('{"op": "register", "id": 7, "params": {"targets": "bad"}}', 7, "targets"),
    ('{"op": "register", "id": 8, "params": {"targets": {"m": {"t": {"type": "bogus"}}}}}', 8, "bogus"),
    ('{"op": "register", "id": 9, "params": {"targets": {"m": 5}}}', 9, ""),
    ('{"op": "wait", "id": 10, "params": {"execution": "Rnope:1:1"}}', 10, "Rnope:1:1"),
    ('{"op": "wait", "id": 11, "params": {}}', 11, ""),
    ('{"op": "get_run", "id": 12, "params": {"run": "Rnope"}}', 12, "Rnope"),
    ('{"op": "declare", "id": 13, "params": {"targets": {}}}', 13, "registered"),
    ('[{"op": "ping", "id": 14}, "junk", {"op": "nope", "id": 15}]', 14, ""),
]


async def _send_garbage(url: str, token: str) -> tuple[list[dict], dict]:
    ws = await websocket_connect(HTTPRequest(url.replace("http://", "ws://") + "api/ws",
                                             headers={"Authorization": f"token {token}"}))
    replies: list[dict] = []

    async def read_until(request_id: int) -> None:
        while True:
            message = await asyncio.wait_for(ws.read_message(), 10)
            assert message is not None, "the server closed the connection"
            frame = json.loads(message)
            for item in frame if isinstance(frame, list) else [frame]:
                replies.append(item)
                if item.get("re") == request_id:
                    return

    for i, (frame, _, _) in enumerate(GARBAGE):
        await ws.write_message(frame, binary=isinstance(frame, bytes))
        await ws.write_message(json.dumps({"op": "ping", "id": 1000 + i}))
        await read_until(1000 + i)  # still answering after each piece of garbage
    pong = replies[-1]
    ws.close()
    return replies, pong


def test_garbage_frames_on_the_websocket(server, workers, baseline):
    replies, pong = asyncio.run(_send_garbage(server.url, server.token))
    assert pong == {"re": 1000 + len(GARBAGE) - 1, "ok": {"pong": True}}
    errors = [r for r in replies if "err" in r]
    by_id = {r["re"]: r for r in replies if "re" in r}
    anonymous = [r for r in errors if r.get("op") == "error"]
    assert anonymous, "frames without a request id are answered with an error push"
    assert any("not JSON" in r["err"]["message"] for r in anonymous)
    for frame, request_id, fragment in GARBAGE:
        if request_id is None or request_id == 14:
            continue
        reply = by_id.get(request_id)
        assert reply is not None and "err" in reply, f"no error reply to {frame!r}: {reply}"
        assert fragment in reply["err"]["message"], (frame, reply)
    assert by_id[14] == {"re": 14, "ok": {"pong": True}}
    assert "err" in by_id[15]
    assert server.proc.poll() is None


async def _exchange(url: str, token: str, frames: list[str]) -> list[dict | None]:
    """Send each frame and collect the next message after it (None: the server closed)."""
    ws = await websocket_connect(HTTPRequest(url.replace("http://", "ws://") + "api/ws",
                                             headers={"Authorization": f"token {token}"}))
    out: list[dict | None] = []
    for frame in frames:
        await ws.write_message(frame)
        message = await asyncio.wait_for(ws.read_message(), 10)
        out.append(json.loads(message) if message is not None else None)
        if message is None:
            break
    ws.close()
    return out


def test_malformed_register_is_a_bad_request(server, workers):
    offset = len(server.output())
    (reply,) = asyncio.run(_exchange(server.url, server.token, [
        '{"op": "register", "id": 1, "params": {"targets": {"m": 5}}}']))
    assert reply["err"]["code"] == "bad_request"
    assert "Traceback" not in server.output()[offset:]


def test_deeply_nested_frame(server, workers):
    replies = asyncio.run(_exchange(server.url, server.token, ["[" * 100000, '{"op": "ping", "id": 1}']))
    assert replies[0] is not None and replies[0]["err"]["code"] == "bad_request"
    assert replies[1] == {"re": 1, "ok": {"pong": True}}


def test_submit_with_values_that_are_not_wire_values(server, workers):
    frames = [
        '{"op": "submit", "id": 1, "params": {"module": "myapp.workflows", "target": "process", "args": [5]}}',
        '{"op": "submit", "id": 2, "params": {"module": "myapp.workflows", "target": "process", '
        '"args": [], "kwargs": {"url": "x"}}}',
    ]
    replies = asyncio.run(_exchange(server.url, server.token, frames))
    for reply in replies:
        assert reply is not None and "err" in reply, reply
        assert reply["err"]["code"] == "bad_request"


def test_websocket_without_token_is_refused(server):
    async def connect() -> None:
        await websocket_connect(server.url.replace("http://", "ws://") + "api/ws")

    with pytest.raises(HTTPClientError) as info:
        asyncio.run(connect())
    assert info.value.code == 401  # no token: 401 (a wrong one: 403)


# ------------------------------------------------------------------ no server, wrong token


@pytest.mark.parametrize("command", [
    ["submit", "myapp.workflows/process", '"x"'],
    ["submit", "--no-wait", "myapp.workflows/process", '"x"'],
    ["runs", "result", "Rabc"],
    ["runs", "inspect", "Rabc"],
])
def test_server_not_running(command):
    url = f"http://127.0.0.1:{free_port()}/"
    result = run_cli(*command, "--server", url, "--token", TOKEN, env=base_env(), timeout=60)
    assert_clean_failure(result, f"cannot connect to the coflux server at {url}", "Is `coflux server` running")


def test_client_server_not_running():
    with pytest.raises(ServerUnavailable, match="cannot connect to the coflux server"):
        Client(f"http://127.0.0.1:{free_port()}/", TOKEN)


@pytest.mark.parametrize("command", [
    ["submit", "myapp.workflows/process", '"x"'],
    ["runs", "inspect", "Rabc"],
])
def test_wrong_token_cli(server, command):
    result = run_cli(*command, "--server", server.url, "--token", "wrong", env=base_env(), timeout=60)
    assert_clean_failure(result, "refused the token", "COFLUX_TOKEN")


def test_missing_token_cli(server):
    result = run_cli("runs", "inspect", "Rabc", "--server", server.url, env=base_env(), timeout=60)
    assert_clean_failure(result, "refused the token")


def test_wrong_token_client(server):
    with pytest.raises(ServerUnavailable, match="refused the token"):
        Client(server.url, "wrong")


def test_wrong_token_worker(server):
    result = run_cli("worker", "--server", server.url, "--token", "wrong", "other.workflows", env=base_env(),
                     timeout=60)
    assert result.returncode != 0
    assert "refused the token" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_waits_for_a_server_that_is_not_running_yet(tmp_path):
    port = free_port()
    srv = Server(tmp_path / "data", port=port)
    srv.url = f"http://127.0.0.1:{port}/"
    worker = Worker(srv, ["other.workflows"], concurrency=1, log=tmp_path / "worker.log").start()
    try:
        # It keeps trying (no crash, no traceback) ...
        with pytest.raises(AssertionError):
            wait_until(lambda: worker.proc.poll() is not None, 1.5, message="the worker to exit")
        assert "Traceback" not in worker.output()
        # ... and connects once the server is up.
        srv.start()
        worker.wait_registered(30)
        result = run_cli("submit", "other.workflows/other_flow", "2", env=srv.env())
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == 6
    finally:
        worker.stop()
        srv.stop()


def test_python_client_sees_remote_errors_as_exceptions(client):
    run = client.submit("myapp.workflows", "divide_flow", 1, 0)
    with pytest.raises(ZeroDivisionError) as info:
        run.result(timeout=60)
    assert isinstance(info.value, cf.ExecutionError)
    assert info.value.error_type == "builtins.ZeroDivisionError"
    assert "return divide(a, b)" in info.value.remote_traceback


def test_oversized_argument_is_refused_not_retried_forever(client, monkeypatch):
    from coflux import serialization
    from coflux.connection import MessageTooLarge

    # Large values travel as blobs (tests/test_blobs.py); without that, the frame limit holds.
    monkeypatch.setattr(serialization, "BLOB_THRESHOLD", 2**40)
    with pytest.raises(MessageTooLarge, match="limit of one message"):
        client.submit("myapp.workflows", "big", "x" * (40 * 2**20))
    monkeypatch.undo()
    # The connection is still usable afterwards.
    assert client.submit("myapp.workflows", "big", 3).result(timeout=30) == "xxx"


def test_oversized_result_fails_the_run_instead_of_hanging(client):
    # 40 MiB is past the frame limit: it travels as a blob (a value past COFLUX_MAX_VALUE_BYTES
    # fails with ValueTooLarge instead, tests/test_blobs.py).
    run = client.submit("myapp.workflows", "big", 40 * 2**20)
    assert run.result(timeout=60) == "x" * (40 * 2**20)


def test_worker_refused_at_registration_exits_with_the_reason(server):
    # A registration the server refuses (here: a workspace name over 200 characters) is final:
    # the worker says why and exits, rather than reconnecting forever.
    from harness import APPS_DIR

    result = subprocess.run(
        [sys.executable, "-m", "coflux", "worker", "--server", server.url, "--token", server.token,
         "--workspace", "v" * 300, "myapp.workflows"],
        cwd=APPS_DIR, env=base_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "refused this connection: a workspace name must be 1 to 200 characters" in result.stderr
    assert "Traceback" not in result.stderr

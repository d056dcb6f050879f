"""Typed arguments: each workflow parameter's JSON Schema (from its hints, via pydantic) is checked
by the server before a run exists, at every entry point; and values in the formats users expect
(pydantic models as JSON, DataFrames as Parquet) between real workers."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, inspect_run, run_cli

from coflux.client import Client
from coflux.errors import RemoteError

MODULE = "typedapp"


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Worker]]:
    base = tmp_path_factory.mktemp("typed")
    server = Server(base / "data").start()
    worker = Worker(server, [MODULE], concurrency=4, log=base / "worker.log").start()
    try:
        worker.wait_registered()
        yield server, worker
    finally:
        worker.stop()
        server.stop()


@pytest.fixture(scope="module")
def client(typed) -> Iterator[Client]:
    server, _ = typed
    with Client(server.url, server.token) as c:
        yield c


def cli(server: Server, *args: str):
    return run_cli(*args, env=server.env(), timeout=120)


def run_count(server: Server) -> int:
    db = next(Path(server.data_dir).glob("*.db")) if server.data_dir else None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def post_submit(server: Server, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{server.url}api/runs", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_manifest_carries_each_parameters_schema(typed):
    server, _ = typed
    workflows = {w["name"]: w for w in server.get("api/workflows")["workflows"] if w["module"] == MODULE}
    params = {p["name"]: p for p in workflows["weighted"]["parameters"]}
    assert params["values"]["annotation"] == "list[float]"
    assert params["values"]["schema"] == {"type": "array", "items": {"type": "number"}}
    assert params["color"]["schema"]["enum"] == ["red", "green", "blue"]
    assert params["mode"]["schema"]["enum"] == ["fast", "slow"]
    assert {"type": "string", "format": "date"} in params["day"]["schema"]["anyOf"]
    settings = workflows["configure"]["parameters"][0]["schema"]
    assert settings["required"] == ["name", "points"] and "Point" in settings["$defs"]
    assert "schema" not in workflows["untyped"]["parameters"][0]


def test_cli_submit_refuses_a_bad_argument_naming_it_and_records_nothing(typed):
    server, _ = typed
    before = run_count(server)
    result = cli(server, "submit", f"{MODULE}/squares", '"abc"')
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "argument 'n'" in lines[0] and "'abc' is not of type 'integer'" in lines[0] and "(expected int)" in lines[0]
    result = cli(server, "submit", f"{MODULE}/weighted", "[0.1, \"x\"]")
    assert result.returncode == 2
    assert "argument 'values[1]'" in result.stderr and "'x' is not of type 'number'" in result.stderr
    assert run_count(server) == before
    good = cli(server, "submit", f"{MODULE}/squares", "4")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == [0, 1, 4, 9]


def test_client_submit_raises_a_clear_error(client):
    with pytest.raises(RemoteError, match=r"argument 'weights\.a'.*'no' is not of type 'integer'"):
        client.submit(MODULE, "weighted", [1.0], weights={"a": "no"})
    with pytest.raises(RemoteError, match=r"argument 'color'.*'purple' is not one of"):
        client.submit(MODULE, "weighted", [1.0], color="purple")
    with pytest.raises(RemoteError, match=r"argument 'day'.*"):
        client.submit(MODULE, "weighted", [1.0], day="2024-13-45")
    with pytest.raises(RemoteError, match=r"argument 'settings.points\[0\]'.*'x' is a required property"):
        client.submit(MODULE, "configure", {"name": "n", "points": [{"y": 1}]})


def test_json_arguments_arrive_as_the_hinted_types(client):
    import datetime as dt

    out = client.submit(MODULE, "weighted", [1, 2.5], {"a": 1}, "green", "slow", dt.date(2024, 1, 2)).result(60)
    assert out == {"total": 3.5, "weights": {"a": 1}, "color": "green", "color_type": "Color", "mode": "slow",
                   "day": "2024-01-02", "day_type": "date"}
    out = client.submit(MODULE, "weighted", [1], day="2024-03-04").result(60)
    assert (out["day"], out["day_type"]) == ("2024-03-04", "date")
    out = client.submit(MODULE, "configure", {"name": "n", "points": [{"x": 1}, {"x": 2, "y": 3}]}).result(60)
    assert out == {"type": "Settings", "name": "n", "points": ["Point", "Point"], "scale": 1.0, "label": "x"}


def test_http_submit_gets_400_with_the_message_and_records_nothing(typed):
    server, _ = typed
    before = run_count(server)
    status, body = post_submit(server, {"module": MODULE, "target": "weighted", "args": [], "kwargs": {
        "values": [0.1, "x"]}})
    assert status == 400, body
    assert "argument 'values[1]'" in json.dumps(body)
    status, body = post_submit(server, {"module": MODULE, "target": "configure", "args": [],
                                        "kwargs": {"settings": {"name": "n", "points": [], "scale": "big"}}})
    assert status == 400 and "settings.scale" in json.dumps(body)
    assert run_count(server) == before


def test_a_target_without_hints_accepts_any_json(client, typed):
    server, _ = typed
    assert client.submit(MODULE, "untyped", {"any": ["thing", 1]}, other="x").result(60) == [{"any": ["thing", 1]}, "x"]
    result = cli(server, "submit", f"{MODULE}/untyped", '"abc"')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["abc", None]


def test_models_and_frames_travel_without_pickle_and_arrive_as_their_types(client, typed):
    server, _ = typed
    run = client.submit(MODULE, "typed_values", 4)
    assert run.result(60) == {"settings": "Settings", "points": ["Point"] * 4, "start": "date",
                              "frame": "DataFrame", "rows": 4, "square_sum": 14, "columns": ["i", "square", "label"]}
    inspected = inspect_run(lambda *a: cli(server, *a), run.id)
    text = json.dumps(inspected)
    assert "pickle" not in text
    steps = {s["target"]: s for s in inspected["steps"]}
    made = steps["make_settings"]["executions"][-1]["result"]["value"]["v"]
    assert made["$"] == "pydantic" and made["class"] == "typedapp.Settings"
    assert made["v"] == {"name": "s4", "points": [{"x": float(i), "y": 1.0} for i in range(4)],
                         "scale": 1.0, "start": "2024-05-06"}
    frame = steps["make_frame"]["executions"][-1]["result"]["value"]["v"]
    assert (frame["$"], frame["format"], frame["rows"], frame["columns"]) == \
        ("dataframe", "parquet", 4, ["i", "square", "label"])
    plain = cli(server, "runs", "inspect", "--no-wait", run.id)
    assert plain.returncode == 0, plain.stderr
    assert 'value {"name": "s4", "points": [{"x": 0.0, "y": 1.0}' in plain.stdout, plain.stdout
    assert '"<DataFrame 4 rows x 3 columns: i, square, label>"' in plain.stdout, plain.stdout


def test_target_run_from_python_is_checked_too(typed):
    """`flow.run(...)` outside a worker (a notebook cell, a script) submits through the session's
    client: the same check, the same message, raised in the caller."""
    import subprocess
    import sys

    from harness import APPS_DIR

    server, _ = typed
    script = (
        "import typedapp\n"
        "from coflux.errors import RemoteError\n"
        "try:\n"
        "    typedapp.weighted.run([0.5, 'x'])\n"
        "except RemoteError as exc:\n"
        "    print('refused:', exc)\n"
        "print('ran:', typedapp.weighted.run([0.5, 1], color=typedapp.Color.blue).result(60))\n"
    )
    before = run_count(server)
    result = subprocess.run([sys.executable, "-c", script], env=server.env(), cwd=APPS_DIR, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "refused: typedapp/weighted(): argument 'values[1]': 'x' is not of type 'number'" in result.stdout
    assert "'color': 'blue', 'color_type': 'Color'" in result.stdout, result.stdout
    assert run_count(server) == before + 1


def test_schemas_survive_a_server_restart_without_workers(tmp_path):
    """The schemas are stored with the registered workflow: after a restart, with no worker
    connected, a bad argument is still refused (and a good one accepted, to wait for a worker)."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server, [MODULE], concurrency=1, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
    finally:
        worker.stop()
        server.stop()
    server = Server(tmp_path / "data").start()
    try:
        with Client(server.url, server.token) as c:
            with pytest.raises(RemoteError, match=r"argument 'n': 'abc' is not of type 'integer'"):
                c.submit(MODULE, "squares", "abc")
            assert run_count(server) == 0
            c.submit(MODULE, "squares", 3)
            assert run_count(server) == 1
    finally:
        server.stop()

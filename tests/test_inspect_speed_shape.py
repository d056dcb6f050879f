"""`GET api/runs/<id>` keeps its JSON shape and `coflux runs inspect` its output while both got
faster (stored JSON spliced into the reply, `?view=inspect` for the text, a lighter CLI start):
the HTTP snapshot equals the WebSocket one (which decodes every value) for runs with retries,
caught errors, memo and cache hits, groups, child runs and attempts still running, and the text
printed from the smaller view equals the text printed from the whole snapshot."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli, wait_until

from coflux.protocol import RunOutcome

RUN_KEYS = ["id", "workspace", "module", "target", "parent", "created_at", "requires", "memo", "by", "seq",
            *typing.get_type_hints(RunOutcome), "steps", "children", "dependencies", "groups", "child_runs", "inputs"]
STEP_KEYS = ["id", "number", "module", "target", "type", "parent", "created_at", "arguments", "options",
             "cache_key", "memo_key", "stale", "executions"]
EXECUTION_KEYS = ["id", "attempt", "cause", "created_at", "execute_after", "assigned_at", "started_at", "session",
                  "worker", "state", "by", "result", "code_hash", "reused_from"]
RESULT_KEYS = ["kind", "value", "error", "successor", "at", "by"]


@pytest.fixture(scope="module")
def runs(server: Server, workers: dict[str, Worker], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Finished runs of every kind of step and edge, and one held open at a gate."""
    from coflux.client import Client

    logs = tmp_path_factory.mktemp("inspect-shape")
    worker = Worker(server, ["pgapp"], concurrency=2, log=logs / "pgapp.log").start()
    worker.wait_registered()
    gate = logs / "gate"
    client = Client(server.url, server.token)
    try:
        everything = client.submit("pgapp", "everything", str(logs / "marks.log"))  # retries, memo, cache, error
        grouped = client.submit("myapp.workflows", "grouped", 4)
        parent = client.submit("myapp.workflows", "parent", 3)  # a child run
        held = client.submit("myapp.workflows", "gated", str(gate), 1)
        for run in (everything, grouped, parent):
            run.result(timeout=120)
        wait_until(lambda: Path(str(gate) + ".started").exists(), 60, message="the gate to start")
        yield {"everything": everything.id, "grouped": grouped.id, "parent": parent.id, "held": held.id,
               "client": client}
        gate.touch()
        held.result(timeout=60)
    finally:
        gate.touch()
        client.close()
        worker.stop()


def _without_seq(snapshot: dict) -> dict:
    return {**snapshot, "seq": 0}  # the feed position moves with other tests' runs


def _get(server: Server, run_id: str, **query: str) -> dict:
    return server.get(f"api/runs/{run_id}" + (f"?{urllib.parse.urlencode(query)}" if query else ""))


@pytest.mark.parametrize("name", ["everything", "grouped", "parent", "held"])
def test_http_snapshot_is_the_websocket_snapshot(server: Server, runs: dict, name: str) -> None:
    snapshot = runs["client"].get_run(runs[name])  # decoded and encoded the ordinary way
    plain = _get(server, runs[name])
    if name == "held":  # still moving: compare what cannot have changed in between
        assert [s["id"] for s in plain["steps"]][:len(snapshot["steps"])] == [s["id"] for s in snapshot["steps"]]
    else:
        assert _without_seq(plain) == _without_seq(snapshot)
    assert list(plain) == RUN_KEYS
    for step in plain["steps"]:
        # `parameters`: the arguments' names, where a worker has declared the target
        assert [k for k in step if k != "parameters"] == STEP_KEYS
        for execution in step["executions"]:
            assert [k for k in execution if k != "waiting"] == EXECUTION_KEYS
            if execution["result"] is not None:
                assert list(execution["result"]) == RESULT_KEYS


def test_snapshots_carry_what_the_runs_did(server: Server, runs: dict) -> None:
    everything = _get(server, runs["everything"])
    flaky = [s for s in everything["steps"] if s["target"] == "flaky"][0]
    assert [e["attempt"] for e in flaky["executions"]] == [1, 2, 3]
    assert [e["result"]["kind"] for e in flaky["executions"]] == ["error", "error", "value"]
    assert flaky["executions"][0]["result"]["error"]["type"].endswith("ValueError")
    assert flaky["executions"][2]["result"]["value"] == {"v": 3}
    assert flaky["arguments"] == [{"v": flaky["arguments"][0]["v"]}] and flaky["options"] is not None
    assert any(c["memo"] for c in everything["children"])
    grouped = _get(server, runs["grouped"])
    assert sorted({g["name"] for g in grouped["groups"]}) == ["evens", "odds"]
    assert _get(server, runs["parent"])["child_runs"]


def test_inspect_view_is_the_snapshot_with_fewer_keys(server: Server, runs: dict) -> None:
    for name in ("everything", "grouped", "parent"):
        full, view = _get(server, runs[name]), _get(server, runs[name], view="inspect")
        expected = {k: v for k, v in full.items() if k not in ("dependencies", "groups")}
        expected["children"] = [c for c in full["children"] if c["memo"]]
        expected["steps"] = [
            {"id": s["id"], "module": s["module"], "target": s["target"], "type": s["type"], "parent": s["parent"],
             "options": s["options"], "stale": s["stale"],
             **({"parameters": s["parameters"]} if "parameters" in s else {}),
             "executions": [{k: e[k] for k in ("id", "attempt", "created_at", "assigned_at", "started_at", "session",
                                               "worker", "by", "result")} for e in s["executions"]]}
            for s in full["steps"]]
        assert _without_seq(view) == _without_seq(expected)
        assert _without_seq(_get(server, runs[name], view="full")) == _without_seq(full)


def test_unknown_view_is_refused(server: Server, runs: dict) -> None:
    with pytest.raises(urllib.error.HTTPError) as failure:
        _get(server, runs["grouped"], view="everything")
    assert failure.value.code == 400
    assert "'view' must be one of full, inspect" in json.loads(failure.value.read())["error"]["message"]


def _render(snapshots: list[dict]) -> str:
    """What `coflux runs inspect` prints for these snapshots (whatever view they are of)."""
    from coflux import cli

    class Api:
        def __enter__(self) -> Api:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def get(self, path: str, **query: object) -> dict:
            return next(s for s in snapshots if path == f"runs/{s['id']}")

    args = cli.build_parser().parse_args(["runs", "inspect", "--no-wait", *[s["id"] for s in snapshots]])
    original = cli.make_api
    cli.make_api = lambda _args: Api()  # type: ignore[assignment]
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.cmd_runs_inspect(args) == 0
    finally:
        cli.make_api = original  # type: ignore[assignment]
    return out.getvalue()


def test_inspect_text_is_the_same_from_either_view(server: Server, runs: dict) -> None:
    ids = [runs[name] for name in ("everything", "grouped", "parent")]
    result = run_cli("runs", "inspect", "--no-wait", *ids, env=server.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == _render([_get(server, run_id) for run_id in ids])
    assert result.stdout == _render([_get(server, run_id, view="inspect") for run_id in ids])
    text = result.stdout
    assert "attempt 3  value 3" in text and "attempt 1  error builtins.ValueError: attempt 1" in text
    assert "error builtins.ZeroDivisionError: division by zero" in text
    assert "  memoised: " in text and "  child run " in text
    assert text.count(f"run {ids[0]}  pgapp/everything  workspace default  created ") == 1


def test_inspect_text_of_a_run_in_progress(server: Server, runs: dict) -> None:
    held = runs["held"]
    def steady(text: str) -> str:  # how long it has run so far differs by when each was printed
        return re.sub(r"running for [0-9.]+ s", "running for N s", text)

    for _ in range(3):  # the same text from either view (unless the run moved in between)
        result = run_cli("runs", "inspect", "--no-wait", held, env=server.env())
        assert result.returncode == 0, result.stderr
        full = _render([_get(server, held)])
        if steady(result.stdout) == steady(full):
            break
        time.sleep(0.2)
    assert steady(result.stdout) == steady(full)
    assert "running since " in result.stdout and " on " in result.stdout


def test_inspect_json_output_is_the_whole_snapshot(server: Server, runs: dict) -> None:
    result = run_cli("runs", "inspect", "--no-wait", runs["everything"], "-o", "json", env=server.env())
    assert result.returncode == 0, result.stderr
    assert _without_seq(json.loads(result.stdout)) == _without_seq(_get(server, runs["everything"]))
    assert result.stdout == json.dumps(json.loads(result.stdout), indent=2, default=str) + "\n"


# ------------------------------------------------------------------ the pieces, without a server


def test_encode_json_splices_stored_texts() -> None:
    from coflux_server.http_base import encode_json
    from coflux_server.store.queries import RawJSON

    stored = {"v": "caf\u00e9 \"q\" \\ \u0000", "n": [1, 2.5, None, True, {"deep": [float("nan")]}]}
    payload = {"a": RawJSON(json.dumps(stored)), "b": [RawJSON("null"), RawJSON("5"), "text \u2603", 7],
               "c": None}
    text = encode_json(payload)
    decoded = json.loads(text)
    assert decoded["a"]["v"] == stored["v"] and decoded["a"]["n"][:4] == stored["n"][:4]
    assert decoded["b"] == [None, 5, "text \u2603", 7] and decoded["c"] is None
    assert encode_json({"x": 1}) == '{"x":1}'
    with pytest.raises(TypeError):
        encode_json({"x": object()})


def test_encode_json_falls_back_when_a_string_looks_like_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from coflux_server.http_base import encode_json
    from coflux_server.store.queries import RawJSON

    monkeypatch.setattr(os, "urandom", lambda n: b"\x01" * n)
    marker = "01" * 6
    for lookalike in [f"\u0000{marker}0\u0000", f"x\"\u0000{marker}1\u0000", f"\u0000{marker}",
                      f"inside \u0000{marker}0\u0000"]:
        payload = {"s": lookalike, "raw": RawJSON('{"v": [1, "two"]}'), "t": [RawJSON("3")]}
        assert json.loads(encode_json(payload)) == {"s": lookalike, "raw": {"v": [1, "two"]}, "t": [3]}


def test_cli_url_and_query_helpers_agree_with_urllib() -> None:
    from coflux.cli_http import _encode_query, _quote_path, _split_url, normalise_url

    for url in ["127.0.0.1:7777", "http://Localhost:80/base", "https://example.com", "http://h:99999/",
                "http://[::1]:7777/", "http://user:pw@h:1/", "http://h/a b/", "HTTP://h/", "http://h/%20x/"]:
        url = normalise_url(url)
        try:
            parts = urllib.parse.urlsplit(url)
            expected: object = (parts.scheme, parts.hostname, parts.port, parts.path, parts.netloc)
        except ValueError as exc:
            expected = repr(exc)
        try:
            got: object = _split_url(url)
        except ValueError as exc:
            got = repr(exc)
        assert got == expected, url
    for path in ["runs/R1", "runs/R1/logs", "a b", "x:y", "\u00fc", "~_.-/"]:
        assert _quote_path(path) == urllib.parse.quote(path, safe="/:")  # execution ids keep their colons
    for query in [{}, {"limit": 5000, "after": 0}, {"step": "R1:2"}, {"search": "two words"}, {"x": True, "y": 1.5},
                  {"k": ""}, {"k": b"x"}, {"k": "\u00fc"}, {"view": "inspect"}]:
        assert _encode_query(query) == urllib.parse.urlencode(query)


def test_parser_adds_a_commands_options_when_it_is_parsed() -> None:
    import argparse

    from coflux import cli

    translate = argparse._  # type: ignore[attr-defined]
    parser = cli.build_parser()
    assert argparse._ is translate  # type: ignore[attr-defined]  # restored after the build
    args = parser.parse_args(["runs", "inspect", "R1", "R2", "-o", "json", "--server", "h:1"])
    assert (args.runs, args.output, args.server, args.fn) == (["R1", "R2"], "json", "h:1", cli.cmd_runs_inspect)
    args = parser.parse_args(["logs", "R1", "--level", "info", "-f"])
    assert (args.run, args.level, args.follow, args.step) == ("R1", "info", True, None)
    help_text = subprocess.run([sys.executable, "-m", "coflux", "runs", "inspect", "--help"], capture_output=True,
                               text=True, env={"COLUMNS": "100", "PATH": ""}, cwd=Path(cli.__file__).parent.parent)
    assert "usage: coflux runs inspect [-h] [--server SERVER] [--token TOKEN]" in help_text.stdout
    assert "-o {text,json}, --output {text,json}" in help_text.stdout

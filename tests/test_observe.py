"""What runs report besides results: structured logs, captured output, metrics, the run list,
through a real worker, the CLI and the Python client; `coflux logs -f` across a server kill -9."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli, wait_until

WORKSPACE = "observe"


@pytest.fixture(scope="module")
def observe_worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path_factory.mktemp("observe") / "w.log",
                    extra=["--workspace", WORKSPACE]).start()
    worker.wait_registered()
    yield worker
    worker.stop()


def cli(server: Server, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    result = run_cli(*args, "--workspace", WORKSPACE, env=server.env(), timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def submit(server: Server, workflow: str, *args: object) -> tuple[object, str]:
    result = cli(server, "submit", f"observing/{workflow}", *[json.dumps(a) for a in args])
    return json.loads(result.stdout), result.stderr.split("run ", 1)[1].split()[0]


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_logs_and_captured_output(server: Server, observe_worker: Worker) -> None:
    value, run_id = submit(server, "observed", 2, 3)
    assert value == 1
    lines = json_lines(cli(server, "logs", run_id, "-o", "json"))
    by_execution: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        by_execution.setdefault(line["execution_id"], []).append((line["level"], line["message"]))
    assert by_execution[f"{run_id}:1:1"] == [("info", "fanning out 2 tasks")]
    for i, step in ((0, 2), (1, 3)):
        assert by_execution[f"{run_id}:{step}:1"] == [
            ("info", f"task {i} starting with 3 lines"),
            *[("debug", f"line {k} of task {i}") for k in range(3)],
            ("stdout", f"printed by task {i}"),
            ("stdout", "partial line joined"),  # one line, though written in two parts
            ("stderr", f"stderr of task {i}"),
            ("warning", f"no placeholder here extra={i} other=[1, 2]"),  # values beside the message
        ]
    first = next(line for line in lines if line["message"] == "task 0 starting with 3 lines")
    assert first["template"] == "task {i} starting with {lines} lines"  # stored apart from the values
    assert first["values"] == {"i": 0, "lines": 3}

    text = cli(server, "logs", run_id).stdout
    assert f"{run_id}:2:1" in text and "WARN  no placeholder here extra=0" in text

    warnings = json_lines(cli(server, "logs", run_id, "--level", "warning", "-o", "json"))
    assert {line["level"] for line in warnings} == {"warning", "stderr"}
    step = json_lines(cli(server, "logs", run_id, "--step", f"{run_id}:3", "-o", "json"))
    assert {line["execution_id"] for line in step} == {f"{run_id}:3:1"} and len(step) == 8
    found = json_lines(cli(server, "logs", run_id, "--search", "joined", "-o", "json"))
    assert [line["message"] for line in found] == ["partial line joined"] * 2
    assert json_lines(cli(server, "logs", run_id, "--search", "nowhere-to-be-found", "-o", "json")) == []


def test_metrics_and_progress(server: Server, observe_worker: Worker) -> None:
    value, run_id = submit(server, "training", 5)
    assert value == 0.5 ** 5
    series = {s["key"]: s for s in json.loads(cli(server, "metrics", run_id, "-o", "json").stdout)}
    assert set(series) == {"loss", "accuracy", "epochs"}
    loss = series["loss"]
    assert loss["group"]["name"] == "training" and loss["group"]["units"] == "epoch"
    assert loss["scale"]["name"] == "loss"
    assert loss["points"][0] == [0.0, 0.5] and loss["points"][-1] == [4.0, 0.5 ** 5]  # throttled, ends on the last
    assert series["accuracy"]["group"]["units"] == "epoch"  # group named by string: the defined one
    assert series["accuracy"]["scale"] == {"name": "ratio", "units": None, "progress": False, "lower": 0.0,
                                           "upper": 1.0}
    epochs = series["epochs"]
    assert epochs["scale"]["progress"] is True and epochs["scale"]["upper"] == 5
    assert epochs["points"][-1][1] == 5  # i + 1 after the last item's body
    rows = cli(server, "metrics", run_id, "-o", "csv").stdout.splitlines()
    assert rows[0] == "execution,key,group,scale,x,value" and any(",loss,training,loss,4.0," in r for r in rows)
    assert "group training (epoch)" in cli(server, "metrics", run_id).stdout


def test_bad_metrics_and_log_values_are_clear_errors(server: Server, observe_worker: Worker) -> None:
    value, run_id = submit(server, "bad_inputs")
    conflict, nan, text, ok, log_value, numpy_and_huge = value  # type: ignore[misc]
    assert conflict.startswith("ValueError: metric 'm' is already defined differently")
    assert nan == "ValueError: metric 'bad' cannot record nan: values must be finite"
    assert text == "TypeError: metric 'bad' records numbers, not str"
    assert ok == "recorded"
    assert log_value == "logged"  # logging never fails the work
    messages = [line["message"] for line in json_lines(cli(server, "logs", run_id, "-o", "json"))]
    assert any(m.startswith("a lock <unlocked _thread.lock object") for m in messages), messages
    assert any("cannot be serialised" in m for m in messages)  # and the run's log says why
    assert "after a bad value the run goes on" in messages
    assert numpy_and_huge[0].startswith("ValueError: metric 'huge' cannot record")
    assert numpy_and_huge[1:] == [0, 1, 2]
    series = {s["key"]: s for s in json.loads(cli(server, "metrics", run_id, "-o", "json").stdout)}
    assert series["np"]["points"][0][1] == 1.5 and series["np0d"]["points"][0][1] == 2.5
    assert series["unsized"]["points"][-1][1] == 3 and series["unsized"]["scale"]["upper"] is None


def test_runs_list_and_the_python_client(server: Server, observe_worker: Worker) -> None:
    from coflux.client import Client

    _, done_id = submit(server, "observed", 1, 1)
    failing = run_cli("submit", "--workspace", WORKSPACE, "observing/fails", env=server.env())
    assert failing.returncode != 0
    listed = json.loads(cli(server, "runs", "list", "-o", "json").stdout)
    assert listed[0]["created_at"] >= listed[-1]["created_at"]  # newest first
    ids = [r["id"] for r in json.loads(cli(server, "runs", "list", "--workflow", "observing/observed",
                                           "--status", "succeeded", "-o", "json").stdout)]
    assert done_id in ids
    (done,) = [r for r in listed if r["id"] == done_id]
    assert done["finished_at"] >= done["created_at"]  # finished runs show their duration
    failed = json.loads(cli(server, "runs", "list", "--status", "failed", "-o", "json").stdout)
    assert failed and all(r["state"] == "failed" for r in failed)
    assert done_id in cli(server, "runs", "list", "--limit", "50").stdout

    with Client(server.url, server.token, workspace=WORKSPACE) as client:
        assert done_id in [r["id"] for r in client.runs("observing/observed", status="succeeded")]
        lines = client.logs(done_id)
        assert [line["message"] for line in lines if line["level"] == "stdout"] == [
            "printed by task 0", "partial line joined"]
        assert client.logs(done_id, level="error") == []
        _, trained = submit(server, "training", 3)
        assert {s["key"] for s in client.metrics(trained)} == {"loss", "accuracy", "epochs"}


def test_logs_follow_survives_a_server_kill(tmp_path: Path) -> None:
    """`coflux logs -f` while the server is killed with -9 and started again: every line once."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        run_id = run_cli("submit", "--no-wait", "observing/slow_logger", "25", "0.15",
                         env=server.env()).stdout.strip()
        out, err = tmp_path / "follow.out", tmp_path / "follow.err"
        follower = subprocess.Popen([sys.executable, "-m", "coflux", "logs", "-f", run_id], env=server.env(),
                                    stdout=out.open("w"), stderr=err.open("w"))
        wait_until(lambda: "tick 3" in out.read_text(), timeout=30, message="the first lines")
        server.kill()
        time.sleep(1.0)  # the run goes on; its lines wait in the worker
        server.start()
        assert follower.wait(60) == 0, err.read_text()
        ticks = [line.split()[-1] for line in out.read_text().splitlines()]
        assert ticks == [str(i) for i in range(25)]  # each once, in order
        assert "disconnected" in err.read_text() and "reconnected" in err.read_text()
        stored = run_cli("logs", run_id, env=server.env()).stdout.splitlines()
        assert len(stored) == 25
        assert "Traceback" not in server.output()
    finally:
        worker.stop()
        server.stop()


def test_a_failed_result_shows_where_it_was_raised(server: Server, observe_worker: Worker, tmp_path: Path) -> None:
    """The traceback a script's user sees ends at the task's own `raise`, with its source line."""
    script = tmp_path / "script.py"
    script.write_text("from coflux.client import Client\n"
              f"client = Client({server.url!r}, {server.token!r}, workspace={WORKSPACE!r})\n"
              "client.submit('observing', 'fails').result(timeout=30)\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    raised = next(i for i, line in enumerate(lines) if line.strip().startswith('File "') and "observing.py" in line)
    assert lines[raised].strip().endswith("in fails")
    assert lines[raised + 1].strip() == 'raise RuntimeError("boom")'
    assert lines[-1] == "RuntimeError: boom"
    assert "result(timeout=30)" in result.stderr  # the user's own line is there too


def test_a_subscription_resumes_after_a_server_kill(tmp_path: Path) -> None:
    """A live view (the Python client's subscription, which the widget uses) gets every event of
    a run exactly once, in order, although the server was killed with -9 and started again."""
    from coflux.client import Client

    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        seen: list[dict] = []
        with Client(server.url, server.token) as client:
            run = client.submit("observing", "slow_logger", 20, 0.15)
            snapshot = client.subscribe(f"run:{run.id}", seen.append)
            wait_until(lambda: sum(1 for e in seen if e.get("type") == "logs") >= 2, timeout=30,
                       message="the first log events")
            server.kill()
            time.sleep(0.5)
            server.start()
            assert run.result(timeout=60) == 20
            wait_until(lambda: any(e.get("type") == "result" and e.get("execution") == f"{run.id}:1:1"
                                   for e in seen), timeout=30, message="the run's result event")
        events = [e for e in seen if "seq" in e]
        assert [e["type"] for e in seen if e.get("type") == "connection"] == ["connection", "connection"]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs)), "events repeated or out of order"
        assert seqs[0] > snapshot["seq"]
        with Client(server.url, server.token) as fresh:  # everything the feed holds for this run
            replay = fresh.connection.call("subscribe", {"topic": f"run:{run.id}", "after": snapshot["seq"]})["events"]
        assert [e["seq"] for e in replay] == seqs  # nothing missed
        # Read back from the feed, log lines come whole, as they went out live (the feed's rows
        # keep only the range of the lines' ids: the lines are rows of their own).
        assert replay == events
        with sqlite3.connect(server.data_dir / "coflux.db") as db:
            stored = [json.loads(data) for (data,) in db.execute("select data from events where topic = ?",
                                                                 (f"run:{run.id}",))]
        stored_logs = [e for row in stored for e in row["events"] if e["type"] == "logs"]
        assert stored_logs and all("lines" not in e and e["count"] >= 1 for e in stored_logs)
        points = [p for e in replay if e["type"] == "metrics" for p in e["points"]]
        assert points == [["ticks", i, i * 1.5] for i in range(20)]
        assert all("points" not in e for row in stored for e in row["events"] if e["type"] == "metrics")
        ticks = [line["template"] for e in events if e["type"] == "logs" for line in e["lines"]]
        assert ticks == ["tick {i}"] * 20
    finally:
        worker.stop()
        server.stop()


def test_the_run_widget_follows_a_run_across_a_server_kill(tmp_path: Path) -> None:
    """The notebook's live view says when it is disconnected, resumes by itself, and ends with
    every step as the server has it."""
    from coflux.client import Client
    from coflux.widgets import RunWidget

    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        with Client(server.url, server.token) as client:
            run = client.submit("observing", "slow_steps", 8, 0.3)
            widget = RunWidget(run)
            wait_until(lambda: sum(s["status"] == "value" for s in widget.steps) >= 2, timeout=30,
                       message="two steps done")
            server.kill()
            wait_until(lambda: widget.connected is False, timeout=10, message="the widget to say it is offline")
            server.start()
            assert run.result(timeout=60) == sum(range(8))
            wait_until(lambda: widget.status == "value" and len(widget.steps) == 9, timeout=30,
                       message="the widget to catch up")
            assert widget.connected is True
            assert [s["status"] for s in widget.steps] == ["value"] * 9
            assert [s["target"] for s in widget.steps] == ["slow_steps"] + ["nap"] * 8
            widget.close()
    finally:
        worker.stop()
        server.stop()


def test_threads_inside_a_task_keep_its_context(server: Server, observe_worker: Worker) -> None:
    value, run_id = submit(server, "uses_threads", 4)
    assert value == [0, 1, 2, 3]
    run = json.loads(cli(server, "runs", "inspect", "--no-wait", run_id, "-o", "json").stdout)
    assert [s["target"] for s in run["steps"]].count("nap") == 4  # recorded steps, not plain calls
    lines = json_lines(cli(server, "logs", run_id, "-o", "json"))
    assert sorted(line["message"] for line in lines if line["level"] == "stdout") == [f"thread {i}" for i in range(4)]
    assert sorted(line["message"] for line in lines if line["level"] == "info") == [f"from thread {i}" for i in range(4)]


def test_a_search_finds_lines_just_written_and_lines_a_crash_left_unindexed(tmp_path: Path) -> None:
    """The search index takes lines a moment after they are written; a search right after the
    lines are stored finds them all the same, and lines the index lacks when the server was
    killed are indexed when it starts again."""
    from coflux.client import Client

    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["observing"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        with Client(server.url, server.token) as client:
            run = client.submit("observing", "slow_logger", 3, 2.0)
            wait_until(lambda: len(client.logs(run)) >= 1, timeout=30, interval=0.01, message="the first line")
            found = client.logs(run, search="tick")  # at once: the line is most likely not indexed yet
            assert [line["message"] for line in found][:1] == ["tick 0"]
            assert run.result(timeout=60) == 3
        server.kill()
        # A line the index never got (as if the server died between writing and indexing it).
        with sqlite3.connect(server.data_dir / "coflux.db") as db:
            top = db.execute("select max(id + line_count + point_count) from telemetry").fetchone()[0]
            db.execute("insert into telemetry (id, run_id, execution_id, batch, at, line_count, levels, lines, "
                       "point_count) values (?, ?, ?, 99, ?, 1, 2, ?, 0)",
                       (top, run.id, f"{run.id}:1:1", time.time(),
                        json.dumps([["info", "zebra crossing", None, time.time()]])))
        server.start()
        result = run_cli("logs", run.id, "--search", "zebra", env=server.env())
        assert result.returncode == 0, result.stderr
        assert "zebra crossing" in result.stdout
        assert "tick" not in result.stdout
        assert run_cli("logs", run.id, "--search", "tick", env=server.env()).stdout.count("tick") == 3
    finally:
        worker.stop()
        server.stop()


def test_a_search_finds_lines_deep_in_a_big_batch(tmp_path: Path, monkeypatch) -> None:
    """A batch of many lines (a client may send up to 10,000 at once) is indexed in parts: a
    word in its 258th line is found, with the line's own id and text."""
    from coflux.client import Client

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import bench_search

    server = Server(tmp_path / "data").start()
    monkeypatch.setattr(bench_search, "TOKEN", server.token)
    filler = bench_search.DirectFiller(server.url, batch=1000)
    try:
        with Client(server.url, server.token) as client:
            run_id = filler.run(client, 2500)  # 10 tasks of 250 lines, a needle at each one's 8th
            found = client.logs(run_id, search="needle")
            assert [line["message"] for line in found] == [f"needle 7 in task {i}" for i in range(10)]
            every = client.logs(run_id, limit=10_000)
            assert len(every) == 2500
            by_id = {line["id"]: line["message"] for line in every}
            assert all(by_id[line["id"]] == line["message"] for line in found)
            assert [line["message"] for line in client.logs(run_id, search="hay 249 task 9")] == ["hay 249 of task 9"]
    finally:
        filler.close()
        server.stop()


def test_hostile_telemetry_loses_nothing_good(tmp_path: Path, monkeypatch) -> None:
    """A worker session that sends bad telemetry: malformed entries are dropped, the good ones
    of the same batch kept; a batch sent twice is written once; a refused batch (not JSON) says
    why; bad telemetry inside a result does not cost the result, and good telemetry in it is
    recorded before it."""
    from coflux.client import Client
    from coflux.errors import RemoteError

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import bench_search

    server = Server(tmp_path / "data").start()
    monkeypatch.setattr(bench_search, "TOKEN", server.token)
    filler = bench_search.DirectFiller(server.url)
    connection = filler.connection
    try:
        with Client(server.url, server.token) as client:
            run = client.submit(filler.MODULE, filler.TARGET, 1)
            execution = filler.executions.get(timeout=60)["execution"]
            connection.notify("started", {"execution": execution, "at": time.time()})
            now = time.time()
            good = ["info", "kept {n}", {"n": {"v": 1}}, now]
            batch = {"execution": execution, "batch": 1, "logs": [
                good, ["shout", "no such level", None, now], ["info", 5, None, now], "not a line",
                ["info", "bad values", {"n": 3}, now], ["info", "far future", None, 1e300]],
                "points": [["loss", 0, 0.5], ["loss", 1, "NaN"], ["", 2, 1.0], ["loss", float("inf"), 1.0]]}
            assert connection.call("telemetry", batch, 30) == {"ok": True}
            assert connection.call("telemetry", batch, 30) == {"ok": True, "duplicate": True}
            with pytest.raises(RemoteError, match="not valid JSON"):
                connection.call("telemetry", {"execution": execution, "batch": 2, "logs_json": "[[oops"}, 30)
            with pytest.raises(RemoteError, match="not running"):
                connection.call("telemetry", {"execution": f"{run.id}:9:1", "batch": 1, "logs": [good]}, 30)
            connection.call("result", {"execution": execution, "kind": "value", "value": {"v": 41},
                                       "telemetry": {"execution": execution, "batch": 3, "logs": "not a list"}}, 30)
            assert run.result(timeout=30) == 41
            messages = [line["message"] for line in client.logs(run.id)]
            assert messages[:2] == ["kept 1", "far future"]  # a time a year off is the server's own
            assert len(messages) == 2
            assert [s["points"] for s in client.metrics(run.id)] == [[[0.0, 0.5]]]

            again = client.submit(filler.MODULE, filler.TARGET, 2)
            execution = filler.executions.get(timeout=60)["execution"]
            connection.notify("started", {"execution": execution, "at": time.time()})
            connection.call("result", {"execution": execution, "kind": "value", "value": {"v": 2}, "telemetry": {
                "execution": execution, "batch": 1, "logs_json": json.dumps([["warning", "last words", None, now]]),
                "points_json": json.dumps([["loss", 3.0, 0.25]])}}, 30)
            assert again.result(timeout=30) == 2
            assert [line["message"] for line in client.logs(again.id)] == ["last words"]
            assert client.metrics(again.id)[0]["points"] == [[3.0, 0.25]]
        assert "Traceback" not in server.output()
    finally:
        filler.close()
        server.stop()

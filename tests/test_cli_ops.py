"""The CLI's operational commands, run as a user runs them (the server, a worker and the CLI as
processes): `runs result` of steps and attempts, `runs inspect` and `runs rerun` that wait,
`queue`, `sessions list`, `blobs get`, `assets inspect --match`, `assets download --force` and
`logs R [R:S:A] --from MS`; and each one's answer to bad input (one line on stderr, exit 2 for a
malformed or unknown target)."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import APPS_DIR, Server, Worker, run_cli, wait_until


@pytest.fixture(scope="module")
def ops(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A worker for opsapp and a client; a finished `flaky` run (step 2 failed once, then 7)."""
    from coflux.client import Client

    tmp = tmp_path_factory.mktemp("ops")
    worker = Worker(server, ["opsapp"], concurrency=4, log=tmp / "worker.log").start()
    worker.wait_registered()
    client = Client(server.url, server.token)
    try:
        flaky = client.submit("opsapp", "flaky", str(tmp / "marker"))
        assert flaky.result(timeout=120) == 8
        yield {"server": server, "worker": worker, "client": client, "tmp": tmp, "flaky": flaky.id}
    finally:
        client.close()
        worker.stop()


def cli(ops: dict, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return run_cli(*args, env=ops["server"].env(), timeout=timeout)


def popen(ops: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "coflux", *args], env=ops["server"].env(), cwd=APPS_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def refused(result: subprocess.CompletedProcess, code: int, message: str) -> None:
    """One clear line on stderr, nothing on stdout."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("coflux: "), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def step_started(ops: dict, run_id: str, step: int) -> None:
    """Wait until the run has step `step` (and its first attempt has begun)."""
    def started() -> bool:
        run = ops["client"].get_run(run_id)
        return any(s["id"] == f"{run_id}:{step}" and s["executions"][0].get("started_at") for s in run["steps"])
    wait_until(started, 60, interval=0.05, message=f"step {step} of {run_id} to start")


# ------------------------------------------------------------------ runs result R:S, R:S:A


def test_result_of_a_step_and_of_an_attempt(ops: dict) -> None:
    run = ops["flaky"]
    result = cli(ops, "runs", "result", f"{run}:2")  # the latest attempt, followed
    assert result.returncode == 0 and result.stdout == "7\n", result.stderr
    result = cli(ops, "runs", "result", f"{run}:2:2")
    assert result.returncode == 0 and result.stdout == "7\n", result.stderr
    failed = cli(ops, "runs", "result", f"{run}:2:1")  # the attempt's own result: the error a retry followed
    assert failed.returncode == 1 and failed.stdout == "", failed.stdout
    assert "ValueError: first attempt fails" in failed.stderr and 'in fails_once' in failed.stderr
    several = cli(ops, "runs", "result", run, f"{run}:1", f"{run}:2:2")
    assert several.returncode == 0 and several.stdout == "8\n8\n7\n", several.stderr


@pytest.mark.parametrize("target, message", [
    ("{run}:2:x", "malformed target '{run}:2:x': expected RUN, RUN:STEP or RUN:STEP:ATTEMPT"),
    ("{run}:", "malformed target '{run}:'"),
    ("{run}:0", "malformed target '{run}:0'"),
    ("{run}:2:1:1", "malformed target '{run}:2:1:1'"),
    ("{run}:9", "no step '{run}:9'"),
    ("{run}:2:5", "no execution '{run}:2:5'"),
    ("Rnothere:2", "no run 'Rnothere'"),
    ("Rnothere:2:1", "no run 'Rnothere'"),
])
def test_result_of_a_bad_target(ops: dict, target: str, message: str) -> None:
    run = ops["flaky"]
    refused(cli(ops, "runs", "result", target.format(run=run)), 2, message.format(run=run))


def test_result_of_a_step_and_an_attempt_waits(ops: dict) -> None:
    gate = ops["tmp"] / "release-result"
    run = ops["client"].submit("opsapp", "held", str(gate))
    try:
        step_started(ops, run.id, 2)
        pending = cli(ops, "runs", "result", "--timeout", "0.3", f"{run.id}:2:1")
        assert pending.returncode == 3 and pending.stderr == f"attempt {run.id}:2:1 has not finished\n", \
            pending.stderr
        waiting = [popen(ops, "runs", "result", f"{run.id}:2"), popen(ops, "runs", "result", f"{run.id}:2:1")]
        time.sleep(1.0)
        assert [p.poll() for p in waiting] == [None, None]  # they wait
        gate.write_text("go")
        for proc in waiting:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0 and out == "41\n", err
    finally:
        gate.write_text("go")
        run.cancel()


# ------------------------------------------------------------------ runs inspect, runs rerun


def test_inspect_follows_a_run_until_it_finishes(ops: dict) -> None:
    gate = ops["tmp"] / "release-inspect"
    run = ops["client"].submit("opsapp", "held", str(gate))
    try:
        step_started(ops, run.id, 2)
        now = cli(ops, "runs", "inspect", "--no-wait", run.id)
        assert now.returncode == 0 and now.stdout.splitlines()[0].split("  ")[-1].startswith("running for "), \
            now.stdout
        text, as_json = popen(ops, "runs", "inspect", run.id), popen(ops, "runs", "inspect", run.id, "-o", "json")
        time.sleep(1.0)
        assert text.poll() is None and as_json.poll() is None  # following the run
        gate.write_text("go")
        out, err = text.communicate(timeout=60)
        assert text.returncode == 0, err
        assert " succeeded in " in out.splitlines()[0] and "attempt 1  value 41" in out, out
        out, err = as_json.communicate(timeout=60)
        assert as_json.returncode == 0 and json.loads(out)["state"] == "succeeded", err
    finally:
        gate.write_text("go")
        run.cancel()


def test_rerun_waits_for_the_result(ops: dict) -> None:
    run = ops["flaky"]
    before = len(ops["client"].get_run(run)["steps"][1]["executions"])
    result = cli(ops, "runs", "rerun", f"{run}:2")
    new = f"{run}:2:{before + 1}"
    assert result.returncode == 0 and result.stdout == "7\n", result.stderr
    assert result.stderr == f"re-running {run}:2 as {new}\n"
    result = cli(ops, "runs", "rerun", "--no-wait", f"{run}:2")
    assert result.returncode == 0 and result.stdout == f"{run}:2:{before + 2}\n", result.stderr
    assert cli(ops, "runs", "result", f"{run}:2").stdout == "7\n"


@pytest.mark.parametrize("target, message", [
    ("{run}:2:1", "a step is RUN:STEP (e.g. R7xk:2), not '{run}:2:1'"),
    ("{run}", "a step is RUN:STEP (e.g. R7xk:2), not '{run}'"),
    ("{run}:two", "a step is RUN:STEP (e.g. R7xk:2), not '{run}:two'"),
    ("Rnothere:2", "no step 'Rnothere:2'"),
])
def test_rerun_of_a_bad_step(ops: dict, target: str, message: str) -> None:
    run = ops["flaky"]
    refused(cli(ops, "runs", "rerun", target.format(run=run)), 2, message.format(run=run))


# ------------------------------------------------------------------ queue, sessions list


def test_queue_says_what_waits_and_why(ops: dict) -> None:
    run = ops["client"].submit("opsapp", "unplaceable")
    try:
        def listed() -> dict | None:
            entries = ops["server"].get("api/queue")["queue"]
            return next((e for e in entries if e["run"] == run.id and e.get("waiting")), None)
        entry = wait_until(listed, 30, message="the run to be queued")
        result = cli(ops, "queue")  # stdout is no terminal: printed once
        assert result.returncode == 0, result.stderr
        line = next(line for line in result.stdout.splitlines() if f"{run.id}:1:1" in line)
        assert "opsapp/unplaceable (workflow)" in line and entry["waiting"] in line, line
        assert " execution(s) not started" in result.stdout.splitlines()[0]
        as_json = json.loads(cli(ops, "queue", "--no-watch", "-o", "json").stdout)
        assert any(e["id"] == f"{run.id}:1:1" and e["waiting"] == entry["waiting"] for e in as_json["queue"])
        assert as_json["total"] >= 1
        refused(cli(ops, "queue", "--limit", "0"), 2, "--limit must be from 1 to 5000, not 0")
    finally:
        run.cancel()


@pytest.mark.parametrize("args", [["queue"], ["sessions", "list", "--watch"]])
def test_watching_redraws_on_a_terminal_until_ctrl_c(ops: dict, args: list[str]) -> None:
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "coflux", *args], env=ops["server"].env(), stdout=secondary,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        os.close(secondary)
        secondary = -1
        shown = b""
        deadline = time.monotonic() + 30
        while shown.count(b"(Ctrl-C to stop)") < 2 and time.monotonic() < deadline:
            shown += os.read(main, 65536)  # a redraw every 2 s
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
        assert shown.count(b"\x1b[H\x1b[J") >= 2, shown
        expected = b"execution(s) not started" if args == ["queue"] else b"  headless  connected  "
        assert expected in shown, shown
    finally:
        os.close(main)
        if secondary != -1:
            os.close(secondary)


def test_sessions_list_shows_connected_workers(ops: dict) -> None:
    session = ops["worker"].session()
    result = cli(ops, "sessions", "list")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(session["id"] + "  "))
    assert f"{session['name']}  headless  connected  running " in line and "/4  " in line, line
    listed = json.loads(cli(ops, "sessions", "list", "-o", "json").stdout)
    assert any(w["id"] == session["id"] and w["connected"] and "opsapp/flaky" in w["targets"] for w in listed)


# ------------------------------------------------------------------ blobs get, assets


@pytest.fixture(scope="module")
def asset(ops: dict) -> dict:
    run = ops["client"].submit("opsapp", "with_asset")
    run.result(timeout=120)
    listed = ops["server"].get(f"api/runs/{run.id}/assets")["assets"]
    return {**listed[0], "run": run.id, "blobs": {e["path"]: e["blob"] for e in listed[0]["entries"]}}


def test_blobs_get(ops: dict, asset: dict, tmp_path: Path) -> None:
    text = cli(ops, "blobs", "get", asset["blobs"]["a.txt"])
    assert text.returncode == 0 and text.stdout == "hello", text.stderr
    binary = subprocess.run([sys.executable, "-m", "coflux", "blobs", "get", asset["blobs"]["img.bin"]],
                            env=ops["server"].env(), capture_output=True, timeout=60)
    assert binary.returncode == 0 and binary.stdout == b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256))
    saved = cli(ops, "blobs", "get", asset["blobs"]["img.bin"], "-o", str(tmp_path / "out" / "img.bin"))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "out" / "img.bin").read_bytes() == binary.stdout


def on_a_terminal(ops: dict, *args: str) -> tuple[int, bytes, str]:
    """Run the CLI with its stdout on a pseudo-terminal: (exit code, what reached it, stderr)."""
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "coflux", *args], env=ops["server"].env(), stdout=secondary,
                              stderr=subprocess.PIPE, text=True, timeout=60, stdin=subprocess.DEVNULL)
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
        return proc.returncode, shown, proc.stderr
    finally:
        os.close(main)
        if secondary != -1:
            os.close(secondary)


def test_blobs_get_writes_no_binary_to_a_terminal(ops: dict, asset: dict) -> None:
    code, shown, err = on_a_terminal(ops, "blobs", "get", asset["blobs"]["img.bin"])
    assert code == 2 and shown == b"", shown
    assert err == (f"coflux: blob {asset['blobs']['img.bin']} is binary: not writing it to a terminal "
                   "(use -o FILE, or redirect stdout)\n")
    code, shown, err = on_a_terminal(ops, "blobs", "get", asset["blobs"]["sub/b.csv"])
    assert code == 0 and shown.replace(b"\r\n", b"\n") == b"x,y\n1,2\n", err


@pytest.mark.parametrize("key, message", [
    ("0" * 64, "no blob " + "0" * 64),
    ("xyz", "not a blob key: 'xyz' (64 lowercase hex characters)"),
    ("A" * 64, "not a blob key"),
])
def test_blobs_get_of_a_bad_key(ops: dict, key: str, message: str, tmp_path: Path) -> None:
    refused(cli(ops, "blobs", "get", key), 2, message)
    refused(cli(ops, "blobs", "get", key, "-o", str(tmp_path / "x")), 2, message)
    assert not (tmp_path / "x").exists()


def test_assets_inspect_match(ops: dict, asset: dict) -> None:
    text = cli(ops, "assets", "inspect", asset["id"], "--match", "sub/*.csv")
    assert text.returncode == 0, text.stderr
    paths = [line.split()[0] for line in text.stdout.splitlines()[1:]]
    assert paths == ["sub/b.csv", "sub/c.csv"], text.stdout
    assert "(2 matching 'sub/*.csv')" in text.stdout.splitlines()[0]
    one = json.loads(cli(ops, "assets", "inspect", asset["id"], "--match", "*.txt", "-o", "json").stdout)
    assert [e["path"] for e in one["entries"]] == ["a.txt"]
    of_run = json.loads(cli(ops, "assets", "inspect", asset["run"], "--match", "*.bin", "-o", "json").stdout)
    assert [[e["path"] for e in item["entries"]] for item in of_run] == [["img.bin"]]
    none = cli(ops, "assets", "inspect", asset["run"], "--match", "*.nothing")
    assert none.returncode == 0 and none.stdout == f"run {asset['run']} has no assets with entries matching " \
                                                  "'*.nothing'\n"


def test_assets_download_overwrites_only_with_force(ops: dict, asset: dict, tmp_path: Path) -> None:
    first = cli(ops, "assets", "download", asset["id"], "--to", str(tmp_path), "--match", "sub/*")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "sub" / "b.csv").read_text() == "x,y\n1,2\n"
    (tmp_path / "sub" / "b.csv").write_text("mine")
    again = cli(ops, "assets", "download", asset["id"], "--to", str(tmp_path))
    refused(again, 1, f"coflux: {tmp_path / 'sub' / 'b.csv'} exists (and 1 more of the asset's files); "
                      "not overwriting without --force")
    assert (tmp_path / "sub" / "b.csv").read_text() == "mine" and not (tmp_path / "a.txt").exists()
    forced = cli(ops, "assets", "download", asset["id"], "--to", str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "sub" / "b.csv").read_text() == "x,y\n1,2\n" and (tmp_path / "a.txt").read_text() == "hello"


# ------------------------------------------------------------------ logs R [R:S:A] --from MS


def test_logs_of_an_attempt_and_from_a_time(ops: dict) -> None:
    run = ops["flaky"]
    every = [json.loads(line) for line in cli(ops, "logs", run, "-o", "json").stdout.splitlines()]
    assert {line["execution_id"] for line in every} >= {f"{run}:1:1", f"{run}:2:1", f"{run}:2:2"}
    for target in (f"{run}:2:1", f"{run}:2:2", f"{run}:2"):
        shown = [json.loads(line) for line in cli(ops, "logs", run, target, "-o", "json").stdout.splitlines()]
        assert shown == [line for line in every if (line["execution_id"] + ":").startswith(target + ":")], target
        assert shown
    text = cli(ops, "logs", run, f"{run}:2:2")
    assert text.returncode == 0 and all(f" {run}:2:2 " in line for line in text.stdout.splitlines()), text.stdout
    second = next(line for line in every if line["execution_id"] == f"{run}:2:2")
    from_ms = int(second["at"] * 1000)  # lines from that millisecond on
    later = [json.loads(line) for line in cli(ops, "logs", run, "--from", str(from_ms), "-o", "json")
             .stdout.splitlines()]
    assert later == [line for line in every if line["at"] * 1000 >= from_ms]
    assert second in later and len(later) < len(every)
    followed = cli(ops, "logs", run, f"{run}:2:1", "-f", "--from", "0", "-o", "json")  # the run has ended
    assert followed.returncode == 0, followed.stderr
    assert [json.loads(line) for line in followed.stdout.splitlines()] == \
        [line for line in every if line["execution_id"] == f"{run}:2:1"]


@pytest.mark.parametrize("args, message", [
    (["{run}", "{run}:2:9"], "no execution '{run}:2:9'"),
    (["{run}", "{run}:2:9", "-f"], "no execution '{run}:2:9'"),
    (["{run}", "{run}:2:x"], "malformed target '{run}:2:x'"),
    (["{run}", "{run}"], "malformed target '{run}': expected RUN:STEP or RUN:STEP:ATTEMPT"),
    (["{run}", "Rother:2:1"], "'Rother:2:1' is not of run '{run}'"),
    (["{run}", "{run}:2:1", "--step", "{run}:1"], "--step {run}:1 and {run}:2:1 name different steps"),
])
def test_logs_of_a_bad_target(ops: dict, args: list[str], message: str) -> None:
    run = ops["flaky"]
    refused(cli(ops, "logs", *[a.format(run=run) for a in args]), 2, message.format(run=run))


@pytest.mark.parametrize("value", ["soon", "-1", "1.5"])
def test_logs_from_takes_epoch_milliseconds(ops: dict, value: str) -> None:
    result = cli(ops, "logs", ops["flaky"], "--from", value)
    assert result.returncode == 2 and "--from: not a time in milliseconds since the epoch" in result.stderr
    assert result.stdout == ""

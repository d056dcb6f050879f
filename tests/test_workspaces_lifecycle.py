"""`coflux workspaces pause|resume|archive` through a real server, worker and CLI: a paused
workspace dispatches nothing new (running work finishes, submits wait and say why), resume lets
it go on, an archived one takes no new runs and leaves the lists with its history kept; the
state survives a restart; bad input is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, run_cli, wait_until

WORKSPACE = "lab"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("lifecycle")
    server = Server(base / "data").start()
    assert run_cli("workspaces", "create", WORKSPACE, env=server.env()).returncode == 0
    worker = Worker(server, ["myapp.workflows", "opsapp"], concurrency=2, log=base / "worker.log",
                    extra=["--workspace", WORKSPACE]).start()
    try:
        worker.wait_registered()
        yield server, base
    finally:
        worker.stop()
        server.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=server.env(COFLUX_WORKSPACE=WORKSPACE), timeout=60)


def inspect(server: Server, run_id: str) -> dict:
    done = cli(server, "runs", "inspect", "--no-wait", run_id, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pause_holds_new_work_lets_running_work_finish_and_resume_goes_on(lab: tuple[Server, Path]) -> None:
    server, base = lab
    gate = base / "gate"
    held = cli(server, "submit", "--no-wait", "opsapp/held", json.dumps(str(gate)))
    assert held.returncode == 0, held.stderr
    held_run = held.stdout.strip()
    wait_until(lambda: any(s["id"] == f"{held_run}:2" and s["executions"][0].get("started_at")
                           for s in inspect(server, held_run)["steps"]), 60, message="the task to start")

    paused = cli(server, "workspaces", "pause", WORKSPACE)
    assert paused.returncode == 0 and paused.stdout.strip() == "workspace lab is paused", paused.stderr
    assert "lab  [paused]" in cli(server, "workspaces", "list").stdout
    submitted = cli(server, "submit", "--no-wait", "myapp.workflows/child", "2")
    assert submitted.returncode == 0, submitted.stderr  # accepted: it waits
    waiting_run = submitted.stdout.strip()
    reason = "workspace lab is paused (`coflux workspaces resume` lets it go on)"
    text = cli(server, "runs", "inspect", "--no-wait", waiting_run).stdout
    assert f"{waiting_run}:1:1  attempt 1  pending  ({reason})" in text, text
    queue = json.loads(cli(server, "queue", "-o", "json").stdout)
    assert any(e["run"] == waiting_run and e["waiting"] == reason for e in queue["queue"]), queue

    gate.write_text("go")  # the running task finishes, and with it the run that was running
    result = cli(server, "runs", "result", "--timeout", "60", held_run)
    assert result.returncode == 0 and result.stdout.strip() == "42", result.stderr
    time.sleep(0.5)
    assert inspect(server, waiting_run)["steps"][0]["executions"][0]["result"] is None  # still held

    resumed = cli(server, "workspaces", "resume", WORKSPACE)
    assert resumed.returncode == 0 and resumed.stdout.strip() == "workspace lab is active"
    result = cli(server, "runs", "result", "--timeout", "60", waiting_run)
    assert result.returncode == 0 and result.stdout.strip() == "20", result.stderr


def test_bad_workspace_commands_are_one_line_and_change_nothing(lab: tuple[Server, Path]) -> None:
    server, _ = lab
    for args, message in [(("pause", "nope"), "no workspace named 'nope'"),
                          (("resume", WORKSPACE), "workspace 'lab' is not paused"),
                          (("archive", "nope"), "no workspace named 'nope'")]:
        done = cli(server, "workspaces", *args)
        assert done.returncode == 2 and done.stderr == f"coflux: {message}\n", done.stderr
    assert "lab  [" not in cli(server, "workspaces", "list").stdout  # still active
    missing = cli(server, "workspaces", "pause")
    assert missing.returncode == 2 and "WORKSPACE" in missing.stderr


def test_workspace_changes_are_feed_events(lab: tuple[Server, Path]) -> None:
    from coflux.client import Client

    server, _ = lab
    events: list[dict] = []
    with Client(server.url, server.token) as client:
        client.subscribe("runs", events.append)
        assert cli(server, "workspaces", "pause", WORKSPACE).returncode == 0
        assert cli(server, "workspaces", "resume", WORKSPACE).returncode == 0
        wait_until(lambda: [(e["name"], e["state"]) for e in events if e.get("type") == "workspace"]
                   == [(WORKSPACE, "paused"), (WORKSPACE, "active")], 20, message="the workspace events")


def test_archive_refuses_new_runs_hides_it_and_keeps_its_history(lab: tuple[Server, Path]) -> None:
    server, _ = lab
    done = cli(server, "submit", "myapp.workflows/child", "3")
    assert done.returncode == 0 and done.stdout.strip() == "30", done.stderr
    old = json.loads(cli(server, "runs", "list", "-o", "json").stdout)
    old_run = old[0]["id"] if isinstance(old, list) else old["runs"][0]["id"]

    archived = cli(server, "workspaces", "archive", WORKSPACE)
    assert archived.returncode == 0 and archived.stdout.strip() == "workspace lab is archived"
    listed = cli(server, "workspaces", "list").stdout.splitlines()
    assert WORKSPACE not in [line.split()[0] for line in listed]
    assert "lab  [archived]" in cli(server, "workspaces", "list", "--archived").stdout
    runs_before = cli(server, "runs", "list", "-o", "json").stdout
    refused = cli(server, "submit", "--no-wait", "myapp.workflows/child", "4")
    assert refused.returncode == 2
    assert refused.stderr == "coflux: workspace 'lab' is archived: it takes no new runs\n"
    assert cli(server, "runs", "list", "-o", "json").stdout == runs_before  # nothing recorded
    status = _post(server, "api/runs", {"module": "myapp.workflows", "target": "child", "args": [5],
                                        "workspace": WORKSPACE})
    assert status[0] == 400 and "is archived" in status[1]
    assert inspect(server, old_run)["workspace"] == WORKSPACE  # its history stays
    again = cli(server, "workspaces", "pause", WORKSPACE)
    assert again.returncode == 2 and again.stderr == "coflux: workspace 'lab' is archived\n"


def _post(server: Server, path: str, body: dict) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_paused_workspace_stays_paused_across_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        env = server.env()
        assert run_cli("workspaces", "create", "night", env=env).returncode == 0
        # A worker registers myapp in it and leaves: its workflows stay known, no worker is there.
        worker = Worker(server, ["myapp.workflows"], log=tmp_path / "worker.log", extra=["--workspace", "night"])
        worker.start().wait_registered()
        worker.stop()
        assert run_cli("workspaces", "pause", "night", env=env).returncode == 0
        server.stop()
        server.start()
        assert "night  [paused]" in run_cli("workspaces", "list", env=env).stdout
        # With no worker connected, being paused is still the reason it waits.
        submitted = run_cli("submit", "--no-wait", "--workspace", "night", "myapp.workflows/child", "2", env=env)
        assert submitted.returncode == 0, submitted.stderr
        waiting_run = submitted.stdout.strip()
        text = run_cli("runs", "inspect", "--no-wait", waiting_run, env=env).stdout
        assert f"{waiting_run}:1:1  attempt 1  pending  (workspace night is paused " in text, text
        queue = json.loads(run_cli("queue", "-o", "json", env=env).stdout)
        assert [e["waiting"] for e in queue["queue"] if e["run"] == waiting_run] == [
            "workspace night is paused (`coflux workspaces resume` lets it go on)"], queue
    finally:
        server.stop()

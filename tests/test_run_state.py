"""One truth for a run's state (issue 17): the server defines a run's outcome once (the latest
attempt of its root step, followed to its result; its span from the run's creation to that
result) and every surface reads it: `coflux runs list` (text and JSON), `runs inspect`, `runs
result`, the HTTP payloads that Studio's runs list, its run page, the notebook views and the Lab
panel render, the feed's `run_result` events they fold, the Python fold of the notebook widget,
and `Run.result()`.

The scenario of the issue, headless: a run's workflow step ends abandoned (its worker is killed
mid-run), `coflux runs rerun R:1` makes a new attempt (in flight while no worker can take it:
the run is running again everywhere), then a fresh worker runs it and it succeeds (the run
succeeded everywhere, with one duration)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from harness import Server, Worker, run_cli, stop_process, wait_until

from coflux.client import Client
from coflux.runview import RunView

OUTCOME = ("status", "state", "started_at", "finished_at", "duration", "execution")
VALUE = 42


def _outcome(source: dict) -> dict:
    return {key: source[key] for key in OUTCOME}


def _cli(server: Server, *args: str) -> Any:
    return run_cli(*args, env=server.env(), timeout=60)


def _listed(listing: list[dict], run_id: str) -> dict:
    (run,) = [r for r in listing if r["id"] == run_id]
    return run


def _surfaces(server: Server, client: Client, run_id: str) -> dict[str, dict]:
    """The run's outcome as each surface reads it."""
    listed = _cli(server, "runs", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    inspected = _cli(server, "runs", "inspect", "--no-wait", run_id, "-o", "json")
    assert inspected.returncode == 0, inspected.stderr
    fold = RunView(run_id)
    fold.load(client.get_run(run_id))
    assert fold.outcome is not None
    return {
        "coflux runs list -o json": _outcome(_listed(json.loads(listed.stdout), run_id)),
        "GET api/runs (Studio's runs list, the Lab panel)": _outcome(_listed(server.get("api/runs")["runs"], run_id)),
        "GET api/runs/R (run page, notebook view, Lab run tab)": _outcome(server.get(f"api/runs/{run_id}")),
        "GET api/runs/R?view=inspect (runs inspect)": _outcome(server.get(f"api/runs/{run_id}?view=inspect")),
        "coflux runs inspect -o json": _outcome(json.loads(inspected.stdout)),
        "Client.runs()": _outcome(_listed(client.runs(), run_id)),
        "the notebook widget's fold": _outcome(fold.outcome),
    }


def _agree(server: Server, client: Client, run_id: str) -> dict:
    """Every surface says the same; that outcome."""
    seen = _surfaces(server, client, run_id)
    first = next(iter(seen.values()))
    assert all(outcome == first for outcome in seen.values()), json.dumps(seen, indent=1)
    return first


def _texts(server: Server, run_id: str) -> tuple[str, str]:
    """The run's line of `coflux runs list` and the first line of `coflux runs inspect`."""
    listed = _cli(server, "runs", "list")
    inspected = _cli(server, "runs", "inspect", "--no-wait", run_id)
    assert listed.returncode == 0 and inspected.returncode == 0, listed.stderr + inspected.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(run_id)]
    return line, inspected.stdout.splitlines()[0]


def test_a_rerun_of_an_abandoned_workflow_step_decides_the_run_everywhere(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra=["--reconnect-grace", "1"]).start()
    first = Worker(server, ["runstate"], concurrency=1, log=tmp_path / "first.log").start()
    second = None
    marker = tmp_path / "started"
    try:
        first.wait_registered()
        with Client(server.url, server.token) as client:
            run = client.submit("runstate", "hold", str(marker), VALUE)
            root = f"{run.id}:1"
            wait_until(marker.exists, 30, message="the workflow to start")
            events: list[dict] = []  # run_result events of both topics, as a viewer gets them
            lock = threading.Lock()

            def listen(event: dict) -> None:
                if event.get("type") == "run_result" and event.get("run") == run.id:
                    with lock:
                        events.append(event)
            live = RunView(run.id)  # a notebook widget's fold, kept current by the run's feed
            live.load(client.subscribe(f"run:{run.id}", live.apply))
            client.subscribe(f"run:{run.id}", listen)
            client.subscribe("runs", listen)
            # Started as far as the server knows (else a lost worker's work is queued again).
            wait_until(lambda: client.get_run(run.id)["steps"][0]["executions"][0]["started_at"], 30,
                       message="the server to hear that the workflow started")

            # 1. The workflow step ends abandoned: its worker is killed mid-run.
            stop_process(first.proc, hard=True)
            wait_until(lambda: (client.get_run(run.id)["steps"][0]["executions"][0]["result"] or {}).get("kind")
                       == "abandoned", 30, message="the root step to be abandoned")
            abandoned = _agree(server, client, run.id)
            abandoned_at = client.get_run(run.id)["steps"][0]["executions"][0]["result"]["at"]
            assert abandoned == {"status": "abandoned", "state": "failed", "started_at": run_created(client, run.id),
                                 "finished_at": abandoned_at, "duration": abandoned_at - run_created(client, run.id),
                                 "execution": f"{root}:1"}
            result = _cli(server, "runs", "result", run.id)
            assert result.returncode == 1 and f"run ended: abandoned ({root}:1)" in result.stderr

            # 2. Re-run it with no worker to take it: the run is running again, everywhere.
            rerun = _cli(server, "runs", "rerun", "--no-wait", root)
            assert rerun.returncode == 0 and rerun.stdout.strip() == f"{root}:2", rerun.stderr
            running = _agree(server, client, run.id)
            assert running == {"status": "running", "state": "running", "started_at": run_created(client, run.id),
                               "finished_at": None, "duration": None, "execution": f"{root}:2"}
            pending = _cli(server, "runs", "result", run.id, "--timeout", "0.3")
            assert pending.returncode == 3 and "run has not finished" in pending.stderr, pending.stderr
            assert run.poll(0.1, default="not yet") == "not yet"
            listed, inspected = _texts(server, run.id)
            assert "  running for " in listed and "  running for " in inspected, (listed, inspected)
            wait_until(lambda: live.status() == "running" and sum(e["status"] == "running" for e in events) == 2,
                       10, message="the feed to say the run is running again (both topics)")

            # 3. A fresh worker runs the re-run, which succeeds: the run succeeded, everywhere.
            second = Worker(server, ["runstate"], concurrency=1, log=tmp_path / "second.log").start()
            assert run.result(timeout=60) == VALUE
            assert client.run(run.id).result(timeout=5) == VALUE
            succeeded = _agree(server, client, run.id)
            value_at = client.get_run(run.id)["steps"][0]["executions"][1]["result"]["at"]
            created = run_created(client, run.id)
            assert succeeded == {"status": "value", "state": "succeeded", "started_at": created,
                                 "finished_at": value_at, "duration": value_at - created, "execution": f"{root}:2"}
            assert succeeded["duration"] > abandoned["duration"]  # from the first creation to the last outcome
            result = _cli(server, "runs", "result", run.id)
            assert result.returncode == 0 and json.loads(result.stdout) == VALUE, result.stderr
            assert client.wait_run(run.id, 0)["status"] == "value"
            assert server.get(f"api/runs/{run.id}/result?timeout=0")["status"] == "value"
            listed, inspected = _texts(server, run.id)
            span = f"succeeded in {succeeded['duration']:.3f} s"
            assert f"  {span}  " in listed and inspected.endswith(span), (listed, inspected)
            ok = _cli(server, "runs", "list", "--status", "succeeded", "-o", "json")
            assert run.id in [r["id"] for r in json.loads(ok.stdout)]
            failed = _cli(server, "runs", "list", "--status", "failed", "-o", "json")
            assert run.id not in [r["id"] for r in json.loads(failed.stdout)]

            # The live views heard the same, from the feed (Studio's runs list folds the `runs`
            # topic's events; the run page, notebook and Lab views the run's own).
            wait_until(lambda: live.status() == "value" and sum(e["status"] == "value" for e in events) == 2,
                       10, message="the feed to say the run succeeded (both topics)")
            assert live.outcome == succeeded
            with lock:
                assert [e["status"] for e in events] == ["abandoned"] * 2 + ["running"] * 2 + ["value"] * 2
                assert all(_outcome(e) == succeeded and e["kind"] == "value" for e in events[-2:])
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        server.stop()


def run_created(client: Client, run_id: str) -> float:
    return client.get_run(run_id)["created_at"]

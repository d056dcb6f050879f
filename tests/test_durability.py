"""Durability: what the server acknowledged is committed. `kill -9` the server while a run is in
flight, start it again on the same data directory and port: nothing acknowledged is lost, and
the run completes once the worker (and waiting clients) reconnect and re-send."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server, Worker, free_port, inspect_run, run_cli, steps_by_target, stop_process, wait_until

from coflux.client import Client


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.server = Server(tmp / "data", port=free_port())
        self.worker: Worker | None = None

    def cli(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
        try:
            return run_cli(*args, env=self.server.env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`coflux {' '.join(args)}` did not finish within {timeout} s\n{self.logs()}")

    def logs(self) -> str:
        worker = self.worker.output() if self.worker is not None else ""
        return f"--- server log\n{self.server.output()[-6000:]}\n--- worker log\n{worker[-3000:]}"

    def start_worker(self) -> Worker:
        self.worker = Worker(self.server, ["myapp.workflows"], concurrency=3, log=self.tmp / "worker.log")
        self.worker.start().wait_registered()
        return self.worker

    def restart_server(self) -> None:
        """kill -9, then start again on the same port and data directory."""
        port = self.server.port
        self.server.kill()
        self.server.start()
        assert self.server.port == port

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.server.stop()


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.server.start()
    try:
        yield c
    finally:
        c.stop()


def test_acknowledged_submit_survives_kill(cluster: Cluster):
    # The worker registers the workflows and goes away: the run can only be pending when the
    # server dies.
    cluster.start_worker()
    cluster.worker.stop()
    submitted = cluster.cli("submit", "--no-wait", "myapp.workflows/nested", "1", "2", "3")
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()

    cluster.restart_server()

    run = inspect_run(cluster.cli, run_id)
    assert (run["module"], run["target"]) == ("myapp.workflows", "nested")
    assert run["steps"][0]["arguments"] == [{"v": 1}, {"v": 2}, {"v": 3}]
    assert run["steps"][0]["executions"][0]["result"] is None
    cluster.start_worker()
    result = cluster.cli("runs", "result", "--timeout", "60", run_id)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == 6


def kill_server_while_run_in_flight(cluster: Cluster, via_submit: bool) -> None:
    """A run whose workflow is blocked on a gate task: the first n steps are acknowledged, the
    gate finishes while the server is down, the server comes back, everything reconnects."""
    from coflux.client import Client

    cluster.start_worker()
    gate = cluster.tmp / "gate"
    n = 5
    submit = subprocess.Popen(
        [sys.executable, "-m", "coflux", "submit", "myapp.workflows/gated", json.dumps(str(gate)), str(n),
         json.dumps(via_submit)],
        env=cluster.server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    client = None
    try:
        wait_until(lambda: Path(f"{gate}.started").exists(), 60, message="the gate task to start")
        run_id = next(r["id"] for r in cluster.server.get("api/runs?target=gated")["runs"])
        client = Client(cluster.server.url, cluster.server.token)
        waited: dict = {}

        def wait_for_result() -> None:
            try:
                waited["value"] = client.run(run_id).result(120)
            except Exception as exc:  # reported by the assertion below
                waited["error"] = exc

        waiter = threading.Thread(target=wait_for_result, daemon=True)
        waiter.start()
        before = inspect_run(cluster.cli, run_id)
        committed = {s["id"]: s for s in before["steps"] if s["executions"][0]["result"] is not None}
        assert len(committed) == n  # the first n incs finished and were acknowledged

        cluster.server.kill()
        gate.touch()  # the gate task finishes while the server is down: its result must not be lost
        wait_until(lambda: Path(f"{gate}.done").exists(), 30, message="the gate task to finish")
        cluster.server.start()

        result = cluster.cli("runs", "result", "--timeout", "20", run_id, timeout=30)
        assert result.returncode == 0, result.stderr + cluster.logs()
        expected = {"before": sum(range(1, n + 1)), "gate": 100, "after": sum(range(1, n + 1))}
        assert json.loads(result.stdout) == expected

        # The `coflux submit` that was waiting reconnected and printed the result.
        out, err = submit.communicate(timeout=30)
        assert submit.returncode == 0, err
        assert json.loads(out) == expected
        # So did the Python client.
        waiter.join(30)
        assert waited.get("value") == expected, waited

        after = inspect_run(cluster.cli, run_id)
        assert len(after["steps"]) == 1 + n + 1 + n
        for step in after["steps"]:
            assert len(step["executions"]) == 1, f"{step['id']} ran more than once"
            assert step["executions"][0]["result"]["kind"] == "value"
        for step_id, step in committed.items():  # acknowledged results unchanged
            assert next(s for s in after["steps"] if s["id"] == step_id) == step
        assert len(steps_by_target(after)["gate"]) == 1
    finally:
        if client is not None:
            client.close()
        gate.touch()
        if submit.poll() is None:
            stop_process(submit, hard=True)


def test_kill_server_while_run_in_flight_submit_and_wait(cluster: Cluster):
    """The workflow waits with `gate.submit(...).result()` (ops `submit` + `wait`)."""
    kill_server_while_run_in_flight(cluster, via_submit=True)


def test_kill_server_while_run_in_flight_call(cluster: Cluster):
    """The workflow blocks in a plain call `gate(...)` (op `call`)."""
    kill_server_while_run_in_flight(cluster, via_submit=False)


def test_killed_worker_execution_is_abandoned_and_retried_elsewhere(tmp_path: Path) -> None:
    """kill -9 a worker while its task runs: after the server's reconnect grace (1 s here) the
    execution is recorded as abandoned, its retry runs on the other worker, and the run ends
    with that value."""
    server = Server(tmp_path / "data", extra=["--reconnect-grace", "1"]).start()
    flow = Worker(server, ["killapp_flow"], concurrency=1, log=tmp_path / "flow.log").start()
    doomed = Worker(server, ["killapp_tasks"], concurrency=1, log=tmp_path / "doomed.log").start()
    survivor = None
    try:
        flow.wait_registered()
        doomed.wait_registered()
        log, gate = tmp_path / "task.log", tmp_path / "gate"
        log.touch()
        with Client(server.url, server.token) as client:
            run = client.submit("killapp_flow", "survive", str(log), str(gate))
            wait_until(lambda: "started" in log.read_text(), 30, message="the task to start")
            first_pid = int(log.read_text().split()[1])
            survivor = Worker(server, ["killapp_tasks"], concurrency=1, log=tmp_path / "survivor.log").start()
            survivor.wait_registered()
            stop_process(doomed.proc, hard=True)  # the worker and its pool, with no goodbye
            wait_until(lambda: log.read_text().count("started") == 2, 30, message="the retry to start")
            gate.touch()
            second_pid = run.result(timeout=30)
            assert second_pid != first_pid
            task = [s for s in client.get_run(run.id)["steps"] if s["target"] == "guarded"][0]
            kinds = [e["result"]["kind"] for e in task["executions"]]
            assert kinds == ["abandoned", "value"]
            assert task["executions"][0]["session"] != task["executions"][1]["session"]
    finally:
        for worker in (flow, doomed, survivor):
            if worker is not None:
                worker.stop()
        server.stop()

"""A worker's life as its user sees it: graceful drain on SIGTERM / Ctrl-C (finish what runs, hand
back what was queued, a second signal stops at once) and `coflux worker --dev` (reload on a source
change; running executions finish on the old code; a broken edit keeps the old code serving).
Real `coflux worker` processes; signals are sent to the worker process as a terminal or systemd
would (to the worker itself, not its pool)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import APPS_DIR, Server, Worker, _spawn, base_env, inspect_run, run_cli, stop_process, wait_until


def cli(server: Server, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cli(*args, env=server.env(), timeout=timeout)


def submit_no_wait(server: Server, workspace: str, target: str, *args: object) -> str:
    result = cli(server, "submit", "--no-wait", "--workspace", workspace, target, *[json.dumps(a) for a in args])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def result_of(server: Server, workspace: str, run_id: str, timeout: float = 60) -> object:
    result = cli(server, "runs", "result", "--workspace", workspace, run_id, "--timeout", str(timeout),
                 timeout=timeout + 10)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def bodies(directory: Path) -> list[tuple[str, str, bool]]:
    """(task index, worker pid, finished) of every body run recorded by lifecycle.tasks."""
    out = []
    for path in directory.glob("*.start"):
        i, pid, _ = path.stem.split("-")
        out.append((i, pid, path.with_suffix(".end").exists()))
    return sorted(out)


def executions(run: dict, target: str) -> list[dict]:
    return [e for step in run["steps"] if step["target"] == target for e in step["executions"]]


def started_count(directory: Path) -> int:
    return len(list(directory.glob("*.start")))


@pytest.fixture()
def workers(server: Server, tmp_path: Path, request: pytest.FixtureRequest):
    """A workflow worker and two task workers (one slot each) in a workspace of this test's own."""
    workspace = f"life-{request.node.name[:40].replace('[', '-').replace(']', '')}"
    started: list[Worker] = []

    def start(modules: list[str], name: str, *extra: str, concurrency: int = 1) -> Worker:
        worker = Worker(server, modules, concurrency=concurrency, log=tmp_path / f"{name}.log",
                        extra=["--workspace", workspace, *extra]).start()
        worker.wait_registered()
        started.append(worker)
        return worker

    yield workspace, start
    for worker in started:
        worker.stop()


def test_sigterm_drains_running_work_and_hands_back_the_queue(server: Server, workers, tmp_path: Path) -> None:
    workspace, start = workers
    marks = tmp_path / "marks"
    marks.mkdir()
    start(["lifecycle.flows"], "flows", concurrency=2)
    draining = start(["lifecycle.tasks"], "tasks-a")
    run_id = submit_no_wait(server, workspace, "lifecycle.flows/fanout", str(marks), 4, 1.5)
    wait_until(lambda: started_count(marks) >= 1, timeout=30, message="a task to start")
    start(["lifecycle.tasks"], "tasks-b")  # joins later: it gets what the first hands back

    draining.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert draining.proc.wait(30) == 0, draining.output()  # type: ignore[union-attr]
    out = draining.output()
    assert "draining" in out and "stopped" in out

    assert result_of(server, workspace, run_id) == [0, 10, 20, 30]
    runs = bodies(marks)
    assert len(runs) == 4 and all(done for _, _, done in runs), runs  # each body ran once, to the end
    drained_pid = str(draining.proc.pid)  # type: ignore[union-attr]
    assert sum(1 for _, pid, _ in runs if pid == drained_pid) == 1  # only what it was running
    run = inspect_run(lambda *a: cli(server, *a), run_id)
    assert all(e["attempt"] == 1 and e["result"]["kind"] == "value" for e in executions(run, "slow"))


def test_drain_timeout_abandons_so_retries_apply(server: Server, workers, tmp_path: Path) -> None:
    workspace, start = workers
    marks = tmp_path / "marks"
    marks.mkdir()
    start(["lifecycle.flows"], "flows", concurrency=2)
    impatient = start(["lifecycle.tasks"], "tasks-a", "--drain-timeout", "1")
    run_id = submit_no_wait(server, workspace, "lifecycle.flows/one_retried", str(marks), 4.0)
    wait_until(lambda: started_count(marks) >= 1, timeout=30, message="the task to start")
    start(["lifecycle.tasks"], "tasks-b")

    began = time.monotonic()
    impatient.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert impatient.proc.wait(30) == 0, impatient.output()  # type: ignore[union-attr]
    assert time.monotonic() - began < 4.0  # it did not wait for the 4 s task

    assert result_of(server, workspace, run_id) == 0
    run = inspect_run(lambda *a: cli(server, *a), run_id)
    attempts = executions(run, "slow_retried")
    assert [e["result"]["kind"] for e in attempts] == ["abandoned", "value"]


def test_second_signal_stops_at_once(server: Server, workers, tmp_path: Path) -> None:
    workspace, start = workers
    marks = tmp_path / "marks"
    marks.mkdir()
    start(["lifecycle.flows"], "flows", concurrency=2)
    worker = start(["lifecycle.tasks"], "tasks-a")
    run_id = submit_no_wait(server, workspace, "lifecycle.flows/one_retried", str(marks), 30.0)
    wait_until(lambda: started_count(marks) >= 1, timeout=30, message="the task to start")

    began = time.monotonic()
    worker.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
    wait_until(lambda: "draining" in worker.output(), timeout=10, message="the worker to say it drains")
    worker.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
    code = worker.proc.wait(15)  # type: ignore[union-attr]
    assert time.monotonic() - began < 6.0
    assert code != 0 and "stopping now" in worker.output()

    # Reported abandoned at once (not after the reconnect grace), so the retry is already queued.
    def first_attempt_abandoned() -> bool:
        run = inspect_run(lambda *a: cli(server, *a), run_id)
        attempts = executions(run, "slow_retried")
        return bool(attempts) and attempts[0]["result"] is not None \
            and attempts[0]["result"]["kind"] == "abandoned" and len(attempts) == 2
    wait_until(first_attempt_abandoned, timeout=5, interval=0.2, message="the attempt to be abandoned")
    cli(server, "runs", "cancel", run_id)


# ---------------------------------------------------------------------------------- --dev


DEV_MODULE = '''
import time
import coflux as cf

VERSION = "{version}"


@cf.task()
def version() -> str:
    return VERSION


@cf.workflow()
def which() -> str:
    return version()


@cf.workflow()
def slow_which(seconds: float) -> str:
    time.sleep(seconds)
    return VERSION
'''

ADDED = '''

@cf.workflow()
def added(x: int) -> int:
    return x * 3
'''


def test_dev_reloads_on_change_and_keeps_running_work_on_old_code(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "src"
    package = source / "devapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    module = package / "flows.py"
    module.write_text(DEV_MODULE.format(version="v1"))
    workspace = "dev-reload"
    env = base_env(PYTHONPATH=os.pathsep.join([str(source), str(APPS_DIR)]))
    log = tmp_path / "worker.log"
    proc = _spawn([sys.executable, "-m", "coflux", "worker", "--dev", "--server", server.url, "--token",
                   server.token or "", "--workspace", workspace, "--concurrency", "2", "devapp.flows"],
                  cwd=source, env=env, log=log)
    try:
        wait_until(lambda: "connected" in log.read_text(), timeout=60, message="the dev worker to connect")

        def run(target: str, *args: object) -> object:
            result = cli(server, "submit", "--workspace", workspace, f"devapp.flows/{target}",
                         *[json.dumps(a) for a in args])
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        assert run("which") == "v1"
        long_run = submit_no_wait(server, workspace, "devapp.flows/slow_which", 3.0)
        time.sleep(0.5)  # it is running on v1 now

        module.write_text(DEV_MODULE.format(version="v2") + ADDED)
        wait_until(lambda: "reloaded" in log.read_text(), timeout=30, message="the reload")
        assert run("which") == "v2"
        assert run("added", 5) == 15  # a new workflow is registered
        assert result_of(server, workspace, long_run) == "v1"  # finished on the code it started on

        module.write_text("def broken(:\n")  # a syntax error: the previous code keeps serving
        wait_until(lambda: "reload failed" in log.read_text(), timeout=30, message="the failed reload")
        assert "SyntaxError" in log.read_text()
        assert run("which") == "v2"
        assert proc.poll() is None
    finally:
        stop_process(proc)

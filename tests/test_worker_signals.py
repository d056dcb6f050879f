"""Ctrl-C and a service manager's stop drain `coflux worker` (issue 17).

A terminal sends Ctrl-C's SIGINT to the whole foreground process group, `kill -TERM -PGID` and
systemd's default stop (KillMode=control-group) send SIGTERM to every process of the worker: its
pool processes get the signal too. They must leave it to the worker, which drains (the running
execution finishes with its value, the worker exits 0); a second signal stops it at once, leaving
no pool process behind. Real `coflux worker` processes, each the leader of its own process group
(as in a terminal), signalled as a terminal or systemd would, and by pid alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import APPS_DIR, Server, Worker, base_env, inspect_run, run_cli, wait_until

TASK_SECONDS = 3.0


def cli(server: Server, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return run_cli(*args, env=server.env(), timeout=timeout)


def submit_no_wait(server: Server, workspace: str, target: str, *args: object) -> str:
    result = cli(server, "submit", "--no-wait", "--workspace", workspace, target, *[json.dumps(a) for a in args])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def result_of(server: Server, workspace: str, run_id: str, timeout: float = 20) -> object:
    result = cli(server, "runs", "result", "--workspace", workspace, run_id, "--timeout", str(timeout),
                 timeout=timeout + 10)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def only_execution(server: Server, run_id: str) -> dict:
    run = inspect_run(lambda *a: cli(server, *a), run_id)
    executions = [e for step in run["steps"] for e in step["executions"]]
    assert len(executions) == 1, executions
    return executions[0]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (its pool, and multiprocessing's resource tracker)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and int(stat[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has ended (only its exit code is left)


def _stat(pid: int) -> list[str] | None:
    """[state, ppid, pgrp, ...] from /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def send(proc: subprocess.Popen, signum: int, to: str) -> None:
    """`to="group"`: the whole process group, as a terminal's Ctrl-C or systemd's stop; "pid": the
    worker alone."""
    if to == "group":
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)


def started(marks: Path) -> list[Path]:
    return list(marks.glob("*.start"))


@pytest.fixture()
def start_worker(server: Server, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Worker]]:
    """A one-slot `coflux worker signalapp` in a workspace of this test's own."""
    workspace = "signals-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    workers: list[Worker] = []

    def start(*extra: str) -> Worker:
        worker = Worker(server, ["signalapp"], concurrency=1, log=tmp_path / f"worker{len(workers)}.log",
                        extra=["--workspace", workspace, *extra]).start()
        workers.append(worker)
        worker.wait_registered()
        worker.workspace = workspace  # type: ignore[attr-defined]
        return worker

    yield start
    for worker in workers:
        worker.stop()


def start_slow_run(server: Server, worker: Worker, marks: Path, seconds: float) -> tuple[str, list[int]]:
    """Submit the slow workflow and wait until its body runs; the run and the worker's children."""
    marks.mkdir()
    run_id = submit_no_wait(server, worker.workspace, "signalapp/slow_write", str(marks), seconds)  # type: ignore[attr-defined]
    wait_until(lambda: started(marks), timeout=20, message="the task to start")
    children = children_of(worker.proc.pid)  # type: ignore[union-attr]
    body_pid = int(started(marks)[0].stem)
    assert body_pid in children, (body_pid, children)
    return run_id, children


@pytest.mark.parametrize(("signame", "to", "extra"), [
    ("SIGINT", "group", ()),  # Ctrl-C in a terminal
    ("SIGTERM", "group", ()),  # kill -TERM -PGID; systemd's stop (every process of the service)
    ("SIGTERM", "pid", ()),  # kill PID
    ("SIGINT", "group", ("--dev",)),  # Ctrl-C of a `coflux worker --dev` in a terminal
], ids=["ctrl-c-group", "sigterm-group", "sigterm-pid", "ctrl-c-group-dev"])
def test_first_signal_drains_the_running_task(server: Server, start_worker, tmp_path: Path,
                                              signame: str, to: str, extra: tuple[str, ...]) -> None:
    worker = start_worker(*extra)
    marks = tmp_path / "marks"
    run_id, children = start_slow_run(server, worker, marks, TASK_SECONDS)

    send(worker.proc, getattr(signal, signame), to)  # type: ignore[arg-type]
    wait_until(lambda: "draining" in worker.output(), timeout=5, message="the worker to say it drains")
    assert all(alive(pid) for pid in children), worker.output()  # the pool did not take the signal
    assert worker.proc.wait(TASK_SECONDS + 15) == 0, worker.output()  # type: ignore[union-attr]

    out = worker.output()
    assert "stopped" in out and "KeyboardInterrupt" not in out and "Traceback" not in out, out
    assert result_of(server, worker.workspace, run_id) == 42  # type: ignore[attr-defined]
    assert [p.read_text() for p in marks.glob("*.end")] == ["finished"]  # the side effect, once
    execution = only_execution(server, run_id)
    assert execution["attempt"] == 1 and execution["result"]["kind"] == "value", execution
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=5, message="the pool to be gone")


def test_second_group_signal_stops_at_once_and_leaves_no_pool(server: Server, start_worker, tmp_path: Path) -> None:
    worker = start_worker()
    run_id, children = start_slow_run(server, worker, tmp_path / "marks", 60.0)

    began = time.monotonic()
    os.killpg(worker.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
    wait_until(lambda: "draining" in worker.output(), timeout=5, message="the worker to say it drains")
    time.sleep(0.5)  # the signal reached the pool too: it must still be running the task
    assert all(alive(pid) for pid in children), worker.output()
    os.killpg(worker.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
    code = worker.proc.wait(10)  # type: ignore[union-attr]
    assert time.monotonic() - began < 6.0
    assert code != 0 and "stopping now" in worker.output(), worker.output()

    wait_until(lambda: not any(alive(pid) for pid in children), timeout=5, message="no pool process left")
    wait_until(lambda: (only_execution(server, run_id)["result"] or {}).get("kind") == "abandoned",
               timeout=5, interval=0.2, message="the execution to be reported abandoned")


def test_programs_a_task_starts_keep_the_usual_signals(server: Server, start_worker) -> None:
    """The pool process ignores SIGINT/SIGTERM with a handler, not SIG_IGN (which a program it
    starts would inherit): a task can still stop its own subprocess with `terminate()`."""
    worker = start_worker()
    result = cli(server, "submit", "--workspace", worker.workspace, "signalapp/terminate_child")  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == -signal.SIGTERM


STARTING_UP = '''
import os, signal, sys
from coflux.worker.headless import WorkerProcess

for signum in (signal.SIGINT, signal.SIGTERM):  # this stands for the worker's main thread: it drains
    signal.signal(signum, lambda *_: None)
process = WorkerProcess(["signalapp"], 0)
for _ in range(10):  # while the pool process starts up (imports, then installs its handlers)
    os.killpg(0, signal.SIGINT)
    os.killpg(0, signal.SIGTERM)
print(process.pipe.recv()[0] if process.pipe.poll(20) else "nothing", flush=True)
process.kill()
'''


def test_a_pool_process_starting_up_survives_group_signals() -> None:
    """Signals sent while a pool process starts up (before it has its handlers) wait, blocked,
    until it has them: a Ctrl-C just after a reload or a replacement does not kill the new one."""
    result = subprocess.run([sys.executable, "-c", STARTING_UP], cwd=APPS_DIR, env=base_env(), capture_output=True,
                            text=True, timeout=30, start_new_session=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and result.stdout.strip() == "ready", result.stdout + result.stderr

"""What the scheduling tests share: a worker class for tests/scheduling/apps, the `Sched` handle on
the session's server and main worker, and small helpers over run snapshots and log files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import APPS_DIR, Server, Worker, _spawn, base_env, run_cli, wait_until

SCHED_DIR = Path(__file__).resolve().parent
SCHED_APPS = SCHED_DIR / "apps"

MODULES = ["schedapps.cache", "schedapps.memo", "schedapps.deferral", "schedapps.retrying",
           "schedapps.recurring", "schedapps.waiting", "schedapps.timeouts", "schedapps.routing",
           "schedapps.cancelling", "schedapps.suspending", "schedapps.rerunning", "schedapps.spaces",
           "schedapps.showcase", "schedapps.overrides"]

if str(SCHED_APPS) not in sys.path:
    sys.path.insert(0, str(SCHED_APPS))


def sched_env(**extra: str) -> dict[str, str]:
    env = base_env(**extra)
    env["PYTHONPATH"] = os.pathsep.join([str(SCHED_APPS), str(APPS_DIR), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return env


class SchedWorker(Worker):
    """A `coflux worker` whose working directory and PYTHONPATH are tests/scheduling/apps."""

    def start(self) -> SchedWorker:
        args = [sys.executable, "-m", "coflux", "worker", "--server", self.server.url]
        if self.server.token:
            args += ["--token", self.server.token]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        self.proc = _spawn(args + self.extra + self.modules, cwd=SCHED_APPS, env=sched_env(), log=self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Sched:
    """The session's server and main worker, with shortcuts the tests use."""

    def __init__(self, server: Server, worker: SchedWorker, logs: Path) -> None:
        self.server = server
        self.worker = worker
        self.logs = logs
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------ clients

    def client(self, workspace: str = "default") -> Any:
        from coflux.client import Client

        if workspace not in self._clients:
            self._clients[workspace] = Client(self.server.url, self.server.token, workspace=workspace)
        return self._clients[workspace]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.server.env(), cwd=SCHED_APPS, timeout=timeout)

    # ------------------------------------------------------------ runs

    def submit(self, module: str, workflow: str, *args: Any, workspace: str = "default") -> Any:
        return self.client(workspace).submit(f"schedapps.{module}", workflow, *args)

    def run(self, module: str, workflow: str, *args: Any, workspace: str = "default", timeout: float = 30) -> tuple:
        """Submit and wait: (run id, result). Raises what the run raised."""
        run = self.submit(module, workflow, *args, workspace=workspace)
        return run.id, run.result(timeout=timeout)

    def inspect(self, run_id: str) -> dict:
        return self.client().get_run(run_id)

    def wait_outcome(self, execution_id: str, timeout: float = 30) -> dict:
        outcome = self.client().wait(execution_id, timeout)
        assert outcome["status"] != "pending", f"{execution_id} did not finish within {timeout} s"
        return outcome

    # ------------------------------------------------------------ HTTP API

    def post(self, path: str, body: dict | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.server.url + path, data=json.dumps(body or {}).encode(),
                                         method="POST")
        request.add_header("Authorization", f"token {self.server.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())

    # ------------------------------------------------------------ extra workers

    def start_worker(self, name: str, modules: list[str], *, concurrency: int = 2,
                     extra: list[str] | None = None) -> SchedWorker:
        worker = SchedWorker(self.server, modules, concurrency=concurrency, log=self.logs / f"{name}.log",
                             extra=extra)
        return worker.start()


# ------------------------------------------------------------------ helpers for the tests


def executions(run: dict, target: str) -> list[dict]:
    """Every execution (attempt) of every step of `target` in the run, in step/attempt order."""
    return [e for step in run["steps"] if step["target"] == target for e in step["executions"]]


def steps_of(run: dict, target: str) -> list[dict]:
    return [step for step in run["steps"] if step["target"] == target]


def kinds(run: dict, target: str) -> list[str | None]:
    return [e["result"]["kind"] if e["result"] else None for e in executions(run, target)]


def lines(path: Path, prefix: str | None = None) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if prefix is None or line.startswith(prefix)]


def process_gone(pid: int) -> bool:
    """True when the process no longer runs (gone, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def wait_lines(path: Path, n: int, prefix: str | None = None, timeout: float = 30) -> list[str]:
    return wait_until(lambda: len(lines(path, prefix)) >= n and lines(path, prefix), timeout,
                      message=f"{n} line(s) {prefix or ''} in {path.name}")


def wait_snapshot(sched: Sched, run_id: str, condition: Any, timeout: float = 30,
                  message: str = "the run to reach a state") -> dict:
    """Poll the run's snapshot until `condition(snapshot)` is truthy; return that snapshot."""
    found: dict = {}

    def check() -> bool:
        snapshot = sched.inspect(run_id)
        if condition(snapshot):
            found["run"] = snapshot
            return True
        return False

    wait_until(check, timeout, interval=0.05, message=message)
    return found["run"]


def no_new_lines(path: Path, count: int, seconds: float) -> bool:
    """Nothing more is written to `path` for `seconds` (used after a stop: short, bounded)."""
    time.sleep(seconds)
    return len(lines(path)) == count


class FakeWorker:
    """A worker that speaks the protocol from this process and never runs anything: it registers
    one workflow, receives executions, and can re-register its session without them (which
    abandons them at once, instead of after the server's reconnect grace)."""

    def __init__(self, sched: Sched, module: str, workflow: str, options: dict | None = None) -> None:
        from coflux.connection import Connection

        self.pushes: list[dict] = []
        self.connection = Connection(sched.server.url, sched.server.token, name="fake-worker",
                                     on_push=self.pushes.append).start()
        self.params = {"kind": "headless", "name": "fake", "workspace": "default", "concurrency": 1,
                       "targets": {module: {workflow: {"type": "workflow", "parameters": [],
                                                       "options": options or {}}}}}
        reply = self.connection.call("register", {**self.params, "session": None}, timeout=10)
        self.session, self.secret = reply["session"], reply.get("secret")

    def received(self) -> list[str]:
        return [p["execution"] for p in self.pushes if p.get("op") == "execute"]

    def wait_received(self, n: int, timeout: float = 10) -> list[str]:
        return wait_until(lambda: len(self.received()) >= n and self.received(), timeout,
                          message=f"{n} execution(s) to reach the fake worker")

    def reregister_without_running(self, started: bool = True) -> None:
        """Resume the session holding nothing. With `started`, it first says it began what it
        received (so that work may have run and is abandoned; work never started is re-queued)."""
        if started:
            for execution_id in self.received():
                self.connection.notify("started", {"execution": execution_id})
        self.connection.call("register", {**self.params, "session": self.session, "secret": self.secret,
                                          "running": []}, timeout=10)

    def close(self) -> None:
        self.connection.close()  # its session expires on the server after the reconnect grace

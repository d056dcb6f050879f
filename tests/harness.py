"""The test harness: real `coflux server` / `coflux worker` subprocesses and the CLI as a subprocess.

Test workflow modules live in tests/apps/ (`myapp.workflows`, `other.workflows`); that directory
is the working directory and on the PYTHONPATH of every worker started here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent
APPS_DIR = TESTS_DIR / "apps"
REPO_DIR = TESTS_DIR.parent
TOKEN = "test-token-3f9c"
READY_PREFIX = "coflux server ready at "

if str(APPS_DIR) not in sys.path:
    sys.path.insert(0, str(APPS_DIR))




def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: no COFLUX_* settings leak in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


_live: list[subprocess.Popen] = []


def _spawn(args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - closed when the process is stopped
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc._coflux_log = out  # type: ignore[attr-defined]
    _live.append(proc)
    return proc


def stop_process(proc: subprocess.Popen, *, hard: bool = False, timeout: float = 10.0) -> None:
    """Stop a process we started and everything in its process group (a worker's pool)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # The pool processes share the group; make sure none outlives the test.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout)
    log = getattr(proc, "_coflux_log", None)
    if log is not None and not log.closed:
        log.close()
    if proc in _live:
        _live.remove(proc)


def stop_all() -> None:
    """Kill every process the harness started that is still around."""
    for proc in list(_live):
        stop_process(proc, hard=True)


class Server:
    """A `coflux server` subprocess. `data_dir=None` leaves the flag out (default ./.coflux in
    `cwd`); `token=None` leaves --token out (the server generates one and prints it)."""

    def __init__(self, data_dir: Path | None, *, token: str | None = TOKEN, port: int = 0,
                 extra: list[str] | None = None, cwd: Path | None = None, log: Path | None = None) -> None:
        if data_dir is None and cwd is None:
            raise ValueError("a server without --data-dir needs a cwd")
        self.data_dir = data_dir
        self.token = token
        self.port = port
        self.extra = extra or []
        self.cwd = cwd or data_dir.parent  # type: ignore[union-attr]
        self.log = log or self.cwd / f"server-{data_dir.name if data_dir else 'default'}.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "coflux", "server", "--port", str(self.port)]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        if self.token is not None:
            args += ["--token", self.token]
        return args + self.extra

    def start(self, timeout: float = 30.0) -> Server:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = _spawn(self.args(), cwd=self.cwd, env=base_env(), log=self.log)

        def ready() -> str | None:
            text = self.log.read_text(errors="replace")[offset:]
            for line in text.splitlines():
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX):].strip()
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"coflux server exited with {self.proc.returncode}:\n{text}")
            return None

        self.url = wait_until(ready, timeout, message=f"the server to be ready ({self.log})")
        if self.port == 0:
            self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """kill -9 the server (no shutdown of any kind)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        stop_process(self.proc, hard=True)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def get(self, path: str, token: str | None = None, timeout: float = 10.0) -> Any:
        """GET a JSON API path (e.g. "api/workers") with the token."""
        request = urllib.request.Request(self.url + path)
        token = self.token if token is None else token
        if token:
            request.add_header("Authorization", f"token {token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def workers(self) -> list[dict]:
        return self.get("api/workers")["workers"]

    def env(self, **extra: str) -> dict[str, str]:
        env = base_env(COFLUX_SERVER=self.url, **extra)
        if self.token:
            env["COFLUX_TOKEN"] = self.token
        return env


class Worker:
    """A `coflux worker` subprocess for some of the test modules."""

    def __init__(self, server: Server, modules: list[str], *, concurrency: int | None = 2,
                 log: Path, extra: list[str] | None = None, cwd: Path = APPS_DIR,
                 env: dict[str, str] | None = None) -> None:
        self.server = server
        self.env = env or {}
        self.modules = modules
        self.concurrency = concurrency
        self.log = log
        self.extra = extra or []
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        args = [sys.executable, "-m", "coflux", "worker", "--server", self.server.url]
        if self.server.token:
            args += ["--token", self.server.token]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        self.proc = _spawn(args + self.extra + self.modules, cwd=self.cwd, env=base_env(**self.env), log=self.log)
        return self

    def session(self) -> dict | None:
        """This worker's connected session on the server, if it has registered."""
        for worker in self.server.workers():
            if worker["connected"] and worker["name"].endswith(f":{self.proc.pid}"):  # type: ignore[union-attr]
                return worker
        return None

    def wait_registered(self, timeout: float = 60.0) -> dict:
        def registered() -> dict | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"coflux worker exited with {self.proc.returncode}:\n{self.output()}")
            return self.session()

        return wait_until(registered, timeout, interval=0.05, message=f"worker {self.modules} to register")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run `python -m coflux ARGS...` and capture its output (text)."""
    return subprocess.run([sys.executable, "-m", "coflux", *args], env=env, cwd=cwd or APPS_DIR,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def inspect_run(cli: Callable[..., subprocess.CompletedProcess], run_id: str) -> dict:
    """The run as `coflux runs inspect R -o json` reports it."""
    result = cli("runs", "inspect", "--no-wait", run_id, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def steps_by_target(run: dict) -> dict[str, list[dict]]:
    """target name -> the run's steps of that target, in step order."""
    out: dict[str, list[dict]] = {}
    for step in run["steps"]:
        out.setdefault(step["target"], []).append(step)
    return out

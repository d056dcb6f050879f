"""The `process` launcher: `coflux worker` as a local process in the pool's `directory`.

Its output goes to `<data dir>/launches/<launch>.log` (the log tail comes from there, also
after a server restart). It runs in a process group of its own: a stop sends SIGTERM to the
group (the worker drains: finishes what runs, hands back what it queued), and SIGKILL after
the drain timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from .base import LaunchError, LaunchSpec, tail


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22): a pid reused by
    another process has another."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return fields[19]


class ProcessLauncher:
    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen] = {}  # the ones this server process started
        self._lock = threading.Lock()

    def start(self, spec: LaunchSpec) -> dict:
        directory = spec.config.get("directory", "")
        if not os.path.isdir(directory):
            raise LaunchError(f"directory {directory!r} does not exist")
        python = spec.config.get("python") or sys.executable
        os.makedirs(spec.log_dir, exist_ok=True)
        log_path = os.path.join(spec.log_dir, f"{spec.launch_id}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
        env.update(spec.worker_env())
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen([python, "-m", "coflux", *spec.worker_args()], cwd=directory, env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            except OSError as exc:
                raise LaunchError(f"cannot start {python}: {exc.strerror or exc}") from None
        with self._lock:
            self._children[proc.pid] = proc
        handle = {"pid": proc.pid, "start": _start_time(proc.pid), "log": log_path}
        # Beside the log: a server killed before it recorded the handle finds the process again.
        with open(os.path.join(spec.log_dir, f"{spec.launch_id}.pid"), "w") as f:
            json.dump(handle, f)
        return handle

    def find(self, launch_id: str, log_dir: str) -> dict | None:
        """The handle of a launch whose start was not recorded (the server died right after it)."""
        try:
            with open(os.path.join(log_dir, f"{launch_id}.pid")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def alive(self, handle: dict) -> bool:
        pid = handle.get("pid")
        if not pid:
            return False
        with self._lock:
            child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        started = _start_time(pid)
        return started is not None and started == handle.get("start")

    def wait(self, handle: dict) -> int | None:
        pid = handle["pid"]
        with self._lock:
            child = self._children.get(pid)
        if child is not None:
            code = child.wait()
            with self._lock:
                self._children.pop(pid, None)
            return code
        while self.alive(handle):  # not our child (a server restarted since): no exit code to read
            time.sleep(0.5)
        return None

    def stop(self, handle: dict, drain_timeout: float) -> None:
        pid = handle.get("pid")
        if not pid or not self.alive(handle):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + drain_timeout + 5.0  # the worker's own drain timeout, and its exit
        while time.monotonic() < deadline:
            if not self.alive(handle):
                return
            time.sleep(0.1)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_tail(self, handle: dict) -> str:
        path = handle.get("log")
        if not path:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 8000))
                return tail(f.read().decode("utf-8", "replace"))
        except OSError:
            return ""

    def cleanup(self, handle: dict) -> None:
        pid = handle.get("pid")
        if pid:  # pool processes of the worker that outlived it
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

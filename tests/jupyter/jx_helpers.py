"""Helpers for the Jupyter-side tests (a unique module name: test directories are not packages)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import time

from jupyter_server.auth import Authorizer

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent


# ---------------------------------------------------------------------- auth

class ReadOnlyAuthorizer(Authorizer):
    """Like JupyterHub's read-only access: users may look, not run code."""

    def is_authorized(self, handler, user, action: str, resource: str) -> bool:
        return action == "read"


# ---------------------------------------------------------------------- kernels

class KernelSession:
    """A kernel started by the Jupyter server, driven like a notebook front end."""

    def __init__(self, client) -> None:
        self.client = client
        self.comm_msgs: list[dict] = []  # widget updates, whichever cell they were sent under

    async def run(self, code: str, timeout: float = 60) -> dict:
        """Execute a cell; return its stdout, results (text/plain), display data and error."""
        msg_id = self.client.execute(code)
        out: dict = {"stdout": "", "stderr": "", "results": [], "displays": [], "comms": [], "error": None}
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}; so far {out}")
            msg = await self.client.get_iopub_msg(timeout=remaining)
            if msg["msg_type"] == "comm_msg":
                self.comm_msgs.append(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "execute_result":
                out["results"].append(content["data"].get("text/plain", ""))
            elif kind == "display_data":
                out["displays"].append(content["data"])
            elif kind == "comm_open":
                out["comms"].append(content)
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                return out

    async def wait_comm_msg(self, predicate, timeout: float = 10) -> dict:
        """Read IOPub until a comm_msg (a widget update) matching `predicate` has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.comm_msgs:
                if predicate(msg["content"]):
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching widget update")
            try:
                msg = await self.client.get_iopub_msg(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg":
                self.comm_msgs.append(msg)

    async def ok(self, code: str, timeout: float = 60) -> dict:
        out = await self.run(code, timeout)
        assert out["error"] is None, out["error"]
        return out


async def start_kernel(serverapp) -> tuple[str, KernelSession]:
    km = serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    return kernel_id, KernelSession(client)


# ---------------------------------------------------------------------- subprocesses

def env_for_subprocess(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def own_host_name_possible() -> bool:
    """Whether a process can be given a host name of its own here (a UTS namespace: root, or a
    container that allows it), as a worker on another machine would have."""
    try:
        return subprocess.run(["unshare", "--uts", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def start_worker(url: str, token: str, *modules: str, extra: tuple[str, ...] = (),
                 host_name: str | None = None) -> subprocess.Popen:
    """A headless `coflux worker` subprocess for modules in this directory (output to a temp file,
    so a chatty worker never blocks on a full pipe); `extra`: more command-line flags. `host_name`:
    it runs under that host name, in a UTS namespace of its own (`unshare` execs, so the pid is
    the worker's)."""
    log = tempfile.TemporaryFile(mode="w+")
    command = [sys.executable, "-m", "coflux", "worker", "--server", url, "--token", token, "--concurrency", "2",
               *extra, *modules]
    if host_name is not None:
        command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host_name, *command]
    proc = subprocess.Popen(command, cwd=HERE, env=env_for_subprocess(), stdout=log, stderr=subprocess.STDOUT,
                            text=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop_process(proc: subprocess.Popen) -> str:
    """Terminate (then kill) a subprocess we started; return its output."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    log = getattr(proc, "log", None)
    if log is not None:
        log.seek(0)
        return log.read()
    return proc.stdout.read() if proc.stdout else ""


async def wait_until(predicate, timeout: float = 20, interval: float = 0.05) -> None:
    """Poll `predicate` while letting the event loop (and an in-process server) run."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)

"""Helpers for the browser tests: a JupyterLab subprocess, notebooks, gate files, Chromium flags.

(A unique module name: test directories are not packages, so `helpers` could clash.)
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Flags that work for Debian's chromium as root in a container (jupyter-notes.md §5.3).
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Set by .ci/run: there, a missing browser is a failure, not a skip.
REQUIRE_ENV = "COFLUX_UI_REQUIRED"
# Where screenshots go (default: a directory under pytest's temporary directory).
ARTIFACTS_ENV = "COFLUX_UI_ARTIFACTS"


def missing_requirements() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- JupyterLab in the page
# JavaScript run in the page (JupyterLab exposes itself as window.jupyterapp).

def notebook_panel_js(path: str) -> str:
    """A page function returning the open notebook panel of `path`, or null."""
    return f"""() => (window.jupyterapp && window.jupyterapp.shell && Array.from(window.jupyterapp.shell.widgets("main"))
  .find((w) => w.context && w.context.path === "{path}")) || null"""


def kernel_status_js(path: str) -> str:
    """A page function returning the status of `path`'s kernel ("idle", "busy", ...), or null."""
    return f"""() => {{
  const panel = ({notebook_panel_js(path)})();
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}}"""


# The cells' input prompts as shown: "[*]:" while a cell runs, "[4]:" once it ran.
CELL_PROMPTS_JS = """() => Array.from(document.querySelectorAll(".jp-Notebook .jp-Cell .jp-InputPrompt"))
  .map((p) => p.textContent.trim())"""


def wait_for_idle_kernel(page: Any, path: str, timeout_ms: float) -> None:
    """Wait until the notebook `path` is open in the page with its kernel started and idle."""
    page.wait_for_function(f"() => ({kernel_status_js(path)})() === 'idle'", timeout=timeout_ms)


# ---------------------------------------------------------------------- notebooks

def write_notebook(path: pathlib.Path, cells: list[str]) -> None:
    """A python3 notebook of code cells (nbformat 4.5, so every cell needs an id)."""
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [{"cell_type": "code", "id": f"cell{i}", "metadata": {}, "execution_count": None,
                   "outputs": [], "source": source} for i, source in enumerate(cells)],
    }
    path.write_text(json.dumps(nb, indent=1))


class Gates:
    """Files the notebook's code waits for: the test opens them to let a step (or cell) go on."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def open(self, name: str) -> None:
        tmp = self.directory / f".{name}.tmp"
        tmp.write_text("open")
        tmp.replace(self.directory / name)  # atomic: the reader never sees a half-made gate


# ---------------------------------------------------------------------- JupyterLab

class JupyterLab:
    """`python -m jupyterlab` in a subprocess with fresh config/runtime dirs; the coflux server
    extension is enabled by the installed jupyter-config, as for a user."""

    def __init__(self, base: pathlib.Path, token: str = "ui-test-token", port: int = 0) -> None:
        self.base = base
        self.token = token
        self.port = port  # 0: a free one; kept after start, so a restart comes back on it
        self.root = base / "root"
        self.log_path = base / "jupyterlab.log"
        self.url = ""  # http://127.0.0.1:PORT/ once started
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COFLUX_", "JUPYTER", "JPY_"))}
        env.update({
            "JUPYTER_CONFIG_DIR": str(self.base / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.base / "runtime"),
            "IPYTHONDIR": str(self.base / "ipython"),  # no user profile or startup files
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def _configure(self) -> None:
        # No "news" toast over the notebook, no update checks (the machine may be offline).
        labconfig = self.base / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps({
            "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        settings = self.base / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(json.dumps(
            {"fetchNews": "false", "checkForUpdates": False}))

    def start(self, timeout: float = 90) -> JupyterLab:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.base / "runtime").mkdir(parents=True, exist_ok=True)
        self._configure()
        port = self.port = self.port or free_port()
        self.url = ""
        log = open(self.log_path, "a")  # a file, so a chatty server never blocks on a full pipe
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
             "--LabApp.expose_app_in_browser=True",
             "--JupyterNotebookApp.expose_app_in_browser=True", "--ServerApp.open_browser=False"],
            cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            if not self.url:
                self.url = self._url_from_runtime_dir()  # the real port, even after a port retry
            if self.url and self._ready():
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab was not ready within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)  # polling interval for the server to come up

    def _url_from_runtime_dir(self) -> str:
        assert self.proc is not None
        info = self.base / "runtime" / f"jpserver-{self.proc.pid}.json"
        try:
            data = json.loads(info.read_text())
        except (OSError, ValueError):
            return ""
        return data["url"].rstrip("/") + "/"

    def _ready(self) -> bool:
        # The coflux routes answer once the extension (and its orchestrator) has started.
        request = urllib.request.Request(self.url + "coflux/api/health",
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """kill -9 Jupyter and everything it started (its process group): no shutdown at all."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(30)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.poll() is None:
            # SIGTERM: Jupyter shuts its kernels down (and the coflux orchestrator) before exiting.
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def artifacts_dir(default: pathlib.Path) -> pathlib.Path:
    directory = pathlib.Path(os.environ.get(ARTIFACTS_ENV) or default)
    directory.mkdir(parents=True, exist_ok=True)
    return directory

"""A real `jupyter server` process: the extension is enabled by the installed config file, started
by Jupyter itself, serves kernels started through the sessions API, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from jupyter_client import BlockingKernelClient
from jx_helpers import env_for_subprocess, stop_process

import coflux as cf
from coflux.client import Client

JUPYTER_TOKEN = "jupyter-token"
COFLUX_TOKEN = "internal-token"


class JupyterServer:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp
        self.runtime = tmp / "runtime"
        root = tmp / "root"
        root.mkdir()
        self.log_path = tmp / "server.log"
        env = env_for_subprocess(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
                                 JUPYTER_RUNTIME_DIR=str(self.runtime), HOME=str(tmp))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             "--ServerApp.port=0", f"--IdentityProvider.token={JUPYTER_TOKEN}", "--ServerApp.base_url=/x@y/",
             f"--ServerApp.root_dir={root}", f"--CofluxExtension.token={COFLUX_TOKEN}"],
            cwd=root, env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        info = self.runtime / f"jpserver-{self.proc.pid}.json"
        deadline = time.monotonic() + 60
        while not info.exists() or "coflux: orchestrator running" not in self.log:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_process(self.proc)
                pytest.fail("jupyter server did not start:\n" + self.log)
            time.sleep(0.1)
        self.url = json.loads(info.read_text())["url"]  # http://127.0.0.1:PORT/x@y/

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def request(self, path: str, method: str = "GET", body: dict | None = None, token: str = JUPYTER_TOKEN) -> dict:
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"token {token}"},
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    server = JupyterServer(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        stop_process(server.proc)


def execute(kc: BlockingKernelClient, code: str) -> str:
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: outputs.append(msg))
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(m["content"].get("text", "") or m["content"].get("data", {}).get("text/plain", "")
                   for m in outputs if m["msg_type"] in ("stream", "execute_result"))


outputs: list[dict] = []


def test_enabled_by_installed_config_and_started_by_jupyter(jupyter):
    assert "coflux_jupyter | extension was successfully loaded" in jupyter.log
    assert f"coflux: orchestrator running at {jupyter.url}coflux/" in jupyter.log
    assert jupyter.request("coflux/api/health")["ok"] is True
    assert jupyter.request("coflux/api/health", token=COFLUX_TOKEN)["ok"] is True  # c.CofluxExtension.token
    with pytest.raises(urllib.error.HTTPError) as e:
        jupyter.request("coflux/api/health", token="wrong")
    assert e.value.code == 403


def test_notebook_workflow_submitted_from_outside(jupyter):
    # A kernel for a notebook, as JupyterLab starts it: through the sessions API.
    session = jupyter.request("api/sessions", "POST", {"path": "sales report.ipynb", "type": "notebook",
                                                      "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    kc = BlockingKernelClient(connection_file=str(jupyter.runtime / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        outputs.clear()
        text = execute(kc, "%load_ext coflux")
        # The module is named after the notebook.
        assert f"coflux: kernel attached to {jupyter.url}coflux/ as module 'sales_report'" in text
        execute(kc, "import coflux as cf\n@cf.workflow()\ndef double(x: int) -> int:\n    return 2 * x\n")

        # The notebook's workflow gets registered (the kernel declares it without blocking the
        # cell) and can then be run from anywhere, e.g. a script.
        deadline = time.monotonic() + 10
        while not any(w["module"] == "sales_report" and w["name"] == "double"
                      for w in jupyter.request("coflux/api/workflows")["workflows"]):
            assert time.monotonic() < deadline, "the notebook's workflow was not registered"
            time.sleep(0.05)
        with Client(jupyter.url + "coflux/", COFLUX_TOKEN) as client:
            assert client.submit("sales_report", "double", 21).result(timeout=30) == 42

        # A run still executing in the kernel when Jupyter restarts it is abandoned at once (from
        # Jupyter's kernel_actions event), not after the 30 s reconnect grace period.
        execute(kc, "import time\n@cf.workflow()\ndef stuck() -> None:\n    time.sleep(300)\n")
        with Client(jupyter.url + "coflux/", COFLUX_TOKEN) as client:
            deadline = time.monotonic() + 10
            while not any(w["name"] == "stuck" for w in jupyter.request("coflux/api/workflows")["workflows"]):
                assert time.monotonic() < deadline, "stuck was not registered"
                time.sleep(0.05)
            run = client.submit("sales_report", "stuck")
            deadline = time.monotonic() + 10
            while not client.get_run(run.id)["steps"][0]["executions"][0]["assigned_at"]:
                assert time.monotonic() < deadline, "stuck was not assigned to the kernel"
                time.sleep(0.05)
            restarted = time.monotonic()
            jupyter.request(f"api/kernels/{kernel_id}/restart", "POST", {})
            with pytest.raises(cf.ExecutionAbandoned):
                run.result(timeout=20)
            assert time.monotonic() - restarted < 15  # the grace period is 30 s
        deadline = time.monotonic() + 20
        while f"coflux: kernel {kernel_id} restarted" not in jupyter.log:
            assert time.monotonic() < deadline, jupyter.log[-3000:]
            time.sleep(0.1)
        kc.wait_for_ready(timeout=60)  # so the shutdown test does not interrupt a booting kernel
    finally:
        kc.stop_channels()


def test_sigterm_stops_the_orchestrator(jupyter):
    jupyter.proc.send_signal(signal.SIGTERM)
    assert jupyter.proc.wait(30) == 0
    log = jupyter.log
    # Extensions stop before kernels are shut down, and cleanly.
    assert log.index("coflux: stopping the orchestrator") < log.index("Kernel shutdown")
    assert "Traceback" not in log and "error while stopping" not in log
    assert os.path.exists(jupyter.tmp / "root" / ".coflux" / "coflux.db")

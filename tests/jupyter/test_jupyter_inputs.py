"""notebooks/approval.ipynb executed top to bottom (nbclient, a real kernel) against a `coflux
server`, while the test answers its prompts as a person would: through the HTTP routes the
browser's form posts to (`POST api/inputs/<id>/respond`)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import nbformat
from jx_helpers import REPO, env_for_subprocess
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "approval.ipynb"
LABELS = {
    "Arrived a day late, but works perfectly.": {"sentiment": "positive", "topic": "shipping", "confidence": 4},
    "The support team never answered my email.": {"sentiment": "negative", "topic": "support", "confidence": 5},
    "Exactly as described.": {"sentiment": "positive", "topic": "product", "confidence": 3},
}


def call(url: str, token: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pending(url: str, token: str, count: int, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inputs = call(url, token, "api/inputs")["inputs"]
        if len(inputs) >= count:
            return inputs
        time.sleep(0.1)
    raise AssertionError(f"expected {count} pending inputs, have {inputs}")


def test_approval_notebook_runs_with_answers_given_over_http(coflux_server, tmp_path):
    url, token = coflux_server
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            client.execute(env=env_for_subprocess(COFLUX_SERVER=url, COFLUX_TOKEN=token))
        except BaseException as exc:  # reported by the test's thread
            failure.append(exc)

    thread = threading.Thread(target=execute)
    thread.start()
    try:
        labels = pending(url, token, 3)
        assert {i["title"] for i in labels} == {"Label"}
        for asked in labels:
            text = call(url, token, f"api/inputs/{asked['id']}")["placeholders"]["text"]["v"]
            assert call(url, token, f"api/inputs/{asked['id']}/respond", {"value": LABELS[text]})["state"] == "responded"
        (approval,) = pending(url, token, 1)
        shown = call(url, token, f"api/inputs/{approval['id']}")
        assert shown["title"] == "Publish labels" and shown["actions"] == ["Publish", "Discard"]
        assert shown["schema"] is None and shown["placeholders"]["positive"] == {"v": 2}
        call(url, token, f"api/inputs/{approval['id']}/respond", {"value": None})
    finally:
        thread.join(180)
    assert not failure, failure
    last = nb.cells[-1]
    outputs = [o for o in last.outputs if "data" in o]
    assert outputs and outputs[0]["data"]["text/plain"] == "'stored 3 labels'", last.outputs
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{output.get('ename')}: {output.get('evalue')}"


# ---------------------------------------------------------------------- a kernel restart

def ready(kc) -> None:
    """Until the kernel answers: a kernel whose heartbeat has not started yet counts as dead."""
    deadline = time.monotonic() + 90
    while True:
        try:
            kc.wait_for_ready(timeout=20)
            return
        except RuntimeError:
            assert time.monotonic() < deadline, "the kernel never became ready"
            time.sleep(0.5)


def test_a_kernel_restart_while_a_prompt_waits_loses_nothing(tmp_path):
    """A notebook's workflow suspended on a prompt (cf.suspense): the kernel is restarted, the
    user runs the cells again, somebody answers, and the workflow resumes in the new kernel."""
    from jupyter_client import BlockingKernelClient
    from test_jupyter_server_process import COFLUX_TOKEN, JupyterServer, execute, outputs

    from coflux.client import Client

    jupyter = JupyterServer(tmp_path)
    kc = None
    try:
        session = jupyter.request("api/sessions", "POST", {"path": "patience.ipynb", "type": "notebook",
                                                          "kernel": {"name": "python3"}})
        kernel_id = session["kernel"]["id"]
        kc = BlockingKernelClient(connection_file=str(jupyter.runtime / f"kernel-{kernel_id}.json"))
        kc.load_connection_file()
        kc.start_channels()
        ready(kc)
        cells = ["%load_ext coflux",
                 "import coflux as cf\n"
                 "when = cf.Prompt('Resume after {what}?', model=int, title='Restart')\n"
                 "@cf.workflow()\n"
                 "def patient(what: str) -> int:\n"
                 "    handle = when.submit(what=what)\n"
                 "    with cf.suspense():\n"
                 "        return handle.result() * 2\n"]
        outputs.clear()
        for cell in cells:
            execute(kc, cell)
        url = jupyter.url + "coflux/"

        def registered() -> bool:
            return any(w["name"] == "patient" for w in jupyter.request("coflux/api/workflows")["workflows"])

        deadline = time.monotonic() + 20
        while not registered():
            assert time.monotonic() < deadline, "patient was not registered"
            time.sleep(0.05)
        with Client(url, COFLUX_TOKEN) as client:
            run = client.submit("patience", "patient", "a restart")
            (asked,) = pending(url, COFLUX_TOKEN, 1)
            jupyter.request(f"api/kernels/{kernel_id}/restart", "POST", {})
            deadline = time.monotonic() + 30
            while f"coflux: kernel {kernel_id} restarted" not in jupyter.log:
                assert time.monotonic() < deadline, jupyter.log[-3000:]
                time.sleep(0.1)
            ready(kc)
            for cell in cells:  # the user runs the notebook's cells again
                execute(kc, cell)
            assert call(url, COFLUX_TOKEN, f"api/inputs/{asked['id']}/respond", {"value": 21})["state"] == "responded"
            assert run.result(timeout=60) == 42
        assert len(call(url, COFLUX_TOKEN, f"api/inputs?run={run.id}&state=all")["inputs"]) == 1
    finally:
        if kc is not None:
            kc.stop_channels()
        from jx_helpers import stop_process

        stop_process(jupyter.proc)

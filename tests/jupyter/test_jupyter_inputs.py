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

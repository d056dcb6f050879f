"""The example notebooks execute top to bottom (nbclient, a real kernel) against a `coflux server`."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from jx_helpers import REPO, env_for_subprocess
from nbclient import NotebookClient

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def execute(path: pathlib.Path, url: str, token: str, workdir: pathlib.Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    # `env` replaces the kernel's environment: pass everything plus the server's URL and token.
    client.execute(env=env_for_subprocess(COFLUX_SERVER=url, COFLUX_TOKEN=token))
    return nb


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, coflux_server, tmp_path):
    nb = execute(path, *coflux_server, tmp_path)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: {output.get('ename')}: {output.get('evalue')}"


def test_demo_outputs(coflux_server, tmp_path):
    nb = execute(REPO / "notebooks" / "demo.ipynb", *coflux_server, tmp_path)
    by_source = {cell.source: cell for cell in nb.cells if cell.cell_type == "code"}

    assert "coflux: kernel attached to " + coflux_server[0] in text_of(by_source["%load_ext coflux"])
    assert text_of(by_source["run.result()"]) == "10"
    assert text_of(by_source["fan.result()"]) == "140"
    errors = text_of(next(c for s, c in by_source.items() if "except ValueError" in s))
    assert "caught ValueError: could not convert string to float: 'two'" in errors
    assert "also a cf.ExecutionError: True" in errors

    # Displayed runs are live widgets; the saved widget state shows the finished runs.
    shown = [c for s, c in by_source.items() if s.rstrip().endswith(("\nrun", "\nfan"))]
    assert len(shown) == 2
    for cell in shown:
        (output,) = cell.outputs
        assert WIDGET_MIME in output["data"] and output["data"]["text/plain"].startswith("<RunWidget R")
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    runs = {m["state"]["target"]: m["state"] for m in states.values() if m["state"].get("run_id")}
    assert runs["process"]["status"] == "value"
    assert [s["target"] for s in runs["process"]["steps"]] == ["process", "fetch", "count_words"]
    assert runs["sum_of_squares"]["status"] == "value"
    assert [s["status"] for s in runs["sum_of_squares"]["steps"]] == ["value"] * 9

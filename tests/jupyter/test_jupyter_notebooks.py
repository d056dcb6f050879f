"""The example notebooks execute top to bottom (nbclient, a real kernel) against a `coflux server`,
and what they show is checked: values, log lines, assets, the metrics figure, and the model state
of every displayed run view (which run, which part, where its front-end finds the API)."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from jx_helpers import REPO, env_for_subprocess
from nbclient import NotebookClient

from coflux import widgets

# Notebooks whose runs ask a person (metadata coflux.needs_answers) are executed by the tests that
# answer them (tests/jupyter/test_jupyter_inputs.py): here nobody would.
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb")
                   if not nbformat.read(p, as_version=4).metadata.get("coflux", {}).get("needs_answers"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


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

    # Displayed runs are live views: the full view for `run` and `fan`, the graph alone for `fan.graph`.
    url, token = coflux_server
    views = shown_views(nb, by_source, ["run = process.run", "fan = sum_of_squares.run", "fan.graph"])
    assert views[0]["run_id"] != views[1]["run_id"] and views[1]["run_id"] == views[2]["run_id"]
    if widgets.built():
        assert [v["part"] for v in views] == ["", "", "graph"]
        for view in views:  # a headless server: its URL and token, and its Studio link
            assert (view["api_base"], view["token"]) == (url, token)
            assert view["studio_url"] == f"{url}#/runs/{view['run_id']}"
    else:  # the status table, following the runs from the kernel
        assert views[0]["status"] == "value"
        assert [s["target"] for s in views[0]["steps"]] == ["process", "fetch", "count_words"]
        assert [s["status"] for s in views[1]["steps"]] == ["value"] * 9


def widget_states(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """model id -> the widget's saved state (nbclient stores it in the notebook's metadata)."""
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return {model_id: model["state"] for model_id, model in states.items()}


def shown_views(nb: nbformat.NotebookNode, by_source: dict, starts: list[str]) -> list[dict]:
    """The state of the one run view each of these cells displayed."""
    states = widget_states(nb)
    found = []
    for start in starts:
        cell = by_source.get(start) or next(c for s, c in by_source.items() if start in s)
        (output,) = [o for o in cell.outputs if WIDGET_MIME in o.get("data", {})]
        assert output["data"]["text/plain"].startswith(("<", "coflux run R")), output["data"]["text/plain"]
        state = states[output["data"][WIDGET_MIME]["model_id"]]
        assert state["run_id"].startswith("R")
        found.append(state)
    return found


def test_pipeline_outputs(coflux_server, tmp_path):
    nb = execute(REPO / "notebooks" / "pipeline.ipynb", *coflux_server, tmp_path)
    by_source = {cell.source: cell for cell in nb.cells if cell.cell_type == "code"}
    assert text_of(by_source["report = run.result()\nsorted(entry.path for entry in report.entries)"]) == \
        "['pipeline_output/totals.csv', 'pipeline_output/totals.png']"
    table = text_of(next(c for s, c in by_source.items() if "totals.csv\"].read()" in s)).split()
    assert table[0] == "city,total" and len(table) == 6  # five cities
    assert sum(float(row.split(",")[1]) for row in table[1:]) > 0
    png = (tmp_path / "pipeline_output" / "totals.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in png[:16] and png.endswith(b"IEND\xaeB`\x82")
    logs = text_of(next(c for s, c in by_source.items() if s.startswith("for line in run.client.logs")))
    lines = logs.splitlines()
    assert lines[0] == "info     extracted 300 orders from the demo shop"
    assert any(line.startswith("warning  dropped ") and line.endswith(" orders under 10.0") for line in lines)
    assert any(line.startswith("info     totals per city: {'Accra': ") for line in lines)
    assert any(line.startswith("info     wrote ") and line.endswith(" with 2 files") for line in lines)

    views = shown_views(nb, by_source, ["run = pipeline.run", "run.assets", "run.logs"])
    assert len({v["run_id"] for v in views}) == 1
    if widgets.built():
        assert [v["part"] for v in views] == ["", "assets", "logs"]
        assert all(v["api_base"] == coflux_server[0] for v in views)


def test_training_outputs(coflux_server, tmp_path):
    nb = execute(REPO / "notebooks" / "training.ipynb", *coflux_server, tmp_path)
    by_source = {cell.source: cell for cell in nb.cells if cell.cell_type == "code"}
    best = text_of(by_source["best = run.result()\nbest"])
    assert best.startswith("{'lr': 0.3, 'loss': ")
    figure_cell = next(c for s, c in by_source.items() if s.startswith("fig = run.metrics_figure()"))
    assert text_of(figure_cell).startswith("['accuracy', 'epochs', 'loss'] 9 traces")  # 3 metrics x 3 runs
    (shown,) = [o for o in figure_cell.outputs if PLOTLY_MIME in o.get("data", {})]
    figure = shown["data"][PLOTLY_MIME]
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert sorted(titles) == ["epochs", "training"]  # one chart per metric group (the progress bars have none)
    epochs = [t for t in figure["data"] if t["name"].startswith("epochs")]
    assert len(epochs) == 3 and all(t["fill"] == "tozeroy" and max(t["y"]) == 25 for t in epochs)
    losses = [t for t in figure["data"] if t["name"].startswith("loss")]
    assert all(len(t["x"]) == 25 and t["y"][-1] < t["y"][0] for t in losses)  # every epoch, decreasing

    views = shown_views(nb, by_source, ["run = sweep.run", "run.metrics"])
    assert views[0]["run_id"] == views[1]["run_id"]
    if widgets.built():
        assert [v["part"] for v in views] == ["", "metrics"]

"""The notebook widgets without a browser: RunView's traits (which run, where the API is, which
part, the Studio link) for a headless server and for the Jupyter mount, the parts and the metrics
figure of a real run; and RunWidget (the status table it falls back to), fed events directly and
following a real run on a `coflux server`."""

from __future__ import annotations

import re
import time
import urllib.parse

import plotly.graph_objects as go
import pytest
import traitlets
from jx_helpers import start_kernel, start_worker, stop_process

from coflux import widgets
from coflux.client import Client
from coflux.widgets import RunView, RunWidget, metrics_figure

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
RUN_MIME = "application/vnd.coflux.run+json"


def snapshot(run_id: str, *steps: dict) -> dict:
    """A run in flight: the run's own status is the server's (`status`, ...), not the steps'."""
    return {"id": run_id, "module": "m", "target": "wf", "steps": list(steps), "status": "running",
            "state": "running", "started_at": 9.0, "finished_at": None, "duration": None,
            "execution": f"{run_id}:1:1"}


def step(run_id: str, number: int, target: str, *executions: dict, parent: str | None = None) -> dict:
    return {"id": f"{run_id}:{number}", "number": number, "module": "m", "target": target,
            "type": "workflow" if number == 1 else "task", "parent": parent, "executions": list(executions)}


def test_events_merge_into_steps():
    w = RunWidget()
    w.run_id = "R1"
    # Events that arrive before the snapshot has been read are buffered, then applied.
    w.handle_event({"type": "started", "execution": "R1:2:1", "at": 10.0})
    w.load_snapshot(snapshot("R1", step("R1", 1, "wf", {"id": "R1:1:1", "started_at": 9.0}),
                             step("R1", 2, "t", {"id": "R1:2:1", "assigned_at": 9.5}, parent="R1:1:1")))
    assert (w.module, w.target, w.status) == ("m", "wf", "running")
    assert [(s["target"], s["status"]) for s in w.steps] == [("wf", "running"), ("t", "running")]

    w.handle_event({"type": "step", "step": "R1:3", "number": 3, "execution": "R1:3:1", "parent": "R1:1:1",
                    "module": "m", "target": "u", "kind": "task"})
    w.handle_event({"type": "result", "execution": "R1:3:1", "kind": "error", "at": 11.0,
                    "error": {"type": "builtins.KeyError", "message": "'k'"}})
    w.handle_event({"type": "assigned", "execution": "R1:3:1"})  # late: never moves a step back
    w.handle_event({"type": "result", "execution": "R1:2:1", "kind": "value", "at": 10.5})
    w.flush()
    by_target = {s["target"]: s for s in w.steps}
    assert by_target["u"]["status"] == "error" and by_target["u"]["error"] == "KeyError: 'k'"
    assert by_target["t"]["status"] == "value"
    assert by_target["t"]["finished_at"] - by_target["t"]["started_at"] == 0.5

    # A retry is a new attempt of the same step: the row follows it.
    w.handle_event({"type": "assigned", "execution": "R1:3:2"})
    w.handle_event({"type": "result", "execution": "R1:1:1", "kind": "value", "at": 12.0})
    w.handle_event({"type": "run_result", "run": "R1", "kind": "value", "at": 12.0, "status": "value",
                    "state": "succeeded", "started_at": 9.0, "finished_at": 12.0, "duration": 3.0,
                    "execution": "R1:1:1"})  # the server's word on the run, after its root's result
    w.flush()
    by_target = {s["target"]: s for s in w.steps}
    assert (by_target["u"]["execution"], by_target["u"]["status"], by_target["u"]["error"]) == \
        ("R1:3:2", "assigned", "")
    assert w.status == "value"
    assert repr(w) == "<RunWidget R1 m/wf: value (1 assigned, 2 value)>"

    # What the front end gets: the ESM and the traits, with no external imports.
    state = w.get_state()
    assert "export default" in state["_esm"] and "import " not in state["_esm"]
    assert state["steps"] == w.steps and state["status"] == "value"


def test_trait_updates_are_reassignments():
    w = RunWidget()
    w.run_id = "R2"
    w.load_snapshot(snapshot("R2"))
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="steps")
    w.handle_event({"type": "step", "step": "R2:1", "number": 1, "execution": "R2:1:1", "module": "m",
                    "target": "wf", "kind": "workflow"})
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:  # coalesced: flushed by a timer
        time.sleep(0.01)
    assert seen and seen[-1][0]["status"] == "pending"
    before = w.steps
    w.handle_event({"type": "started", "execution": "R2:1:1", "at": 1.0})
    w.flush()
    assert w.steps is not before and before[0]["status"] == "pending"  # old value untouched


@pytest.fixture(scope="module")
def remote_worker(coflux_server):
    url, token = coflux_server
    worker = start_worker(url, token, "cfjx_remote")
    yield
    stop_process(worker)


def test_widget_follows_a_real_run(coflux_server, remote_worker):
    url, token = coflux_server
    with Client(url, token) as client:
        deadline = time.monotonic() + 30
        while True:  # until the worker has registered its workflows
            try:
                run = client.submit("cfjx_remote", "sum_of_squares", 3)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        w = RunWidget(run)  # the status table (what a run shows when the rich view is not built)
        assert w.run_id == run.id
        assert run.result(timeout=30) == 14
        deadline = time.monotonic() + 10
        while (w.status != "value" or len(w.steps) < 4) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert w.status == "value"
        assert [(s["target"], s["status"]) for s in w.steps] == \
            [("sum_of_squares", "value")] + [("square", "value")] * 3
        assert all(s["parent"] == f"{run.id}:1:1" for s in w.steps[1:])
        w.close()
        assert not client._listeners.get(f"run:{run.id}")


def _submit(client: Client, *args) -> object:
    deadline = time.monotonic() + 30
    while True:  # until the worker has registered its workflows
        try:
            return client.submit("cfjx_remote", *args)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_run_view_of_a_headless_server_run(coflux_server, remote_worker, monkeypatch):
    monkeypatch.delenv(widgets.JUPYTER_MOUNT_ENV, raising=False)
    url, token = coflux_server
    with Client(url, token) as client:
        run = _submit(client, "sum_of_squares", 2)
        view = RunView(run)
        # The browser talks to the headless server itself: its absolute URL and the token.
        assert (view.run_id, view.api_base, view.token, view.part, view.height) == (run.id, url, token, "", 0)
        assert view.studio_url == f"{url}#/runs/{run.id}"
        assert repr(view) == f"<RunView {run.id} cfjx_remote/sum_of_squares>"
        state = view.get_state()
        assert {k: state[k] for k in ("run_id", "api_base", "token", "part", "studio_url", "height")} == \
            {"run_id": run.id, "api_base": url, "token": token, "part": "", "studio_url": view.studio_url,
             "height": 0}
        assert re.search(r"export\s*(default\b|\{[^}]*\bas default\b)", state["_esm"])  # an ES module
        if not widgets.built():
            assert widgets.BUILD_COMMAND in state["_esm"]  # the view says how to build it
        with pytest.raises(traitlets.TraitError, match="part must be one of"):
            view.part = "everything"
        with pytest.raises(traitlets.TraitError):
            view.height = -1

        # Each part alone; `run.assets()` still lists the assets.
        for part in ("graph", "timeline", "logs", "metrics", "assets"):
            handle = getattr(run, part)
            assert repr(handle) == f"<{part} of {run!r}>"
            shown = handle.view(height=300)
            if widgets.built():
                assert (shown.part, shown.height, shown.run_id) == (part, 300, run.id)
            else:
                assert isinstance(shown, RunWidget) and "npm --prefix jupyter_ext/frontend" in shown.note
            shown.close()
        assert run.result(timeout=30) == 5
        assert run.assets() == []
        # Outside a kernel a run shows as text (no widget comm is opened for it).
        assert run._repr_mimebundle_() == {"text/plain": repr(run)}
        full = run.widget()
        assert isinstance(full, RunView if widgets.built() else RunWidget) and full.run_id == run.id
        full.close()
        view.close()


def test_run_view_of_the_jupyter_mount_uses_its_path(coflux_server, remote_worker, monkeypatch):
    url, token = coflux_server
    with Client(url, token) as client:
        run = _submit(client, "sum_of_squares", 1)
        # As in a kernel of the Jupyter server that hosts coflux at `base_url` a@b: the client's URL
        # is the extension's mount.
        path = "/a%40b/coflux/"
        client.connection.url = urllib.parse.urljoin(url, path)
        monkeypatch.setenv(widgets.JUPYTER_MOUNT_ENV, client.connection.url)
        view = RunView(run)
        assert (view.api_base, view.token) == (path, "")  # the page's origin and Jupyter's login
        assert view.studio_url == f"{path}#/runs/{run.id}"
        monkeypatch.setenv(widgets.JUPYTER_MOUNT_ENV, "http://127.0.0.1:1/elsewhere/coflux/")
        other = RunView(run)
        assert (other.api_base, other.token) == (client.connection.url, token)  # not the mount: URL + token
        client.connection.url = url
        view.close()
        other.close()


def test_metrics_figure_has_a_subplot_per_group():
    series = [
        {"execution_id": "R1:2:1", "key": "loss", "group": {"name": "training", "units": "epoch"},
         "scale": {"name": "loss", "units": None, "progress": False, "lower": None, "upper": None},
         "points": [[0, 1.0], [1, 0.5], [2, 0.25]], "target": "fit"},
        {"execution_id": "R1:3:1", "key": "loss", "group": {"name": "training", "units": "epoch"},
         "scale": {"name": "loss", "units": None, "progress": False, "lower": None, "upper": None},
         "points": [[0, 2.0], [1, 1.0]]},
        {"execution_id": "R1:2:1", "key": "accuracy", "group": {"name": "training", "units": "epoch"},
         "scale": {"name": "percent", "units": "%", "progress": False, "lower": 0, "upper": 100},
         "points": [[0, 50], [2, 90]]},
        {"execution_id": "R1:2:1", "key": "progress", "group": None,
         "scale": {"name": "progress", "units": None, "progress": True, "lower": 0, "upper": 10},
         "points": [[0.0, 0], [0.5, 4], [1.0, 10]]},
    ]
    figure = metrics_figure(series, title="train")
    assert isinstance(figure, go.Figure)
    assert [a.text for a in figure.layout.annotations] == ["training", "progress"]
    names = [trace.name for trace in figure.data]
    # One key of two steps: named by the step (its target when known), as the run view names them.
    assert names == ["loss (fit #2)", "loss (R1:3:1)", "accuracy", "progress"]
    assert list(figure.data[0].y) == [1.0, 0.5, 0.25] and list(figure.data[0].x) == [0, 1, 2]
    # Each scale on its own axis: loss on the subplot's own, percent on another with its bounds
    # and round ticks (0, 20, ..., 100).
    loss, _, accuracy, progress = figure.data
    assert loss.yaxis == "y" and accuracy.yaxis == "y3"
    assert figure.layout.yaxis3.overlaying == "y" and figure.layout.yaxis3.side == "right"
    assert tuple(figure.layout.yaxis3.range) == (0, 100) and figure.layout.yaxis3.dtick == 20
    assert figure.layout.yaxis3.title.text == "percent (%)" and figure.layout.yaxis.title.text == "loss"
    assert progress.fill == "tozeroy" and progress.yaxis == "y2"
    assert tuple(figure.layout.yaxis2.range) == (0, 10) and figure.layout.yaxis2.dtick == 2
    assert figure.layout.xaxis.title.text == "epoch"
    assert metrics_figure([]).data == ()  # nothing recorded yet: an empty figure, not an error


def test_metrics_figure_draws_many_steps_of_one_key_as_a_band():
    series = [{"execution_id": f"R1:{i + 2}:1", "key": "loss", "target": "scale",
               "group": {"name": "sweep", "units": "epoch"},
               "scale": {"name": "loss", "units": None, "progress": False, "lower": None, "upper": None},
               "points": [[x, (i + 1) * 10.0 - x] for x in range(100)]} for i in range(300)]
    figure = metrics_figure(series)
    each, low, high, median = figure.data
    assert [t.name for t in figure.data] == ["loss: each step", "loss: min–max (low)", "loss: min–max",
                                             "loss: median of 300 steps"]
    assert each.visible == "legendonly" and len(each.x) == 300 * 100 + 299  # joined, a gap between steps
    assert each.text[0] == "loss (scale #2)"
    assert list(low.y[:2]) == [10.0, 9.0] and list(high.y[:2]) == [3000.0, 2999.0]
    assert median.y[0] == 1505.0 and high.fill == "tonexty" and not low.showlegend



async def test_displayed_run_in_a_jupyter_kernel(coflux_ext, jp_serverapp, jp_base_url):
    """A kernel of the Jupyter server that hosts coflux: the displayed run's view reaches the API
    through the mount's path (the page's own origin, Jupyter's login), with no token in it."""
    _, k = await start_kernel(jp_serverapp)
    await k.ok("%load_ext coflux")
    await k.ok("import coflux as cf\n@cf.workflow()\ndef hello(n: int) -> int:\n    return n + 1\n")
    out = await k.ok("run = hello.run(1)\nrun")
    (display,) = out["displays"]
    assert WIDGET_MIME in display
    comm = next(c for c in out["comms"] if c["comm_id"] == display[WIDGET_MIME]["model_id"])
    state = comm["data"]["state"]
    run_id = (await k.ok("print(run.id)"))["stdout"].strip()
    base = jp_base_url + "coflux/"
    if widgets.built():
        # Beside the widget: the kernel-free view (no token in it) and the static fallback.
        assert display["text/plain"].startswith(f"coflux run {run_id} ") and " as of " in display["text/plain"]
        assert display[RUN_MIME] == {"run_id": run_id, "api_base": base, "studio_url": f"{base}#/runs/{run_id}",
                                     "part": "", "workflow": display[RUN_MIME]["workflow"]}
        assert f'data-run="{run_id}"' in display["text/html"]
        assert (state["run_id"], state["api_base"], state["token"], state["part"]) == (run_id, base, "", "")
        assert state["studio_url"] == f"{base}#/runs/{run_id}"
    else:  # the status table, saying how to build the view
        assert state["run_id"] == run_id and "npm --prefix jupyter_ext/frontend" in state["note"]
    out = await k.ok("from coflux import widgets\nv = widgets.RunView(run, part='graph')\n"
                     "print(v.api_base, repr(v.token), v.part, v.studio_url)")
    assert out["stdout"].split() == [base, "''", "graph", f"{base}#/runs/{run_id}"]
    assert (await k.ok("run.result(timeout=30)"))["results"] == ["2"]
    out = await k.ok("run.graph")
    assert len(out["displays"]) + len(out["results"]) == 1


async def test_a_run_of_a_plain_client_displays_as_its_view(coflux_ext, jp_serverapp, jp_base_url):
    """No `%load_ext coflux`, no `import coflux as cf`: a `Run` from a `Client` made directly
    still displays as its live view. The client imports neither the session glue nor the
    widgets; the package names the glue, which is loaded when the run is first displayed."""
    _, k = await start_kernel(jp_serverapp)
    run_id = "Rplain1"  # a handle is enough: nothing needs to host a workflow for the view to show
    out = await k.ok("import sys\nfrom coflux.client import Client, Run\nclient = Client()\n"
                     f"run = Run(client, {run_id!r}, '{run_id}:1:1', 'elsewhere.workflows', 'report')\n"
                     "print([m for m in ('coflux.session', 'coflux.widgets', 'coflux.kernel') if m in sys.modules])")
    assert out["stdout"].strip() == "[]"
    out = await k.ok("run")
    (shown,) = out["results"]
    (state,) = [c["data"]["state"] for c in out["comms"] if c["data"]["state"]["_model_name"] == "AnyModel"]
    if widgets.built():
        assert shown.startswith(f"coflux run {run_id} elsewhere.workflows/report: unknown as of ")
        assert (state["run_id"], state["api_base"]) == (run_id, jp_base_url + "coflux/")
    else:
        assert state["run_id"] == run_id
    out = await k.ok("print(sorted(m for m in ('coflux.session', 'coflux.widgets', 'coflux.kernel') "
                     "if m in sys.modules))")
    assert out["stdout"].strip() == "['coflux.session', 'coflux.widgets']"  # the kernel is not attached
    await k.ok("client.close()")

"""Run views that outlive their kernel, in a real JupyterLab driven through headless Chromium.

A notebook shows three run outputs (a finished run, one part of it, a run still in flight on a
headless worker) and is saved. Jupyter is restarted and the notebook reopened with no kernel:
every view is live again from the file alone (the coflux MIME renderer), and follows the run in
flight to its end. `jupyter nbconvert --to html` of the file shows the static fallback. Then the
server is killed under an open view (frozen clock, greyed Cancel, "lost contact since"), and
restarted (the truth returns); an output naming a run the server does not know says only that.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import textwrap
import time

import pytest
from ui_helpers import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    Gates,
    JupyterLab,
    notebook_panel_js,
    wait_for_idle_kernel,
    write_notebook,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from harness import base_env, stop_process, wait_until  # noqa: E402

pytestmark = pytest.mark.ui

REPO = pathlib.Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "jupyter_ext" / "labextension" / "package.json"
RUN_MIME = "application/vnd.coflux.run+json"
NOTEBOOK = "saved_views.ipynb"
MODULE = "savedflow"
WAIT_MS = 60_000
SHOT = {"width": 1500, "height": 950}

APP = textwrap.dedent('''\
    import os
    import time

    import coflux as cf


    @cf.task()
    def square(i: int) -> int:
        return i * i


    @cf.workflow()
    def quick(n: int) -> int:
        return sum(square.submit(i).result() for i in range(n))


    @cf.task()
    def hold(gate: str) -> str:
        while not os.path.exists(gate):
            time.sleep(0.05)
        return "opened"


    @cf.workflow()
    def gated(gate: str) -> str:
        return hold.submit(gate).result()
    ''')


class Stack:
    """A JupyterLab (restartable on its port) and a headless worker of `savedflow` attached to
    its coflux server; the worker outlives Jupyter's restarts and reconnects by itself."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.lab = JupyterLab(base / "lab")
        self.gates = Gates(base / "gates")
        self.app_dir = base / "app"
        self.app_dir.mkdir(parents=True, exist_ok=True)
        (self.app_dir / f"{MODULE}.py").write_text(APP)
        self.worker: subprocess.Popen | None = None

    def start(self) -> Stack:
        self.lab.start()
        env = base_env(COFLUX_SERVER=self.lab.url + "coflux/", COFLUX_TOKEN=self.lab.token,
                       PYTHONPATH=str(self.app_dir))
        with open(self.base / "worker.log", "ab") as out:
            self.worker = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--concurrency", "4", MODULE],
                                           cwd=self.app_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: {"quick", "gated"} <= self.workflows(), 60, interval=0.1,
                   message="the savedflow worker to register")
        return self

    def workflows(self) -> set[str]:
        try:
            return {w["name"] for w in self.lab.api("coflux/api/workflows")["workflows"]}
        except OSError:
            return set()

    def status(self, run_id: str) -> str:
        return self.lab.api(f"coflux/api/runs/{run_id}")["status"]

    def stop(self) -> None:
        if self.worker is not None:
            stop_process(self.worker)
        self.lab.stop()


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory):
    if not LABEXTENSION.exists():
        pytest.skip("the labextension is not built (npm --prefix jupyter_ext/frontend run build)")
    s = Stack(tmp_path_factory.mktemp("saved")).start()
    try:
        yield s
    finally:
        s.stop()


def notebook_cells(gate: pathlib.Path) -> list[str]:
    return [
        "from coflux.client import Client\nclient = Client()",
        f'done = client.submit("{MODULE}", "quick", 4)\ndone.result(timeout=60)\ndone',
        "done.graph",
        f'flight = client.submit("{MODULE}", "gated", {str(gate)!r})\nflight',
    ]


# JavaScript run in the page (JupyterLab is exposed as window.jupyterapp).
PANEL_JS = notebook_panel_js(NOTEBOOK)
# Open the notebook as a user who picks "No Kernel": the notebook factory is told not to start one.
OPEN_WITHOUT_KERNEL_JS = """async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  app.docRegistry.getWidgetFactory("Notebook")._preferKernel = false;
  await app.commands.execute("docmanager:open", { path, factory: "Notebook" });
}"""


def saved_outputs(path: pathlib.Path) -> list[dict]:
    """The run outputs of a notebook file, their multi-line texts joined."""
    nb = json.loads(path.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
               if RUN_MIME in o.get("data", {})]
    for output in outputs:
        for key, value in output["data"].items():
            if isinstance(value, list):
                output["data"][key] = "".join(value)
    return outputs


def open_lab(page, lab: JupyterLab) -> None:
    page.set_viewport_size(SHOT)
    page.goto(f"{lab.url}lab?reset&token={lab.token}")  # no restored layout (it would open the notebook)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=WAIT_MS)


def reopen_without_kernel(page, lab: JupyterLab) -> None:
    open_lab(page, lab)
    page.evaluate(OPEN_WITHOUT_KERNEL_JS, NOTEBOOK)


@pytest.fixture(scope="module")
def saved(stack, artifacts):
    """The notebook run once in Lab (a kernel), saved, and Jupyter restarted: {run ids}."""
    from playwright.sync_api import sync_playwright

    lab = stack.lab
    gate = stack.gates.directory / "flight"
    write_notebook(lab.root / NOTEBOOK, notebook_cells(gate))
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = chromium.new_context(viewport=SHOT).new_page()
            try:
                run_and_save(page, lab, artifacts)
            except Exception:
                page.screenshot(path=str(artifacts / "saved-views-failure.png"))
                raise
        finally:
            chromium.close()
    outputs = saved_outputs(lab.root / NOTEBOOK)
    runs = {"done": outputs[0]["data"][RUN_MIME]["run_id"], "flight": outputs[2]["data"][RUN_MIME]["run_id"]}
    stack.lab.stop()  # Jupyter goes away: kernels, widget models, everything but the file and the db
    stack.lab.start()
    return runs


def run_and_save(page, lab: JupyterLab, artifacts: pathlib.Path) -> None:
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for_idle_kernel(page, NOTEBOOK, WAIT_MS)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    views = page.locator(".coflux-run-output .cf-runview")
    expect(views).to_have_count(3, timeout=WAIT_MS)
    expect(views.nth(0)).to_have_attribute("data-status", "value", timeout=WAIT_MS)
    expect(views.nth(2)).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    page.screenshot(path=str(artifacts / "saved-views-1-before-save.png"))
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    wait_until(lambda: len(saved_outputs(lab.root / NOTEBOOK)) == 3, 30, interval=0.2,
               message="the notebook to be saved with its three run outputs")


def test_saved_notebook_views_are_live_after_restart_without_a_kernel(stack, saved, page, artifacts):
    from playwright.sync_api import expect

    lab = stack.lab
    stored = saved_outputs(lab.root / NOTEBOOK)
    assert [o["data"][RUN_MIME]["run_id"] for o in stored] == [saved["done"], saved["done"], saved["flight"]]
    assert all("token" not in o["data"][RUN_MIME] for o in stored), "a secret was saved in the notebook"
    assert "running as of" in stored[2]["data"]["text/plain"], stored[2]
    print(json.dumps(stored[2]["data"][RUN_MIME]))

    reopen_without_kernel(page, lab)
    views = page.locator(".coflux-run-output .cf-runview")
    expect(views).to_have_count(3, timeout=WAIT_MS)
    expect(views.nth(0)).to_have_attribute("data-status", "value", timeout=WAIT_MS)
    expect(views.nth(0).locator(".cf-run-title")).to_contain_text(f"{MODULE}/quick")
    expect(views.nth(1)).to_have_class(re.compile(r"cf-part-graph"))
    expect(views.nth(1).locator(".cf-node").first).to_be_visible(timeout=WAIT_MS)
    expect(views.nth(2)).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    assert page.locator("text=model not found").count() == 0
    assert lab.api("api/kernels") == [], "opening the notebook started a kernel"
    page.screenshot(path=str(artifacts / "saved-views-2-reopened.png"))

    # The run still in flight is followed live: it finishes while the view is open.
    stack.gates.open("flight")
    views.nth(2).scroll_into_view_if_needed()
    expect(views.nth(2)).to_have_attribute("data-status", "value", timeout=WAIT_MS)
    assert stack.status(saved["flight"]) == "value"
    assert lab.api("api/kernels") == []
    page.screenshot(path=str(artifacts / "saved-views-3-followed.png"))

    # The fallback now says the status the view saw; saving writes it.
    page.evaluate(f"() => ({PANEL_JS})().context.save()")
    wait_until(lambda: "value as of" in saved_outputs(lab.root / NOTEBOOK)[2]["data"]["text/plain"], 30,
               interval=0.2, message="the saved fallback to say the run's final status")


def test_nbconvert_html_shows_the_static_fallback(stack, saved, tmp_path):
    lab = stack.lab
    out = tmp_path / "converted"
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(out),
                           str(lab.root / NOTEBOOK)], capture_output=True, text=True, timeout=120,
                          env={**base_env(), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")})
    assert done.returncode == 0, done.stderr
    html = (out / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    fallbacks = re.findall(r'<div class="coflux-run-fallback" data-run="(R[^"]+)">(.*?)</div>', html)
    assert [run for run, _ in fallbacks] == [saved["done"], saved["done"], saved["flight"]]
    first = fallbacks[0][1]
    assert f"{MODULE}/quick" in first and "value" in first and "as of" in first and "open in Studio" in first
    assert "took" in first  # written by the view when it saw the run's outcome
    assert "value" in fallbacks[2][1]  # the run in flight when first saved: saved again once it ended


def test_disconnect_freezes_the_view_and_reconnect_shows_the_truth(stack, saved, page, artifacts):
    from playwright.sync_api import expect

    lab = stack.lab
    gate = stack.gates.directory / "second"
    # A run in flight to watch: started over HTTP (no kernel anywhere).
    run_id = subprocess.run(
        [sys.executable, "-m", "coflux", "submit", "--no-wait", f"{MODULE}/gated", json.dumps(str(gate))],
        env=base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token), cwd=stack.app_dir,
        capture_output=True, text=True, timeout=60, check=True).stdout.strip().split()[-1]
    nb = lab.root / "watch.ipynb"
    write_notebook(nb, ["# the run view of a run started elsewhere"])
    data = json.loads(nb.read_text())
    data["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": f"coflux run {run_id}",
        RUN_MIME: {"run_id": run_id, "api_base": "/coflux/", "part": "", "workflow": f"{MODULE}/gated"}}}]
    nb.write_text(json.dumps(data))

    open_lab(page, lab)
    page.evaluate(OPEN_WITHOUT_KERNEL_JS.replace("docmanager:open", "docmanager:open"), "watch.ipynb")
    view = page.locator(".coflux-run-output .cf-runview")
    expect(view).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    cancel = view.locator(".cf-cancel-run")
    expect(cancel).to_be_enabled()

    lab.kill()  # kill -9: the page stays, the server is gone
    lost = view.locator(".cf-connection")
    expect(lost).to_contain_text("lost contact with the server since", timeout=WAIT_MS)
    expect(cancel).to_be_disabled()
    duration = view.locator(".cf-run-duration")
    frozen = duration.inner_text()
    time.sleep(2.2)  # the clock would have moved by two ticks
    assert duration.inner_text() == frozen, "the clock kept running while out of contact"
    expect(view).to_have_attribute("data-status", "running")  # as of the moment contact was lost
    close = page.locator(".jp-Dialog button", has_text="Close")  # Lab's own "server connection error"
    if close.count():
        close.first.click()
    page.screenshot(path=str(artifacts / "disconnect-1-lost.png"))

    lab.start()
    back = time.monotonic()
    expect(lost).to_have_count(0, timeout=WAIT_MS)
    expect(cancel).to_be_enabled()  # in contact again, the run still running: actions are back
    print(f"back in contact {time.monotonic() - back:.2f} s after Jupyter was ready")
    stack.gates.open("second")
    wait_until(lambda: stack.status(run_id) == "value", 60, interval=0.05, message="the run to finish")
    done = time.monotonic()
    expect(view).to_have_attribute("data-status", "value", timeout=1000)  # the truth within a second
    print(f"the view showed the server's final status {time.monotonic() - done:.2f} s after the server had it")
    page.screenshot(path=str(artifacts / "disconnect-2-back.png"))


def test_demo_notebook_is_not_modified_by_opening_it(stack, saved, page):
    """Opening the shipped demo (a kernel starts) leaves it unmodified: no "unsaved" dot."""
    lab = stack.lab
    (lab.root / "demo.ipynb").write_text((REPO / "notebooks" / "demo.ipynb").read_text())
    page.set_viewport_size(SHOT)
    page.goto(f"{lab.url}lab/tree/demo.ipynb?reset&token={lab.token}")
    panel = notebook_panel_js("demo.ipynb")
    wait_for_idle_kernel(page, "demo.ipynb", WAIT_MS)
    time.sleep(2)  # kernel info, language_info, trust: whatever Lab does after the kernel is up
    assert page.evaluate(f"() => ({panel})().model.dirty") is False


def test_unknown_run_says_only_so(stack, saved, page, artifacts):
    from playwright.sync_api import expect

    lab = stack.lab
    nb = lab.root / "bogus.ipynb"
    write_notebook(nb, ["# a run this server never had"])
    data = json.loads(nb.read_text())
    data["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "coflux run Rnosuch1", RUN_MIME: {"run_id": "Rnosuch1", "api_base": "/coflux/"}}}]
    nb.write_text(json.dumps(data))
    open_lab(page, lab)
    page.evaluate(OPEN_WITHOUT_KERNEL_JS, "bogus.ipynb")
    output = page.locator(".coflux-run-output")
    expect(output.locator("[role=alert]")).to_have_text(re.compile(r"^no run .?Rnosuch1.?$"), timeout=WAIT_MS)
    text = output.inner_text()
    for word in ("pending", "reconnect", "lost contact", "running"):
        assert word not in text, f"{word!r} shown for an unknown run: {text!r}"
    page.screenshot(path=str(artifacts / "unknown-run.png"))


def write_view_notebook(path: pathlib.Path, run_id: str, workflow: str) -> None:
    """A notebook holding one run output, as a kernel would have saved it."""
    write_notebook(path, [f"# run {run_id}"])
    data = json.loads(path.read_text())
    data["cells"][0]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": f"coflux run {run_id}",
        RUN_MIME: {"run_id": run_id, "api_base": "/coflux/", "part": "", "workflow": workflow}}}]
    path.write_text(json.dumps(data))


FAILING_CELLS = [
    "%load_ext coflux",
    'import coflux as cf\n\n@cf.task()\ndef scale_item(item: int, factor: float = 2.0) -> float:\n'
    '    raise ValueError(f"item {item} cannot be scaled")\n',
    "@cf.workflow()\ndef scale_all(n: int) -> float:\n    return scale_item.submit(n, factor=3.0).result()\n",
    "run = scale_all.run(7)\nrun",
]


def test_step_panel_names_cells_and_arguments_as_the_notebook_does(stack, saved, page, artifacts):
    from playwright.sync_api import expect

    lab = stack.lab
    write_notebook(lab.root / "failing.ipynb", FAILING_CELLS)
    page.set_viewport_size(SHOT)
    page.goto(f"{lab.url}lab/tree/failing.ipynb?reset&token={lab.token}")
    wait_for_idle_kernel(page, "failing.ipynb", WAIT_MS)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    view = page.locator(".coflux-run-output .cf-runview")
    expect(view).to_have_attribute("data-status", "error", timeout=WAIT_MS)
    view.scroll_into_view_if_needed()
    view.locator(".cf-node", has_text="scale_item").first.click()
    step = view.locator(".cf-step-panel, [aria-label='arguments']").first
    expect(step).to_be_visible()
    args = view.locator("section[aria-label=arguments] .cf-args li")
    expect(args).to_have_count(2)
    expect(args.nth(0)).to_contain_text("item = 7")
    expect(args.nth(1)).to_contain_text("factor = 3")
    frame = view.locator(".cf-traceback .cf-frame-file").first
    expect(frame).to_have_text("Cell In[2], line 5")
    assert "ipykernel_" not in view.locator(".cf-traceback").inner_text()
    page.screenshot(path=str(artifacts / "step-panel-error.png"))
    page.evaluate(f"() => ({notebook_panel_js('failing.ipynb')})().sessionContext.shutdown()")


def test_unhosted_workflow_is_shown_as_such_and_a_run_of_it_says_why_it_waits(stack, saved, page, artifacts):
    """Last in this module: it stops the worker."""
    from playwright.sync_api import expect

    lab = stack.lab
    stop_process(stack.worker)
    stack.worker = None
    wait_until(lambda: not next(w for w in lab.api("coflux/api/workflows")["workflows"]
                                if w["name"] == "quick")["hosted"], 60, interval=0.2,
               message="the workflow to be listed as hosted by no worker")
    run_id = subprocess.run(
        [sys.executable, "-m", "coflux", "submit", "--no-wait", f"{MODULE}/quick", "3"],
        env=base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token), cwd=stack.app_dir,
        capture_output=True, text=True, timeout=60, check=True).stdout.strip().split()[-1]
    write_view_notebook(lab.root / "waiting.ipynb", run_id, f"{MODULE}/quick")

    open_lab(page, lab)
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="coflux-studio"]').click()
    row = page.locator(f'.coflux-lab-workflow[data-workflow="{MODULE}/quick"]')
    expect(row.locator(".coflux-lab-unhosted")).to_contain_text("no worker hosts it (the last left", timeout=WAIT_MS)
    page.evaluate(OPEN_WITHOUT_KERNEL_JS, "waiting.ipynb")
    view = page.locator(".coflux-run-output .cf-runview")
    expect(view.locator(".cf-run-waiting")).to_contain_text(f"no connected worker hosts {MODULE}/quick",
                                                            timeout=WAIT_MS)
    expect(view.locator(".cf-run-steps")).to_have_text("1 step")
    page.screenshot(path=str(artifacts / "unhosted-waiting.png"))

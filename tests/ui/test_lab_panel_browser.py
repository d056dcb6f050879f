"""Coflux Studio in JupyterLab: the prebuilt labextension's side panel and run tabs, in Chromium.

A real JupyterLab (the coflux server extension inside it) and a real headless `coflux worker`
connected to it through Jupyter's own token. The tests use what a user sees: the Coflux tab in the
left sidebar, its workflows and live recent runs, the run dialog, a run opened in a main-area tab
that draws the graph (the shared run view, rendered directly, not in an iframe), the palette
commands, the `coflux:open-run` page event (the notebook view's "open in Studio"), and Lab's dark
theme.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest
from harness import base_env, stop_process, wait_until
from ui_helpers import Gates

pytestmark = pytest.mark.ui

LABEXTENSION = pathlib.Path(__file__).resolve().parents[2] / "jupyter_ext" / "labextension" / "package.json"
WAIT_MS = 60_000  # generous upper bound for anything the server, worker or Lab has to do
MODULE = "labflow"

APP = textwrap.dedent('''\
    """Workflows for the Lab panel tests."""
    import os
    import pathlib
    import time

    import coflux as cf

    GATES = pathlib.Path(os.environ["LABFLOW_GATES"])
    loss = cf.Metric("loss", group=cf.MetricGroup("training", units="epoch"))


    @cf.task()
    def square(i: int) -> int:
        return i * i


    @cf.task()
    def wait_for(gate: str) -> str:
        deadline = time.monotonic() + 300
        while not (GATES / gate).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {gate} was never opened")
            time.sleep(0.05)
        return gate


    @cf.workflow()
    def pipeline(n: int) -> int:
        """Squares 0..n-1 and adds them up."""
        for i in range(n):
            loss.record(1 / (i + 1), at=i)
        return sum(square.submit(i).result() for i in range(n))


    @cf.workflow()
    def gated(n: int, gate: str) -> int:
        """Waits for a gate file, then squares 0..n-1."""
        wait_for.submit(gate).result()
        return sum(square.submit(i).result() for i in range(n))


    @cf.workflow()
    def mean(values: list[float]) -> float:
        """The mean of some numbers."""
        return sum(values) / len(values)
    ''')


class LabWorker:
    """A headless `coflux worker labflow` connected to the Lab server's coflux routes."""

    def __init__(self, lab, base: pathlib.Path) -> None:
        self.lab = lab
        self.app_dir = base / "app"
        self.app_dir.mkdir(parents=True, exist_ok=True)
        (self.app_dir / f"{MODULE}.py").write_text(APP)
        self.gates = Gates(base / "gates")
        self.log = base / "worker.log"
        self.env = base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token,
                            LABFLOW_GATES=str(self.gates.directory), PYTHONPATH=str(self.app_dir))
        self.proc: subprocess.Popen | None = None

    def start(self) -> LabWorker:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--concurrency", "4", MODULE],
                                         cwd=self.app_dir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

        def registered() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"coflux worker exited:\n{self.log.read_text(errors='replace')}")
            names = {w["name"] for w in self.lab.api("coflux/api/workflows")["workflows"]}
            return {"pipeline", "gated"} <= names

        wait_until(registered, 60, interval=0.1, message="the labflow worker to register its workflows")
        return self

    def submit(self, target: str, *args: str) -> str:
        """Start a run (the CLI, as a user would); returns its id."""
        done = subprocess.run([sys.executable, "-m", "coflux", "submit", "--no-wait", f"{MODULE}/{target}", *args],
                              env=self.env, cwd=self.app_dir, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split()[-1]

    def status(self, run_id: str) -> str:
        return next(r["status"] for r in self.lab.api("coflux/api/runs")["runs"] if r["id"] == run_id)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


@pytest.fixture(scope="module")
def worker(lab, tmp_path_factory):
    if not LABEXTENSION.exists():
        pytest.skip("the labextension is not built (npm --prefix jupyter_ext/frontend run build)")
    w = LabWorker(lab, tmp_path_factory.mktemp("labflow")).start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def finished_run(worker) -> str:
    run_id = worker.submit("pipeline", "3")
    wait_until(lambda: worker.status(run_id) == "value", 60, interval=0.1, message=f"run {run_id} to finish")
    return run_id


# ------------------------------------------------------------------ page helpers

def open_lab(page, lab) -> None:
    # ?reset: a fresh layout (earlier tests of this Lab server leave tabs and the panel open).
    page.goto(f"{lab.url}lab?reset&token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('coflux:open-run')",
                           timeout=WAIT_MS)
    # Lab applies the reset while it restores the layout: wait for that before touching the page.
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.wait_for_url(f"{lab.url}lab", timeout=WAIT_MS)


def sidebar_tab(page):
    return page.locator('.jp-SideBar .lm-TabBar-tab[data-id="coflux-studio"]')


def open_panel_from_sidebar(page):
    from playwright.sync_api import expect

    panel = page.locator("#coflux-studio")
    expect(sidebar_tab(page)).to_be_visible(timeout=WAIT_MS)
    if not panel.is_visible():
        sidebar_tab(page).click()
    expect(panel).to_be_visible()
    return panel


def run_tab(page, run_id: str):
    return page.locator(f'[id="coflux-run-{run_id}"]')


def run_command(page, command: str, args: dict | None = None) -> None:
    page.evaluate("([c, a]) => { window.jupyterapp.commands.execute(c, a); }", [command, args or {}])


# ------------------------------------------------------------------ tests

def test_labextension_is_installed_enabled_and_ok(lab):
    done = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=lab.env(),
                          capture_output=True, text=True, timeout=60)
    listing = done.stdout + done.stderr
    line = next((ln for ln in listing.splitlines() if "coflux-studio" in ln), "")
    assert "enabled" in line and "OK" in line, listing


def test_panel_lists_workflows_and_runs_and_opens_a_run_tab(lab, page, worker, finished_run, artifacts):
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = open_panel_from_sidebar(page)

    # Workflows with their docstrings, grouped by module.
    workflow = panel.locator(f'[data-workflow="{MODULE}/pipeline"]')
    expect(workflow).to_be_visible(timeout=WAIT_MS)
    expect(workflow.locator(".coflux-lab-doc")).to_have_text("Squares 0..n-1 and adds them up.")
    expect(panel.locator(f'[data-workflow="{MODULE}/gated"]')).to_be_visible()

    # The finished run is listed with its status as icon + text.
    run_item = panel.locator(f'li[data-run="{finished_run}"]')
    expect(run_item).to_be_visible(timeout=WAIT_MS)
    expect(run_item.locator(".coflux-lab-status")).to_have_text("✓value")
    expect(run_item.locator(".coflux-lab-run-target")).to_have_text("pipeline")

    # A run started while the panel is open appears by itself (the feed's "runs" topic).
    live_run = worker.submit("pipeline", "2")
    expect(panel.locator(f'li[data-run="{live_run}"]')).to_be_visible(timeout=WAIT_MS)
    expect(panel.locator("li[data-run]").first).to_have_attribute("data-run", live_run)
    page.screenshot(path=str(artifacts / "lab-panel.png"))

    # Clicking a run opens it in a main-area tab that draws the graph: the workflow and 3 squares.
    run_item.click()
    tab = run_tab(page, finished_run)
    expect(tab).to_be_visible(timeout=WAIT_MS)
    assert page.locator(".jp-MainAreaWidget iframe").count() == 0  # rendered directly, not framed
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(f"Run {finished_run}")
    nodes = tab.locator(".cf-graph-svg [data-node]")
    expect(nodes).to_have_count(4, timeout=WAIT_MS)
    expect(tab.locator('.cf-graph-svg [data-node][data-status="value"]')).to_have_count(4)
    expect(tab.locator(".cf-run-status")).to_contain_text("value")
    page.screenshot(path=str(artifacts / "lab-run-tab.png"))

    # The metrics part draws its chart with plotly.js, loaded from the server on first use.
    tab.get_by_role("tab", name="Metrics").click()
    expect(tab.locator(".cf-chart .main-svg").first).to_be_visible(timeout=WAIT_MS)
    assert not page.errors, page.errors
    page.screenshot(path=str(artifacts / "lab-run-tab-metrics.png"))

    # Keyboard: arrow keys move through the runs list, Enter opens the focused run.
    panel.locator("li[data-run]").first.focus()
    page.keyboard.press("ArrowDown")
    expect(panel.locator(f'li[data-run="{finished_run}"]')).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(run_tab(page, live_run)).to_be_visible(timeout=WAIT_MS)
    expect(run_tab(page, live_run).locator(".cf-graph-svg [data-node]")).to_have_count(3, timeout=WAIT_MS)


def test_run_dialog_starts_a_run_that_updates_live(lab, page, worker, artifacts):
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = open_panel_from_sidebar(page)
    workflow = panel.locator(f'[data-workflow="{MODULE}/gated"]')
    workflow.get_by_role("button", name="Run…").click()
    form = workflow.locator("form")
    expect(form).to_be_visible()

    # A bad int is refused before anything is submitted.
    runs_before = len(lab.api("coflux/api/runs")["runs"])
    form.locator('input[name="n"]').fill("two")
    form.locator('input[name="gate"]').fill("dialog")
    form.get_by_role("button", name="Start run").click()
    expect(form.get_by_role("alert")).to_contain_text('n: "two" is not an integer')
    assert len(lab.api("coflux/api/runs")["runs"]) == runs_before

    # A good one starts the run and opens its tab; it waits at its gate (running), live.
    form.locator('input[name="n"]').fill("2")
    form.get_by_role("button", name="Start run").click()
    tab = page.locator('.jp-MainAreaWidget[id^="coflux-run-"]')
    expect(tab).to_be_visible(timeout=WAIT_MS)
    run_id = (tab.get_attribute("id") or "").removeprefix("coflux-run-")
    item = panel.locator(f'li[data-run="{run_id}"]')
    expect(item.locator(".coflux-lab-status")).to_contain_text("running", timeout=WAIT_MS)
    expect(tab.locator('.cf-graph-svg [data-node][data-status="running"]')).to_have_count(2, timeout=WAIT_MS)
    page.screenshot(path=str(artifacts / "lab-run-dialog-running.png"))

    # The gate opens: the graph grows by the squares and every status turns to value, unprompted.
    worker.gates.open("dialog")
    expect(tab.locator(".cf-graph-svg [data-node]")).to_have_count(4, timeout=WAIT_MS)
    expect(tab.locator('.cf-graph-svg [data-node][data-status="value"]')).to_have_count(4, timeout=WAIT_MS)
    expect(item.locator(".coflux-lab-status")).to_have_text("✓value", timeout=WAIT_MS)


def test_run_form_builds_fields_from_the_schema(lab, page, worker, artifacts):
    """`list[float]` is a list of number fields in the panel's form: `[0.1, "x"]` is refused with
    the item named, before anything is submitted; fixed, the run starts with the numbers."""
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = open_panel_from_sidebar(page)
    workflow = panel.locator(f'[data-workflow="{MODULE}/mean"]')
    workflow.get_by_role("button", name="Run…").click()
    form = workflow.locator("form")
    expect(form).to_be_visible()
    add = form.get_by_role("button", name="add to values")
    add.click()
    add.click()
    form.locator('input[name="values[0]"]').fill("0.5")
    form.locator('input[name="values[1]"]').fill("x")
    runs_before = len(lab.api("coflux/api/runs")["runs"])
    form.get_by_role("button", name="Start run").click()
    expect(form.get_by_role("alert").first).to_contain_text('values[1]: "x" is not a number')
    page.screenshot(path=str(artifacts / "lab-run-form-schema-refused.png"))
    assert len(lab.api("coflux/api/runs")["runs"]) == runs_before
    form.locator('input[name="values[1]"]').fill("1.5")
    form.get_by_role("button", name="Start run").click()
    tab = page.locator('.jp-MainAreaWidget[id^="coflux-run-"]')
    expect(tab).to_be_visible(timeout=WAIT_MS)
    run_id = (tab.first.get_attribute("id") or "").removeprefix("coflux-run-")
    wait_until(lambda: worker.status(run_id) == "value", 60, message=f"{run_id} to finish")
    result = lab.api(f"coflux/api/runs/{run_id}/result?timeout=10")
    assert result["value"]["v"] == 1.0, result


def test_palette_commands_open_the_panel_and_a_run(lab, page, worker, finished_run):
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = page.locator("#coflux-studio")
    expect(panel).to_be_hidden()

    def palette(command_label: str) -> None:
        page.locator(".jp-Launcher-body").click()  # focus in the app, so Lab gets the shortcut
        page.keyboard.press("Control+Shift+C")
        search = page.locator(".jp-ModalCommandPalette .lm-CommandPalette-input")
        expect(search).to_be_visible()
        search.fill(command_label)
        item = page.locator(".lm-CommandPalette-item", has_text=command_label).first
        expect(item).to_be_visible()
        item.click()

    palette("Coflux: Open Studio panel")
    expect(panel).to_be_visible()

    palette("Coflux: Open run…")
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    dialog.locator("input").fill(finished_run)
    dialog.locator("input").press("Enter")
    expect(run_tab(page, finished_run).locator(".cf-graph-svg [data-node]")).to_have_count(4, timeout=WAIT_MS)


def test_open_run_page_event_opens_a_lab_tab(lab, page, worker, finished_run):
    """The notebook run view's "open in Studio" dispatches `coflux:open-run` (bubbling, cancelable);
    the plugin opens a Lab tab and cancels the event, so the view skips its browser-tab fallback."""
    from playwright.sync_api import expect

    open_lab(page, lab)
    handled = page.evaluate("""(runId) => {
      const from = window.jupyterapp.shell.node.querySelector('.jp-Launcher') || window.jupyterapp.shell.node;
      const event = new CustomEvent('coflux:open-run', {bubbles: true, cancelable: true, detail: {runId}});
      return !from.dispatchEvent(event);
    }""", finished_run)
    assert handled is True
    expect(run_tab(page, finished_run).locator(".cf-graph-svg [data-node]")).to_have_count(4, timeout=WAIT_MS)

    # Inside that run's own tab the event is left alone: there "open in Studio" means the web page.
    handled_inside = page.evaluate("""(runId) => {
      const from = document.getElementById('coflux-run-' + runId).querySelector('.cf-graph-svg');
      return !from.dispatchEvent(new CustomEvent('coflux:open-run', {bubbles: true, cancelable: true, detail: {runId}}));
    }""", finished_run)
    assert handled_inside is False

    # A reload restores the open run tab (Lab's layout restorer), live again. Lab saves the layout
    # a moment after it changes: wait until the saved workspace has the tab.
    def saved_layout() -> str:
        return json.dumps(lab.api("lab/api/workspaces/default")["data"].get("layout-restorer:data", {}).get("main"))

    wait_until(lambda: f"coflux-run:{finished_run}" in saved_layout(), 30, interval=0.2,
               message="Lab to save the layout with the run tab")
    page.goto(f"{lab.url}lab")  # not reload(): the address may still say ?reset
    expect(run_tab(page, finished_run).locator(".cf-graph-svg [data-node]")).to_have_count(4, timeout=WAIT_MS)


def luminance(css_color: str) -> float:
    """Relative brightness (0 black .. 1 white) of an `rgb(...)`/`rgba(...)` computed colour."""
    parts = css_color[css_color.index("(") + 1:css_color.index(")")].split(",")
    r, g, b = (float(p) / 255 for p in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_dark_theme_applies_to_panel_and_run_tab(lab, page, worker, finished_run, artifacts):
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = open_panel_from_sidebar(page)
    expect(panel.locator(f'li[data-run="{finished_run}"]')).to_be_visible(timeout=WAIT_MS)
    run_command(page, "coflux:open-run", {"runId": finished_run})
    tab = run_tab(page, finished_run)
    expect(tab.locator(".cf-graph-svg [data-node]")).to_have_count(4, timeout=WAIT_MS)

    def background(selector: str) -> str:
        return page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", selector)

    def text_colour(selector: str) -> str:
        return page.evaluate("(s) => getComputedStyle(document.querySelector(s)).color", selector)

    assert luminance(background("#coflux-studio")) > 0.8
    try:
        run_command(page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=WAIT_MS)
        # Lab swaps its theme stylesheet asynchronously: wait until the panel follows.
        page.wait_for_function("""() => {
          const c = getComputedStyle(document.getElementById('coflux-studio')).backgroundColor;
          const [r, g, b] = c.match(/[\\d.]+/g).map(Number);
          return r + g + b < 200;
        }""", timeout=WAIT_MS)
        assert luminance(background("#coflux-studio")) < 0.25
        assert luminance(text_colour(".coflux-lab-run-target")) > 0.6  # light text on dark
        assert luminance(background(f'[id="coflux-run-{finished_run}"] .coflux-lab-runtab')) < 0.25
        page.screenshot(path=str(artifacts / "lab-dark.png"))
    finally:
        run_command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=WAIT_MS)

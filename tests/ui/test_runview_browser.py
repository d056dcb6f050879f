"""The notebook run view in a real JupyterLab, driven through headless Chromium.

A notebook loads coflux, defines the showcase workflow of tests/apps/viewapp.py in its kernel,
runs it (the run displays as the live view) and then blocks in a busy cell. The showcase's
training task waits at a gate half-way, so the view is checked live: the graph has every node
(a collapsed group, a failed step, memo and cache hits, a child run), the training step is
running, the logs show rendered lines, the metrics chart draws and the progress bar is half full,
the assets tab previews the image and the CSV. Then the gate opens: the run finishes in the view
while the busy cell still runs. Last, a cell shows `run.graph` alone.
"""

from __future__ import annotations

import pathlib
import re
import textwrap

import pytest
from runview_helpers import REPO, serving, view_built
from ui_helpers import CELL_PROMPTS_JS, Gates, wait_for_idle_kernel, write_notebook

pytestmark = pytest.mark.ui

NOTEBOOK = "runview_demo.ipynb"
VIEWAPP = REPO / "tests" / "apps" / "viewapp.py"
WAIT_MS = 90_000
EPOCHS = 8  # showcase's train(8): it waits at the gate after epoch 4


def notebook_cells(gates: pathlib.Path) -> list[str]:
    return [
        "%load_ext coflux",
        textwrap.dedent(f"""\
            # The showcase workflows, defined in this kernel (so the kernel runs them).
            import pathlib
            GATES = pathlib.Path({str(gates)!r})
            exec(compile(pathlib.Path({str(VIEWAPP)!r}).read_text(), {str(VIEWAPP)!r}, "exec"))
            """),
        'run = showcase.run(3, gate=str(GATES / "train"))\nrun',
        '# A busy cell: the view above must keep updating while it runs.\n'
        'wait_for_gate(str(GATES / "busy-cell"))\nprint("busy cell done")',
        "run.graph",
    ]


BUSY_CELL = 3  # index of the busy cell


def busy_cell_running(page) -> bool:
    prompts = page.evaluate(CELL_PROMPTS_JS)
    return len(prompts) > BUSY_CELL and prompts[BUSY_CELL] == "[*]:"


@pytest.fixture(scope="module")
def built() -> None:
    missing = view_built()
    if missing:
        pytest.skip(missing)


def test_run_view_goes_live_in_jupyterlab(built, lab, page, artifacts):
    from playwright.sync_api import expect

    gates = Gates(lab.root / "gates")
    write_notebook(lab.root / NOTEBOOK, notebook_cells(gates.directory))
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for_idle_kernel(page, NOTEBOOK, WAIT_MS)
    # Not awaited: the command settles only once every cell has run (the busy cell waits for us).
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    view = page.locator(".jp-OutputArea-output .cf-runview").first
    expect(view).to_be_visible(timeout=WAIT_MS)
    header = view.locator(".cf-run-header")
    expect(header).to_contain_text("showcase")

    # Graph: every node, while the training step waits at its gate (running, animated).
    train = view.locator('.cf-node[aria-label^="train"]')
    expect(train).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    expect(train).to_have_class(re.compile(r"\bcf-node-running\b"))
    expect(view.locator(".cf-run-status")).to_contain_text("running")
    page.wait_for_function(f"() => ({CELL_PROMPTS_JS})()[{BUSY_CELL}] === '[*]:'", timeout=WAIT_MS)
    expect(view.locator(".cf-node-group")).to_have_count(1)  # the squares, collapsed
    expect(view.locator(".cf-node-group")).to_have_attribute("aria-label", "▣ squares (3): value")
    expect(view.locator('.cf-node[aria-label^="broken"]')).to_have_attribute("data-status", "error")
    expect(view.locator('.cf-node[aria-label^="expensive"][data-status="cached"]')).to_have_count(1)
    expect(view.locator('.cf-node[aria-label^="lookup"]')).to_have_attribute("aria-label", 'lookup("a"): value, memoised')
    expect(view.locator(".cf-node-run")).to_have_count(1)  # the child run, a linked node
    edges = view.locator(".cf-graph-svg .cf-edges")
    expect(edges.locator(".cf-edge-successor")).to_have_count(1)  # the cache hit -> the execution it reused
    # The memo hit came from the same parent: the step is pinned (its panel lists the memo link).
    expect(view.locator('.cf-node[aria-label^="lookup"] .cf-pin')).to_have_count(1)
    expect(edges.locator(".cf-edge-spawned, .cf-edge-childrun")).to_have_count(1)  # -> the child run
    assert busy_cell_running(page)
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(artifacts / "runview-graph-live.png"))

    # A memoised step's panel links the call it answered; the failed step's shows the traceback.
    view.locator('.cf-node[aria-label^="lookup"]').click()
    panel = view.locator(".cf-step-panel")
    expect(panel.locator(".cf-field", has_text="memoised for").locator(".cf-exec-link")).to_contain_text("showcase")
    expect(panel.locator(".cf-field", has_text="memo key")).to_have_count(1)
    view.locator('.cf-node[aria-label^="broken"]').click()
    expect(panel.locator(".cf-error-head")).to_have_text("ValueError: item 3 is broken")
    expect(panel.locator(".cf-frame").first).to_contain_text("in broken")
    view.screenshot(path=str(artifacts / "runview-step-panel.png"))
    panel.press("Escape")
    expect(panel).to_have_count(0)

    # Logs: templates filled in, an execution link, levels as text.
    view.get_by_role("tab", name="Logs").click()
    logs = view.locator(".cf-log-row")
    expect(logs.filter(has_text="showcase of 3 items for the views")).to_have_count(1, timeout=WAIT_MS)
    warning = logs.filter(has_text="failed: item 3 is broken")
    expect(warning.locator(".cf-log-level")).to_contain_text("warning")
    expect(warning.locator(".cf-exec-link")).to_contain_text("broken")
    expect(logs.filter(has_text="wrote").locator(".cf-value-asset")).to_contain_text("report")

    # Metrics: the training chart draws and the progress bar is half full (the task waits).
    view.get_by_role("tab", name="Metrics").click()
    progress = view.locator('.cf-progress[data-metric="epochs"] [role="progressbar"]')
    expect(progress).to_have_attribute("aria-valuemax", str(EPOCHS), timeout=WAIT_MS)
    expect(progress).to_have_attribute("aria-valuenow", str(EPOCHS // 2))
    chart = view.locator('.cf-chart[data-chart="group:training"]')
    expect(chart.locator(".scatterlayer .trace")).to_have_count(2, timeout=WAIT_MS)  # loss and accuracy
    expect(view.locator('.cf-chart[data-chart="metric:throughput"]')).to_have_count(1)
    assert busy_cell_running(page)
    view.screenshot(path=str(artifacts / "runview-metrics-live.png"))

    # Assets: the image previews, the CSV as a table.
    view.get_by_role("tab", name="Assets").click()
    image = view.locator(".cf-preview-image img")
    expect(image).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 96", arg=image.element_handle())
    view.get_by_role("button", name="table.csv").click()
    expect(view.locator(".cf-preview-csv tbody tr")).to_have_count(5)
    expect(view.locator(".cf-preview-csv th").first).to_have_text("name")
    expect(view.locator('a[download="table.csv"]')).to_have_count(1)
    view.screenshot(path=str(artifacts / "runview-assets.png"))

    # The gate opens: the run finishes in the view while the busy cell still runs.
    gates.open("train")
    expect(view.locator(".cf-run-status")).to_contain_text("value", timeout=WAIT_MS)
    view.get_by_role("tab", name="Metrics").click()
    expect(progress).to_have_attribute("aria-valuenow", str(EPOCHS), timeout=WAIT_MS)
    assert busy_cell_running(page)

    # The busy cell ends; the next cell shows the graph alone.
    gates.open("busy-cell")
    graph = page.locator(".jp-OutputArea-output .cf-runview.cf-part-graph")
    expect(graph).to_be_visible(timeout=WAIT_MS)
    expect(graph.locator(".cf-tabs")).to_have_count(0)
    expect(graph.locator('.cf-node[aria-label^="train"]')).to_have_attribute("data-status", "value")
    graph.scroll_into_view_if_needed()
    graph.screenshot(path=str(artifacts / "runview-graph-part.png"))

    # Lab's dark theme: the views follow it.
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=WAIT_MS)
    background = graph.locator(".cf-graph-svg").evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert background != "rgb(255, 255, 255)", "the graph kept a light background in the dark theme"
    view.scroll_into_view_if_needed()
    view.get_by_role("tab", name="Graph").click()
    view.screenshot(path=str(artifacts / "runview-dark.png"))
    # Charts drawn in the light theme are drawn again in the dark one's colours (light text on a
    # dark background; the chart's title is the page's own text, above the plot).
    view.get_by_role("tab", name="Metrics").click()
    page.wait_for_function("""(el) => {
      const title = el.querySelector('.cf-chart .xtitle');
      const svg = el.querySelector('.cf-chart .main-svg');
      const rgb = title && getComputedStyle(title).fill.match(/\\d+/g);
      const bg = svg && getComputedStyle(svg).backgroundColor.match(/\\d+/g);
      return rgb && bg && (+rgb[0] + +rgb[1] + +rgb[2]) / 3 > 128 && (+bg[0] + +bg[1] + +bg[2]) / 3 < 100;
    }""", arg=view.element_handle(), timeout=WAIT_MS)
    view.screenshot(path=str(artifacts / "runview-metrics-dark.png"))
    view.get_by_role("tab", name="Graph").click()
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")

    # "Open in Studio" in JupyterLab opens the run in a Lab tab (the Coflux extension), not a page.
    run_id = view.locator(".cf-run-id").first.text_content().strip()
    pages_before = len(page.context.pages)
    view.locator(".cf-open-studio").click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=f"Run {run_id}")).to_be_visible(
        timeout=WAIT_MS)
    assert len(page.context.pages) == pages_before, "a browser tab opened instead of a Lab tab"
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"
    print(f"screenshots: {artifacts}")


# ---------------------------------------------------------------------- actions, outside Jupyter
# The same view module against a headless server (tests/ui/runview_helpers.py mounts it as the
# notebook does): the step panel's re-run and cancel, the header's cancel, keyboard use,
# re-mounting on trait changes, cleanup, and what it says while the server is away.

@pytest.fixture(scope="module")
def stack(built, ui_requirements, tmp_path_factory):

    with serving(tmp_path_factory.mktemp("runview-actions"), ["viewapp"], concurrency=4) as server:
        yield server


def test_step_panel_reruns_a_failed_step_and_cancels(stack, page, artifacts, tmp_path):
    from playwright.sync_api import expect
    from runview_helpers import open_view, submit, wait_run

    run_id = submit(stack, "showcase", 3)
    wait_run(stack, run_id)
    open_view(page, stack, run_id)
    view = page.locator(".cf-runview")
    expect(view.locator(".cf-run-status")).to_contain_text("value")

    # Re-run the failed step in a chosen workspace: the new attempt appears live.
    view.locator('.cf-node[aria-label^="broken"]').click()
    panel = view.locator(".cf-step-panel")
    expect(panel.get_by_label("workspace to re-run in")).to_have_value("default")
    panel.get_by_role("button", name="Re-run").click()
    attempts = panel.locator(".cf-attempt")
    expect(attempts).to_have_count(2, timeout=WAIT_MS)
    expect(attempts.nth(1)).to_contain_text("rerun")
    expect(attempts.nth(1)).to_contain_text("re-run by super token")  # who did it, live from the event
    expect(panel.locator(".cf-field", has_text="submitted by")).to_contain_text("super token")
    expect(attempts.nth(1).locator(".cf-badge")).to_contain_text("error", timeout=WAIT_MS)
    expect(panel.locator('[role="status"]')).to_contain_text("new attempt")
    # Keyboard: the chosen attempt is focusable, arrows move between attempts, Escape closes.
    attempts.nth(1).focus()
    page.keyboard.press("ArrowUp")
    expect(attempts.nth(0)).to_have_attribute("aria-selected", "true")
    expect(attempts.nth(0)).to_be_focused()
    expect(panel.locator("h4", has_text="Attempt 1")).to_have_count(1)
    page.keyboard.press("ArrowDown")
    expect(attempts.nth(1)).to_have_attribute("aria-selected", "true")
    page.screenshot(path=str(artifacts / "runview-rerun.png"))
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)

    # Cancel a running step from its panel, and a whole run from the header.
    gate = str(tmp_path / "never")
    stuck = submit(stack, "showcase", 3, gate)
    page.evaluate("(id) => window.viewModel.set('run_id', id)", stuck)  # the view re-mounts on the new run
    train = view.locator('.cf-node[aria-label^="train"]')
    expect(train).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    train.click()
    panel.get_by_role("button", name="Cancel step").click()
    expect(train).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    expect(panel.locator(".cf-panel-head .cf-badge")).to_contain_text("cancelled")

    other = submit(stack, "showcase", 3, gate)
    page.evaluate("(id) => window.viewModel.set('run_id', id)", other)
    expect(view.locator('.cf-node[aria-label^="train"]')).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    view.get_by_role("button", name="Cancel run").click()
    expect(view.locator(".cf-run-status")).to_contain_text("cancelled", timeout=WAIT_MS)
    expect(view.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"


def test_view_remounts_cleans_up_and_says_when_disconnected(stack, page, artifacts):
    from playwright.sync_api import expect
    from runview_helpers import open_view, submit, wait_run

    run_id = submit(stack, "showcase", 2)
    wait_run(stack, run_id)
    open_view(page, stack, run_id, part="timeline")
    part = page.locator(".cf-runview.cf-part-timeline")
    expect(part.locator(".cf-timeline-row")).to_have_count(10, timeout=WAIT_MS)  # one bar per attempt
    page.evaluate("() => window.viewModel.set('part', 'logs')")
    expect(page.locator(".cf-runview.cf-part-logs .cf-log-row").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".cf-part-timeline")).to_have_count(0)

    # The server goes away: the view says so, then resumes by itself when it is back.
    stack.kill()
    expect(page.locator(".cf-connection")).to_contain_text("⚠ lost contact with the server since ", timeout=WAIT_MS)
    expect(page.locator(".cf-connection")).to_contain_text("reconnecting…")
    page.screenshot(path=str(artifacts / "runview-disconnected.png"))
    stack.start()
    expect(page.locator(".cf-connection")).to_have_count(0, timeout=WAIT_MS)

    # Removed from the page: no listeners left, nothing rendered.
    page.evaluate("() => window.viewCleanup()")
    assert page.evaluate("() => window.viewModel.listeners()") == 0
    expect(page.locator(".cf-runview")).to_have_count(0)
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"


# The in-page clock (Date.now) and the server's event times share this machine's clock.
_WATCH_STATUS_JS = """(label) => new Promise((resolve) => {
  const node = document.querySelector(`.cf-node[aria-label^="${label}"]`);
  const observer = new MutationObserver(() => {
    if (node.getAttribute("data-status") !== "running") { observer.disconnect(); resolve(Date.now() / 1000); }
  });
  observer.observe(node, { attributes: true, attributeFilter: ["data-status"] });
  window.statusChangedAt = null;
  window.watching = true;
}).then((at) => { window.statusChangedAt = at; })"""


def test_view_shows_a_result_soon_after_its_event(stack, page, tmp_path):
    """A step's result shows in the graph shortly after the server recorded it: the figure is the
    time from the result's own timestamp to the node's change in the page (printed, not asserted)."""
    from playwright.sync_api import expect
    from runview_helpers import open_view, submit, wait_run

    delays = []
    for sample in range(3):
        gate = tmp_path / f"gate-{sample}"
        run_id = submit(stack, "showcase", 3, str(gate))
        open_view(page, stack, run_id)
        train = page.locator('.cf-runview .cf-node[aria-label^="train"]')
        expect(train).to_have_attribute("data-status", "running", timeout=WAIT_MS)
        page.evaluate(f"() => {{ ({_WATCH_STATUS_JS})('train'); }}")
        page.wait_for_function("() => window.watching === true")
        gate.write_text("open")
        expect(train).to_have_attribute("data-status", "value", timeout=WAIT_MS)
        shown_at = page.wait_for_function("() => window.statusChangedAt").json_value()
        run = wait_run(stack, run_id)
        (step,) = [s for s in run["steps"] if s["target"] == "train"]
        recorded_at = step["executions"][-1]["result"]["at"]
        delays.append((shown_at - recorded_at) * 1000)
    print(f"\nresult recorded -> shown in the graph: {', '.join(f'{d:.0f} ms' for d in delays)}")
    assert all(d > -50 for d in delays), "the page showed a result before the server recorded it"


NOTEBOOK7 = "runview_nb7.ipynb"


def test_run_view_in_jupyter_notebook_7(built, lab, page, artifacts):
    """The same view in Jupyter Notebook 7's interface (served by the same Jupyter server)."""
    from playwright.sync_api import expect

    write_notebook(lab.root / NOTEBOOK7, [
        "%load_ext coflux",
        textwrap.dedent(f"""\
            import pathlib
            exec(compile(pathlib.Path({str(VIEWAPP)!r}).read_text(), {str(VIEWAPP)!r}, "exec"))
            """),
        "run = showcase.run(3)\nrun",
        "run.result(timeout=120)\nrun.graph",
    ])
    page.goto(f"{lab.url}notebooks/{NOTEBOOK7}?token={lab.token}")
    page.wait_for_function("""() => {
      const app = window.jupyterapp; const panel = app && app.shell && app.shell.currentWidget;
      const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
      return kernel && kernel.status === 'idle';
    }""", timeout=WAIT_MS)
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    view = page.locator(".jp-OutputArea-output .cf-runview").first
    expect(view).to_be_visible(timeout=WAIT_MS)
    expect(view.locator(".cf-run-status")).to_contain_text("value", timeout=WAIT_MS)
    expect(view.locator('.cf-node[aria-label^="broken"]')).to_have_attribute("data-status", "error")
    view.locator('.cf-node[aria-label^="broken"]').click()
    expect(view.locator(".cf-step-panel")).to_contain_text("item 3 is broken")
    graph = page.locator(".jp-OutputArea-output .cf-runview.cf-part-graph")
    expect(graph.locator('.cf-node[aria-label^="train"]')).to_have_attribute("data-status", "value",
                                                                            timeout=WAIT_MS)
    view.screenshot(path=str(artifacts / "runview-notebook7.png"))
    # Notebook 7's settings loader throws on the harness's user settings for a Lab-only plugin
    # (apputils-extension:notification), with the coflux extension disabled too; and after a Lab
    # session on the same server it asks for Lab's file browser command. Neither is ours.
    ours = [e for e in page.errors if e != "Cannot read properties of undefined (reading 'schema')"
            and e != "Command 'filebrowser:open-path' not registered."]
    assert ours == [], f"uncaught errors in the page: {ours}"

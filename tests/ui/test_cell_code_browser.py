"""A notebook cell's task shipped to a headless `coflux worker --accept-code`, seen in the run
view in a real JupyterLab (headless Chromium): the step panel shows the code the step ran, that
it was shipped, and "same code as the cell now"; after the cell is edited and run again, the
same panel says "the cell has changed since (now …)". Screenshots go to `artifacts`."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest
from ui_helpers import CELL_PROMPTS_JS, Gates, wait_for_idle_kernel, write_notebook

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from harness import base_env, stop_process, wait_until  # noqa: E402
from runview_helpers import view_built  # noqa: E402

pytestmark = pytest.mark.ui

NOTEBOOK = "cell_code.ipynb"
WAIT_MS = 90_000
EDIT_CELL = 4  # the cell that redefines the task, once its gate opens


def notebook_cells(gates: pathlib.Path) -> list[str]:
    return [
        "%load_ext coflux",
        textwrap.dedent("""\
            import os, time
            import coflux as cf

            @cf.task(remote=True)  # runs away from the kernel: shipped to a worker that accepts code
            def enrich(x):
                return {"value": x + 1, "pid": os.getpid()}

            @cf.workflow()
            def pipeline(x):
                return enrich(x)
            """),
        "run = pipeline.run(41)\nrun.result(timeout=60)\nrun",
        textwrap.dedent(f"""\
            while not os.path.exists({str(gates / "edit")!r}):
                time.sleep(0.05)
            """),
        textwrap.dedent("""\
            @cf.task(remote=True)
            def enrich(x):
                return {"value": x + 100, "pid": os.getpid()}  # edited
            print("edited")
            """),
    ]




def test_the_step_panel_says_whether_the_cell_still_has_the_code_a_step_ran(lab, page, artifacts):
    from playwright.sync_api import expect

    missing = view_built()
    if missing:
        pytest.fail(missing)
    gates = Gates(lab.root / "gates")
    write_notebook(lab.root / NOTEBOOK, notebook_cells(gates.directory))
    env = base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token)
    with open(lab.base / "worker.log", "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--accept-code", "--concurrency", "2"],
                                  cwd=lab.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: any(w["connected"] and w["accepts_code"]
                               for w in lab.api("coflux/api/workers")["workers"]), 60, interval=0.1,
                   message="the --accept-code worker to register")
        page.set_viewport_size({"width": 1500, "height": 950})
        page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
        wait_for_idle_kernel(page, NOTEBOOK, WAIT_MS)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        view = page.locator(".jp-OutputArea-output .cf-runview").first
        expect(view.locator(".cf-run-status")).to_contain_text("value", timeout=WAIT_MS)
        view.locator('.cf-node[aria-label^="enrich"]').click()
        panel = view.locator(".cf-step-panel")
        shipped = panel.locator(".cf-code-shipped")
        expect(shipped).to_contain_text("shipped by value (a notebook cell's code)", timeout=WAIT_MS)
        current = panel.locator(".cf-code-current")
        expect(current).to_have_attribute("data-matches", "true", timeout=WAIT_MS)
        expect(current).to_have_text("· same code as the cell now")
        ran = shipped.locator("code").first.get_attribute("title")
        view.scroll_into_view_if_needed()
        view.screenshot(path=str(artifacts / "cell-code-same.png"))

        # Edit the cell (the notebook's next cell redefines the task) and look again.
        gates.open("edit")
        page.wait_for_function(f"() => /\\[\\d+\\]/.test(({CELL_PROMPTS_JS})()[{EDIT_CELL}] || '')", timeout=WAIT_MS)
        panel.press("Escape")
        expect(panel).to_have_count(0)
        view.locator('.cf-node[aria-label^="enrich"]').click()
        current = view.locator(".cf-step-panel .cf-code-current")
        expect(current).to_have_attribute("data-matches", "false", timeout=WAIT_MS)
        now = current.locator("code").get_attribute("title")
        assert now and ran and now != ran and len(now) == 64
        expect(current).to_have_text(f"· the cell has changed since (now {now[:12]})")
        view.screenshot(path=str(artifacts / "cell-code-changed.png"))
        assert page.errors == [], f"uncaught errors in the page: {page.errors}"
    finally:
        stop_process(worker)

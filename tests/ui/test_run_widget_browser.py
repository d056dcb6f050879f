"""The status-table widget (`coflux.widgets.RunWidget`, fed from the kernel) in a real JupyterLab.

Driven through headless Chromium. (Displaying a run shows the full run view: test_runview_browser.py.)

A notebook loads coflux, defines a fan-out workflow whose tasks wait on gate files, runs it (shown
as a RunWidget) and then blocks in a busy cell. The test opens the gates one by one
and checks, in the page, what a user sees: a row per step, statuses moving from running to done
while the busy cell still runs, the failed step's error, and the run's value at the end.
"""

from __future__ import annotations

import pathlib
import textwrap

import pytest
from ui_helpers import Gates, wait_for_idle_kernel, write_notebook

pytestmark = pytest.mark.ui

NOTEBOOK = "widget_demo.ipynb"
MODULE = "widget_demo"  # the kernel's module name: the notebook's file name
ITEMS = [1, 2, 3, 4]
BROKEN = 3  # square(3) raises
EXPECTED_VALUE = "'sum=21, failed=[3]'"  # 1 + 4 + 16; repr of the workflow's str result
WAIT_MS = 60_000  # generous upper bound for anything the kernel or server has to do


def notebook_cells(gates: pathlib.Path) -> list[str]:
    return [
        "%load_ext coflux",
        textwrap.dedent(f"""\
            import pathlib
            import time

            import coflux as cf

            GATES = pathlib.Path({str(gates)!r})


            def wait_for_gate(name: str, timeout: float = 300) -> None:
                deadline = time.monotonic() + timeout
                while not (GATES / name).exists():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"gate {{name}} was never opened")
                    time.sleep(0.05)


            @cf.task()
            def square(i: int) -> int:
                wait_for_gate(f"square-{{i}}")
                if i == {BROKEN}:
                    raise ValueError(f"item {{i}} is broken")
                return i * i


            @cf.workflow()
            def fan_out(items: list) -> str:
                executions = [square.submit(i) for i in items]
                total, failed = 0, []
                for i, execution in zip(items, executions):
                    try:
                        total += execution.result()
                    except Exception:
                        failed.append(i)
                return f"sum={{total}}, failed={{failed}}"
            """),
        f"run = fan_out.run({ITEMS!r})\nfrom coflux.widgets import RunWidget\nRunWidget(run)",
        '# A busy cell: the widget above must keep updating while it runs.\n'
        'wait_for_gate("busy-cell")\nprint("busy cell done")',
    ]


# JavaScript run in the page (JupyterLab is exposed as window.jupyterapp).
# The busy cell's prompt: "[*]:" while it executes, "[4]:" once done. (The kernel status is no
# help here: Lab takes it from any status message, and the debugger's control-channel requests
# report "idle" while a cell is still running.)
LAST_PROMPT_JS = """() => {
  const prompts = document.querySelectorAll(".jp-Notebook .jp-Cell .jp-InputPrompt");
  return prompts.length ? prompts[prompts.length - 1].textContent.trim() : "";
}"""


def last_prompt(page) -> str:
    return page.evaluate(LAST_PROMPT_JS)


def assert_busy_cell_running(page) -> None:
    """The busy cell is still executing (it only ends once the test opens its gate)."""
    assert last_prompt(page) == "[*]:", f"the busy cell is not executing (prompt {last_prompt(page)!r})"
    assert page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-OutputArea-output").count() == 0


def test_run_widget_updates_live_in_jupyterlab(lab, page, artifacts):
    from playwright.sync_api import expect

    gates = Gates(lab.root / "gates")
    write_notebook(lab.root / NOTEBOOK, notebook_cells(gates.directory))

    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for_idle_kernel(page, NOTEBOOK, WAIT_MS)
    # Not awaited: the command's promise settles only once every cell has run (the busy cell
    # waits for the test).
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    widget = page.locator(".coflux-run")
    expect(widget).to_have_count(1, timeout=WAIT_MS)
    header_badge = widget.locator(".coflux-run-header .coflux-badge")
    rows = widget.locator("table.coflux-run-steps tr")

    def row(number: int):
        """The row of step `number` (1: the workflow, then the tasks in the order submitted)."""
        return rows.nth(number - 1)

    def step_of(item: int) -> int:
        return 2 + ITEMS.index(item)

    def badge(number: int):
        return row(number).locator(".coflux-badge")

    # A row per step appears: the workflow, then one task per item; all of them running (the
    # tasks wait at their gates), while the busy cell runs.
    expect(rows).to_have_count(1 + len(ITEMS), timeout=WAIT_MS)
    expect(row(1).locator("td.coflux-target")).to_have_text(f"{MODULE}/fan_out (workflow)")
    for n in range(2, 2 + len(ITEMS)):
        expect(row(n).locator("td.coflux-target")).to_have_text(f"{MODULE}/square")
        expect(badge(n)).to_have_text("running", timeout=WAIT_MS)  # assigned: started
    expect(badge(1)).to_have_text("running")
    expect(header_badge).to_have_text("running")
    page.wait_for_function(f"() => ({LAST_PROMPT_JS})() === '[*]:'", timeout=WAIT_MS)
    assert_busy_cell_running(page)
    run_id = widget.locator(".coflux-run-header .coflux-dim").first.text_content()
    assert run_id and all(row(n).locator("td").nth(1).text_content() == f"{run_id}:{n}:1"
                          for n in range(1, 2 + len(ITEMS)))

    # One task finishes: only its row changes.
    gates.open("square-1")
    expect(badge(step_of(1))).to_have_text("value", timeout=WAIT_MS)
    expect(badge(step_of(1))).to_have_class("coflux-badge coflux-ok")
    for item in ITEMS[1:]:
        expect(badge(step_of(item))).to_have_text("running")
    assert_busy_cell_running(page)

    # The broken one fails: its row shows the error.
    gates.open(f"square-{BROKEN}")
    broken = step_of(BROKEN)
    expect(badge(broken)).to_have_text("error", timeout=WAIT_MS)
    expect(badge(broken)).to_have_class("coflux-badge coflux-bad")
    expect(row(broken).locator("td.coflux-error")).to_have_text(f"ValueError: item {BROKEN} is broken")
    expect(widget.locator(".coflux-run-header")).to_contain_text("1 error")
    expect(header_badge).to_have_text("running")
    assert_busy_cell_running(page)
    page.screenshot(path=str(artifacts / "run-widget-midway.png"))

    # The rest finish: the run's value appears.
    for item in ITEMS:
        if item not in (1, BROKEN):
            gates.open(f"square-{item}")
    expect(header_badge).to_have_text("value", timeout=WAIT_MS)
    expect(widget.locator(".coflux-run-value code")).to_have_text(EXPECTED_VALUE, timeout=WAIT_MS)
    expect(badge(1)).to_have_text("value")
    for item in ITEMS:
        expect(badge(step_of(item))).to_have_text("error" if item == BROKEN else "value")
    expect(widget.locator(".coflux-run-header")).to_contain_text(f"{1 + len(ITEMS)} steps: 4 value, 1 error")
    assert_busy_cell_running(page)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(artifacts / "run-widget.png"))
    page.screenshot(path=str(artifacts / "run-widget-page.png"))

    # Let the busy cell end: it prints, and the widget keeps its final state.
    gates.open("busy-cell")
    cells = len(notebook_cells(gates.directory))
    page.wait_for_function(f"() => ({LAST_PROMPT_JS})() === '[{cells}]:'", timeout=WAIT_MS)
    expect(page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-OutputArea-output")) \
        .to_have_text("busy cell done")
    expect(header_badge).to_have_text("value")
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"

    # The server's record agrees with what the widget showed.
    run = lab.api(f"coflux/api/runs/{run_id}")
    assert [(s["target"], s["executions"][-1]["result"]["kind"]) for s in run["steps"]] == \
        [("fan_out", "value")] + [("square", "error" if i == BROKEN else "value") for i in ITEMS]
    print(f"screenshots: {artifacts}")

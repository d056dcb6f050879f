"""The step panel of a step shipped by value (a notebook cell's task run by a worker started with
`--accept-code`) shows its code hash, that it was shipped, and whether that is the code the
worker declares now. Headless Chromium against a real `coflux server` and `coflux worker
--accept-code`. Screenshots at 1500x950 go to `artifacts`."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import Server, wait_until  # noqa: E402
from runview_helpers import serving  # noqa: E402
from test_accept_code import ship  # noqa: E402
from test_studio_browser import api, log_in, no_page_errors, studio_built  # noqa: E402

pytestmark = pytest.mark.ui

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator[Server]:
    missing = studio_built()
    if missing:
        pytest.fail(missing)
    with serving(tmp_path_factory.mktemp("shipping"), ["resumeui"], extra=["--accept-code"]) as server:
        yield server


def test_the_step_panel_says_a_step_was_shipped(stack, page, artifacts):
    server = stack
    code = ship(server)
    run_id = api(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 2},
                                      "options": {"code": code}})["run"]
    wait_until(lambda: server.get(f"api/runs/{run_id}")["status"] == "value", timeout=30,
               message=f"{run_id} to finish")
    page.set_viewport_size({"width": 1500, "height": 950})
    log_in(page, server)
    page.goto(f"{server.url}#/runs/{run_id}/steps/{run_id}:1")
    panel = page.locator(".cf-step-panel[data-step]")
    panel.wait_for(timeout=WAIT_MS)
    note = panel.locator(".cf-code-shipped")
    note.wait_for(timeout=WAIT_MS)
    # The worker hosting `resumeui` declares the code it has now, which this shipped code is not.
    current = server.get(f"api/steps/{run_id}:1/code")["current"]
    assert current["kind"] == "headless" and current["code_hash"] != code["hash"]
    changed = panel.locator(".cf-code-current[data-matches=false]")
    changed.wait_for(timeout=WAIT_MS)
    assert note.inner_text() == (f"{code['hash'][:12]} shipped by value (a notebook cell's code) · "
                                 f"worker {current['worker']} now has other code ({current['code_hash'][:12]})")
    assert note.locator("code").first.get_attribute("title") == code["hash"]
    page.screenshot(path=str(artifacts / "shipped-step-panel.png"))

    # Shipped with the code the worker has now: the panel says they are the same.
    same = api(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 3},
                                    "options": {"code": {**code, "hash": current["code_hash"]}}})["run"]
    wait_until(lambda: server.get(f"api/runs/{same}")["status"] == "value", timeout=30,
               message=f"{same} to finish")
    page.goto(f"{server.url}#/runs/{same}/steps/{same}:1")
    matching = page.locator(f".cf-step-panel[data-step='{same}:1'] .cf-code-current[data-matches=true]")
    matching.wait_for(timeout=WAIT_MS)
    assert matching.inner_text().strip() == f"· same code as worker {current['worker']} now"
    page.screenshot(path=str(artifacts / "shipped-step-panel-same-code.png"))
    no_page_errors(page)

"""Resume from failure in Studio's run view (the same view as the notebook widget and the Lab
tab), driven through headless Chromium against a real `coflux server` and `coflux worker`
(tests/apps/resumeui.py): the failed run offers "Resume from failure"; after it the graph shows
one attempt's calls at a time with a selector, reused calls say "reused from attempt 1", and
the step panel says so too. Screenshots at 1500x950 go to `artifacts`."""

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
from test_studio_browser import api, log_in, no_page_errors, studio_built  # noqa: E402

pytestmark = pytest.mark.ui

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator[Server]:
    missing = studio_built()
    if missing:
        pytest.fail(missing)
    with serving(tmp_path_factory.mktemp("resume"), ["resumeui"], concurrency=4) as server:
        yield server


def _status(server: Server, run_id: str) -> str:
    runs = api(server, "api/runs?module=resumeui&limit=1000")["runs"]
    return next(r["status"] for r in runs if r["id"] == run_id)


def test_resume_from_failure_in_the_run_view(stack, page, artifacts, tmp_path):
    server = stack
    flag = tmp_path / "flag"
    run_id = api(server, "api/runs", {"module": "resumeui", "target": "fan",
                                      "kwargs": {"n": 6, "failing": [2], "flag": str(flag)}})["run"]
    wait_until(lambda: _status(server, run_id) == "error", timeout=30, message=f"{run_id} to fail")
    page.set_viewport_size({"width": 1500, "height": 950})
    log_in(page, server)
    page.goto(f"{server.url}#/runs/{run_id}")
    page.wait_for_selector(f".cf-runview[data-run='{run_id}'][data-status='error']", timeout=WAIT_MS)
    assert page.locator(".cf-graph .cf-attempt-choice").count() == 0  # one attempt: no selector
    page.screenshot(path=str(artifacts / "resume-failed.png"))

    flag.write_text("fixed")
    page.locator(".cf-run-header button", has_text="Resume from failure").click()
    page.wait_for_selector(f".cf-runview[data-run='{run_id}'][data-status='value']", timeout=WAIT_MS)
    assert _status(server, run_id) == "value"
    # One attempt's calls at a time: the workflow and its 6 parts, not 12.
    choice = page.locator(".cf-graph .cf-attempt-choice select")
    choice.wait_for(timeout=WAIT_MS)
    assert choice.input_value() == "2"
    assert choice.locator("option").all_inner_texts() == ["1", "2 (resume)"]
    page.wait_for_selector(".cf-graph[data-nodes='7']", timeout=WAIT_MS)
    reused = page.locator(".cf-graph [data-node]", has_text="reused from attempt 1")
    assert reused.count() == 5
    page.screenshot(path=str(artifacts / "resume-attempt-2.png"))

    reused.first.click()
    panel = page.locator(".cf-step-panel[data-step]")
    panel.wait_for()
    assert "reused from attempt 1" in panel.inner_text()
    page.screenshot(path=str(artifacts / "resume-step-panel.png"))
    panel.locator("button.cf-close").click()

    choice.select_option("1")  # the first attempt's calls, with the one that failed
    page.wait_for_selector(".cf-graph [data-node][data-status='error']", timeout=WAIT_MS)
    assert page.locator(".cf-graph [data-node]", has_text="reused from attempt").count() == 0
    page.screenshot(path=str(artifacts / "resume-attempt-1.png"))
    no_page_errors(page)


def test_a_code_cache_hit_says_it_had_the_same_code(stack, page, artifacts):
    server = stack
    first = api(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 7}})["run"]
    wait_until(lambda: _status(server, first) == "value", timeout=30, message=f"{first} to finish")
    second = api(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 7}})["run"]
    wait_until(lambda: _status(server, second) == "value", timeout=30, message=f"{second} to finish")
    page.set_viewport_size({"width": 1500, "height": 950})
    log_in(page, server)
    page.goto(f"{server.url}#/runs/{second}/steps/{second}:2")
    panel = page.locator(".cf-step-panel[data-step]")
    panel.wait_for(timeout=WAIT_MS)
    note = panel.locator(".cf-code-note")
    note.wait_for(timeout=WAIT_MS)
    assert note.inner_text().replace("↪ ", "").startswith(f"cache hit (same code as {first}:2)")
    page.screenshot(path=str(artifacts / "code-cache-hit.png"))
    no_page_errors(page)

"""Studio, the web page, driven through headless Chromium against a real `coflux server` and a
real `coflux worker` (tests/apps/studioui.py); and Studio inside JupyterLab behind its login.

What a user sees is checked in the page: the login refusal, the workflow list with docstrings,
the run dialog's typed arguments (a bad integer is refused with a message), the live graph of the
new run, a failed step's traceback in the step panel, its re-run with the new attempt appearing,
deep links to a step, the runs list by keyboard, the workers and queue pages, and the run-level
cancel. Screenshots of every page go to `artifacts`.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import Server, Worker, wait_until  # noqa: E402

pytestmark = pytest.mark.ui

REPO = TESTS.parent
BUILD_HINT = "npm --prefix jupyter_ext/frontend ci && npm --prefix jupyter_ext/frontend run build"
WAIT_MS = 30_000
CONCURRENCY = 2  # two `slow` runs fill the worker, so a third waits in the queue


def studio_built() -> str | None:
    for name in ("studio.js", "studio.css", "plotly.js"):
        if not (REPO / "server" / "static" / name).is_file():
            return f"server/static/{name} is not built ({BUILD_HINT})"
    return None


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator[tuple[Server, Worker]]:
    missing = studio_built()
    if missing:
        pytest.fail(missing)
    base = tmp_path_factory.mktemp("studio")
    server = Server(base / "data").start()
    worker = Worker(server, ["studioui"], concurrency=CONCURRENCY, log=base / "worker.log").start()
    try:
        worker.wait_registered()
        yield server, worker
    finally:
        worker.stop()
        server.stop()


def api(server: Server, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(server.url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def submit(server: Server, target: str, **kwargs: Any) -> str:
    return api(server, "api/runs", {"module": "studioui", "target": target, "kwargs": kwargs})["run"]


def run_kind(server: Server, run_id: str) -> str:
    runs = api(server, "api/runs?module=studioui&limit=1000")["runs"]
    return next(r["status"] for r in runs if r["id"] == run_id)


def log_in(page, server: Server) -> None:
    page.goto(f"{server.url}?token={server.token}")
    page.wait_for_selector(".cf-studio")


def shoot(page, artifacts: pathlib.Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"studio-{name}.png"))


def no_page_errors(page) -> None:
    assert not page.errors, f"uncaught errors in the page: {page.errors}"


# ---------------------------------------------------------------------- login


def test_visitor_without_token_is_refused(stack, page, artifacts):
    server, _ = stack
    submit(server, "crunch", count=1)  # data that must not leak
    response = page.goto(server.url)
    assert response is not None and response.status == 401
    shoot(page, artifacts, "refused")
    text = page.inner_text("body")
    assert "token" in text.lower()
    assert page.locator("form input").count() >= 1, "the 401 page asks for the token in a form"
    for secret in ("crunch", "studioui", "Workflows"):
        assert secret not in text, f"the refusal page shows {secret!r}"
    assert page.locator(".cf-studio").count() == 0
    # The API refuses the visitor too (no cookie was set).
    status = page.evaluate("fetch('api/workflows').then((r) => r.status)")
    assert status == 401


def test_printed_login_url_logs_in(stack, page, artifacts):
    server, _ = stack
    printed = re.search(r"^Studio: (\S+)$", server.output(), re.M)
    assert printed, f"`coflux server` printed no Studio URL:\n{server.output()[-2000:]}"
    page.goto(printed.group(1))
    page.wait_for_selector(".cf-studio")
    assert "token=" not in page.url, "the login redirects to a URL without the token"
    cookies = page.context.cookies()
    assert any(c["httpOnly"] for c in cookies), cookies
    page.wait_for_selector(".cf-conn-up", timeout=WAIT_MS)  # the feed connected with the cookie
    no_page_errors(page)


# ---------------------------------------------------------------------- workflows and the run dialog


def test_workflow_list_shows_docstrings(stack, page, artifacts):
    server, _ = stack
    log_in(page, server)
    crunch = page.locator("li[data-workflow='studioui/crunch']")
    crunch.wait_for()
    assert "Scales `count` numbers, then checks a file." in crunch.inner_text()
    assert "second paragraph" not in crunch.inner_text()  # the list shows the summary only
    assert "Sleeps, so a test can cancel it." in page.locator("li[data-workflow='studioui/slow']").inner_text()
    assert page.locator(".cf-module-name", has_text="studioui").count() == 1
    shoot(page, artifacts, "workflows")
    crunch.locator("a.cf-workflow-name").click()
    page.wait_for_selector(".cf-docstring")
    assert "The second paragraph is shown only on the workflow's own page." in page.inner_text(".cf-docstring")
    assert "required" in page.inner_text(".cf-params")
    shoot(page, artifacts, "workflow")
    no_page_errors(page)


def test_run_dialog_typed_arguments_and_live_graph(stack, page, artifacts, tmp_path):
    server, _ = stack
    log_in(page, server)
    before = len(api(server, "api/runs?module=studioui&target=crunch&limit=1000")["runs"])
    page.locator("li[data-workflow='studioui/crunch'] button", has_text="Run").click()
    dialog = page.locator("[role=dialog]")
    dialog.wait_for()
    assert page.input_value("#cf-arg-factor") == "2.0", "the default is filled in"
    assert page.input_value("#cf-arg-label") == "demo"
    page.fill("#cf-arg-count", "three")
    page.fill("#cf-arg-tags", "[1, 2")
    dialog.locator("button[type=submit]").click()
    error = dialog.locator("#cf-arg-count-error")
    error.wait_for()
    assert "not an integer" in error.inner_text()
    assert "JSON" in dialog.locator("#cf-arg-tags-error").inner_text()
    shoot(page, artifacts, "run-dialog-refused")
    assert len(api(server, "api/runs?module=studioui&target=crunch&limit=1000")["runs"]) == before, \
        "a refused dialog submits nothing"

    page.fill("#cf-arg-count", "3")
    page.fill("#cf-arg-factor", "1.5")
    page.fill("#cf-arg-tags", '["x", "y"]')
    page.check("#cf-arg-verbose")  # a bool is a check box
    page.fill("#cf-arg-fix_file", str(tmp_path / "fix"))
    assert page.locator("#cf-arg-count-error").count() == 0
    dialog.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"#/runs/R[A-Za-z0-9]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    # The live graph: the run's steps appear as nodes, and the run finishes in the view.
    page.wait_for_selector(".cf-graph [data-node]", timeout=WAIT_MS)
    page.wait_for_selector(f".cf-runview[data-run='{run_id}'][data-status='value']", timeout=WAIT_MS)
    nodes = page.locator(".cf-graph [data-node]")
    wait_until(lambda: nodes.count() >= 5, timeout=10, message="five nodes (crunch, 3 scale, check)")
    assert page.locator(".cf-graph [data-node][data-status='error']").count() == 1
    shoot(page, artifacts, "run")
    # Arguments arrived typed: crunch ran with them (3 * 1.5 scaled: 0 + 1.5 + 3.0).
    result = api(server, f"api/runs/{run_id}/result?timeout=10")
    assert "4.5" in json.dumps(result), result
    no_page_errors(page)


def crunch_run(server: Server, fix_file: pathlib.Path) -> str:
    run_id = submit(server, "crunch", count=2, fix_file=str(fix_file))
    wait_until(lambda: run_kind(server, run_id) == "value", timeout=30, message=f"{run_id} to finish")
    return run_id


def test_failed_step_traceback_and_rerun(stack, page, artifacts, tmp_path):
    server, _ = stack
    fix = tmp_path / "fix-me"
    run_id = crunch_run(server, fix)
    log_in(page, server)
    page.goto(f"{server.url}#/runs/{run_id}")
    failed = page.locator(".cf-graph [data-node][data-status='error']")
    failed.wait_for(timeout=WAIT_MS)
    failed.click()
    panel = page.locator(".cf-step-panel[data-step]")
    panel.wait_for()
    step_id = panel.get_attribute("data-step")
    assert page.url.endswith(f"#/runs/{run_id}/steps/{step_id}"), "the selected step is in the URL"
    traceback = panel.locator(".cf-traceback")
    traceback.wait_for(timeout=WAIT_MS)  # the remote frames come with the snapshot
    assert "studioui.py" in traceback.inner_text()
    assert "ValueError" in panel.inner_text() and "fix-me is missing" in panel.inner_text()
    attempts = panel.locator(".cf-attempts [data-execution]")
    assert attempts.count() == 1
    shoot(page, artifacts, "failed-step")

    fix.write_text("fixed")
    panel.locator("button", has_text="Re-run").click()
    panel.locator(f".cf-attempts [data-execution='{step_id}:2']").wait_for(timeout=WAIT_MS)
    assert attempts.count() == 2, "the new attempt appears beside the failed one"
    # It succeeds (the file exists now): the step's node turns to a value, live.
    page.wait_for_selector(f".cf-graph [data-node='{step_id}'][data-status='value']", timeout=WAIT_MS)
    shoot(page, artifacts, "rerun")
    no_page_errors(page)


def test_a_rerun_of_the_workflow_step_decides_the_run(stack, page, artifacts, tmp_path):
    """The run's own (workflow) step ends cancelled, is re-run and succeeds: the runs list and the
    run page both say `value`, with one duration (the server's: tests/test_run_state.py has the
    other surfaces)."""
    server, _ = stack
    gate = tmp_path / "gate"
    run_id = submit(server, "gated", gate=str(gate))
    wait_until(lambda: len(api(server, f"api/runs/{run_id}")["steps"]) == 2, timeout=30, message="wait_for to start")
    api(server, f"api/executions/{run_id}:1:1/cancel", {})
    wait_until(lambda: run_kind(server, run_id) == "cancelled", timeout=30, message=f"{run_id} to be cancelled")
    gate.write_text("open")
    api(server, f"api/steps/{run_id}:1/rerun", {})
    wait_until(lambda: run_kind(server, run_id) == "value", timeout=30, message=f"{run_id} to succeed")
    log_in(page, server)
    page.goto(f"{server.url}#/runs")
    row = page.locator(f".cf-runs-table tr[data-run='{run_id}']")
    row.wait_for(timeout=WAIT_MS)
    assert row.locator(".cf-status").inner_text().strip().endswith("value")
    listed = row.locator("td").nth(4).inner_text().strip()
    page.goto(f"{server.url}#/runs/{run_id}")
    page.wait_for_selector(f".cf-runview[data-run='{run_id}'][data-status='value']", timeout=WAIT_MS)
    assert listed and page.locator(".cf-run-header .cf-run-duration").inner_text().strip() == listed
    shoot(page, artifacts, "rerun-run")
    no_page_errors(page)


def test_deep_link_opens_the_step(stack, page, artifacts, tmp_path):
    server, _ = stack
    run_id = crunch_run(server, tmp_path / "never")
    log_in(page, server)
    step_id = f"{run_id}:2"  # the first `scale` step
    page.goto(f"{server.url}#/runs/{run_id}/steps/{step_id}")
    panel = page.locator(f".cf-step-panel[data-step='{step_id}']")
    panel.wait_for(timeout=WAIT_MS)
    assert "scale" in panel.inner_text()
    shoot(page, artifacts, "deep-link")
    # Back to the run and forward to the step again: the panel follows the route.
    page.goto(f"{server.url}#/runs/{run_id}")
    page.wait_for_selector(".cf-runview")
    page.goto(f"{server.url}#/runs/{run_id}/steps/{run_id}:1")
    page.wait_for_selector(f".cf-step-panel[data-step='{run_id}:1']", timeout=WAIT_MS)
    no_page_errors(page)


# ---------------------------------------------------------------------- runs, workers, queue, cancel


def test_runs_list_filters_and_keyboard(stack, page, artifacts, tmp_path):
    server, _ = stack
    crunch_run(server, tmp_path / "never")
    log_in(page, server)
    page.goto(f"{server.url}#/runs")
    rows = page.locator(".cf-runs-table tbody tr")
    rows.first.wait_for()
    assert rows.count() >= 1
    assert page.locator(".cf-runs-table .cf-status").first.inner_text().strip() != ""
    # Filter by status: "running" hides the finished runs.
    page.select_option(".cf-filters select >> nth=0", "succeeded")
    wait_until(lambda: all(r.get_attribute("data-run") for r in rows.all()), timeout=5)
    texts = [r.inner_text() for r in rows.all()]
    assert texts and all("value" in t for t in texts), texts
    page.fill(".cf-filters input[type=search]", "no-such-run")
    page.wait_for_selector("text=No run matches the filters.")
    page.fill(".cf-filters input[type=search]", "")
    page.select_option(".cf-filters select >> nth=0", "")
    rows.first.wait_for()
    shoot(page, artifacts, "runs")
    # Keyboard: focus the first row, move down, open with Enter.
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    second = rows.nth(1).get_attribute("data-run")
    assert page.evaluate("document.activeElement.dataset.run") == second
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"#/runs/{second}$"))
    page.wait_for_selector(f".cf-runview[data-run='{second}']")
    no_page_errors(page)


def test_workers_queue_and_cancel(stack, page, artifacts):
    server, worker = stack
    slow = [submit(server, "slow", seconds=60.0) for _ in range(CONCURRENCY + 1)]
    try:
        log_in(page, server)
        page.goto(f"{server.url}#/workers")
        row = page.locator(".cf-workers-table tbody tr").first
        row.wait_for()
        page.wait_for_function("() => document.querySelectorAll('.cf-workers-table a[href*=\"/steps/\"]').length >= 2",
                               timeout=WAIT_MS)
        text = row.inner_text()
        assert "connected" in text and "studioui" in text and f"/ {CONCURRENCY}" in text
        shoot(page, artifacts, "workers")

        page.goto(f"{server.url}#/queue")
        entry = page.locator(".cf-queue-table tbody tr")
        entry.first.wait_for(timeout=WAIT_MS)
        assert any(run in entry.first.inner_text() for run in slow)
        assert entry.first.locator(".cf-reason").inner_text().strip(), "the queue says why it waits"
        shoot(page, artifacts, "queue")

        running = next(r for r in slow if run_kind(server, r) == "running")
        page.goto(f"{server.url}#/runs/{running}")
        page.wait_for_selector(".cf-runview[data-status='running'], .cf-runview[data-status='assigned']",
                               timeout=WAIT_MS)
        page.locator(".cf-run-header button", has_text="Cancel run").click()
        page.wait_for_selector(f".cf-runview[data-run='{running}'][data-status='cancelled']", timeout=WAIT_MS)
        shoot(page, artifacts, "cancelled")
        no_page_errors(page)
    finally:
        for run_id in slow:
            try:
                api(server, f"api/executions/{run_id}:1:1/cancel", {})
            except urllib.error.HTTPError:
                pass  # finished already


def test_run_page_follows_the_run_across_a_server_restart(ui_requirements, page, artifacts, tmp_path):
    """The feed drops when the server stops; the page says so, reconnects by itself, resumes the
    run's topic from the last event it saw, and shows what happened after."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["studioui"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        gate = tmp_path / "gate"
        run_id = submit(server, "gated", gate=str(gate))
        log_in(page, server)
        page.goto(f"{server.url}#/runs/{run_id}")
        page.wait_for_selector(f".cf-graph [data-node='{run_id}:2'][data-status='running']", timeout=WAIT_MS)
        server.stop()
        page.wait_for_selector(".cf-conn-down", timeout=WAIT_MS)
        shoot(page, artifacts, "disconnected")
        server.start()
        worker.wait_registered()
        page.wait_for_selector(".cf-conn-up", timeout=WAIT_MS)
        gate.write_text("open")  # happens after the reconnect: live events again
        page.wait_for_selector(f".cf-runview[data-run='{run_id}'][data-status='value']", timeout=WAIT_MS)
        assert page.locator(f".cf-graph [data-node='{run_id}:2'][data-status='value']").count() == 1
        shoot(page, artifacts, "reconnected")
        no_page_errors(page)
    finally:
        worker.stop()
        server.stop()


# ---------------------------------------------------------------------- inside Jupyter


class JupyterMount:
    """The coflux server inside the `lab` fixture's Jupyter, as harness.Worker expects a server:
    a headless worker connects to `{base_url}coflux/` with Jupyter's token."""

    def __init__(self, lab) -> None:
        self.url = lab.url + "coflux/"
        self.token = lab.token
        self._lab = lab

    def workers(self) -> list[dict]:
        return self._lab.api("coflux/api/workers")["workers"]


def test_studio_inside_jupyter_behind_its_login(lab, page, artifacts, tmp_path):
    missing = studio_built()
    if missing:
        pytest.fail(missing)
    page.goto(lab.url + "coflux/")
    assert "/login" in page.url, f"not logged in: expected Jupyter's login page, got {page.url}"
    assert page.locator(".cf-studio").count() == 0
    worker = Worker(JupyterMount(lab), ["studioui"], concurrency=2, log=tmp_path / "worker.log").start()
    try:
        worker.wait_registered()
        page.goto(f"{lab.url}coflux/?token={lab.token}")
        page.wait_for_selector(".cf-studio", timeout=WAIT_MS)
        page.wait_for_selector(".cf-conn-up", timeout=WAIT_MS)  # the feed, with Jupyter's cookie
        crunch = page.locator("li[data-workflow='studioui/crunch']")
        crunch.wait_for(timeout=WAIT_MS)
        assert "Scales `count` numbers" in crunch.inner_text()
        assert page.locator(".cf-error").count() == 0
        shoot(page, artifacts, "jupyter-workflows")
        # Submitting is a POST with Jupyter's cookie: the client sends the _xsrf cookie's token.
        crunch.locator("button", has_text="Run").click()
        page.fill("#cf-arg-count", "2")
        page.locator("[role=dialog] button[type=submit]").click()
        page.wait_for_url(re.compile(r"#/runs/R[A-Za-z0-9]+$"))
        page.wait_for_selector(".cf-runview[data-status='value']", timeout=WAIT_MS)
        page.wait_for_selector(".cf-graph [data-node]")
        shoot(page, artifacts, "jupyter-run")
        page.goto(f"{lab.url}coflux/#/workers")
        page.wait_for_selector(".cf-workers-table tbody tr")
        assert "studioui" in page.inner_text(".cf-workers-table")
        no_page_errors(page)
    finally:
        worker.stop()

"""Studio's run dialog builds its fields from each parameter's JSON Schema (tests/apps/typedapp.py,
a real `coflux server` and `coflux worker`, headless Chromium): a `list[float]` is a list of number
fields, an enum and a Literal are choices, `Optional[date]` a date with a None box, a pydantic model
of dataclasses nested groups of fields; a bad value is refused in the dialog with the field named,
and nothing is submitted. Screenshots go to `artifacts`."""

from __future__ import annotations

import json
import pathlib
import re
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import Server  # noqa: E402
from runview_helpers import serving  # noqa: E402

pytestmark = pytest.mark.ui
REPO = TESTS.parent


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator[Server]:
    if not (REPO / "server" / "static" / "studio.js").is_file():
        pytest.fail("server/static/studio.js is not built (npm --prefix jupyter_ext/frontend run build)")
    with serving(tmp_path_factory.mktemp("schema-dialog"), ["typedapp"], concurrency=2) as server:
        yield server


@pytest.fixture
def wide(browser, artifacts, request):
    """A page at 1500x950 (the size the screenshots are looked at)."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            page.screenshot(path=str(artifacts / f"{request.node.name}-failure.png"), full_page=True)
        context.close()


def api(server: Server, path: str) -> Any:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_count(server: Server, target: str) -> int:
    return len(api(server, f"api/runs?module=typedapp&target={target}&limit=1000")["runs"])


def open_dialog(page, server: Server, workflow: str):
    page.goto(f"{server.url}?token={server.token}")
    page.wait_for_selector(".cf-studio")
    page.locator(f"li[data-workflow='typedapp/{workflow}'] button", has_text="Run").click()
    dialog = page.locator("[role=dialog]")
    dialog.wait_for()
    return dialog


def result_of(page, server: Server) -> Any:
    page.wait_for_url(re.compile(r"#/runs/R[A-Za-z0-9]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    return api(server, f"api/runs/{run_id}/result?timeout=30")["value"]["v"]


def test_list_of_floats_enum_literal_and_optional_date(stack, wide, artifacts):
    server = stack
    page = wide
    dialog = open_dialog(page, server, "weighted")
    values = dialog.locator(".cf-sf-list[data-path='values']")
    assert values.is_visible(), "list[float] is a list editor, not a text box"
    add = dialog.get_by_role("button", name="add to values")
    assert "number" in add.inner_text()
    add.click()
    add.click()
    page.fill("#cf-arg-values_0_", "0.1")
    page.fill("#cf-arg-values_1_", "x")
    # The enum and the Literal are choices of exactly their values.
    assert dialog.locator("#cf-arg-color option").all_inner_texts() == ["red", "green", "blue"]
    assert dialog.locator("#cf-arg-mode option").all_inner_texts() == ["fast", "slow"]
    assert page.input_value("#cf-arg-mode") != "", "the Literal's default is chosen"
    # Optional[date]: None until the box is cleared, then a date picker.
    none_box = dialog.get_by_label("day is None")
    assert none_box.is_checked()
    # dict[str, int] | None: None too.
    assert dialog.get_by_label("weights is None").is_checked()
    before = run_count(server, "weighted")
    dialog.locator("button[type=submit]").click()
    error = dialog.locator("#cf-arg-values_1_-error")
    error.wait_for()
    assert error.inner_text() == 'values[1]: "x" is not a number (e.g. 0.5 or 1e-3)'
    assert "One argument needs fixing" in dialog.inner_text()
    page.screenshot(path=str(artifacts / "schema-dialog-refused.png"))
    assert run_count(server, "weighted") == before, "a refused dialog submits nothing"

    page.fill("#cf-arg-values_1_", "2")
    assert dialog.locator("#cf-arg-values_1_-error").count() == 0, "the message goes once the value is fixed"
    page.select_option("#cf-arg-color", label="green")
    page.select_option("#cf-arg-mode", label="slow")
    none_box.uncheck()
    page.fill("#cf-arg-day", "2024-02-29")
    dialog.get_by_label("weights is None").uncheck()
    dialog.get_by_role("button", name="add key to weights").click()
    page.fill("#cf-arg-weights_key1", "3")
    page.screenshot(path=str(artifacts / "schema-dialog-filled.png"))
    dialog.locator("button[type=submit]").click()
    result = result_of(page, server)
    assert result == {"total": 2.1, "weights": {"key1": 3}, "color": "green", "color_type": "Color",
                               "mode": "slow", "day": "2024-02-29", "day_type": "date"}, result
    assert not page.errors, page.errors


def test_nested_pydantic_model_of_dataclasses(stack, wide, artifacts):
    server = stack
    page = wide
    dialog = open_dialog(page, server, "configure")
    group = dialog.locator("fieldset.cf-sf-object[data-path='settings']")
    assert group.is_visible()
    assert "Settings" in group.locator("legend").first.inner_text()
    page.fill("#cf-arg-settings_name", "demo")
    assert page.input_value("#cf-arg-settings_scale") == "1.0", "the model's default is filled in"
    dialog.get_by_role("button", name="add to settings.points").click()
    point = dialog.locator("fieldset.cf-sf-object[data-path='settings.points[0]']")
    assert point.is_visible() and "Point" in point.inner_text()
    page.fill("#cf-arg-settings_scale", "big")
    before = run_count(server, "configure")
    dialog.locator("button[type=submit]").click()
    dialog.locator("#cf-arg-settings_points_0_x-error").wait_for()
    assert dialog.locator("#cf-arg-settings_points_0_x-error").inner_text() == "settings.points[0].x: a value is required"
    assert "is not a number" in dialog.locator("#cf-arg-settings_scale-error").inner_text()
    page.screenshot(path=str(artifacts / "schema-dialog-model-refused.png"))
    assert run_count(server, "configure") == before

    page.fill("#cf-arg-settings_points_0_x", "1.5")
    page.fill("#cf-arg-settings_scale", "2")
    dialog.locator("button[type=submit]").click()
    result = result_of(page, server)
    assert result == {"type": "Settings", "name": "demo", "points": ["Point"], "scale": 2.0, "label": "x"}
    assert not page.errors, page.errors


def test_a_workflow_without_hints_keeps_raw_json(stack, wide, artifacts):
    server = stack
    page = wide
    dialog = open_dialog(page, server, "untyped")
    box = dialog.locator("textarea#cf-arg-value")
    assert box.is_visible(), "no schema: a raw JSON box"
    box.fill('{"a": [1, "two"]}')
    dialog.locator("button[type=submit]").click()
    assert result_of(page, server) == [{"a": [1, "two"]}, None]


def test_step_panel_shows_a_model_as_json_and_a_frame_as_parquet(stack, wide, artifacts):
    server = stack
    page = wide
    request = urllib.request.Request(server.url + "api/runs", method="POST", data=json.dumps(
        {"module": "typedapp", "target": "typed_values", "kwargs": {"n": 2}}).encode(),
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        run_id = json.loads(response.read())["run"]
    api(server, f"api/runs/{run_id}/result?timeout=60")
    page.goto(f"{server.url}?token={server.token}")
    page.wait_for_selector(".cf-studio")
    page.goto(f"{server.url}#/runs/{run_id}/steps/{run_id}:2")  # make_settings
    panel = page.locator(f".cf-step-panel[data-step='{run_id}:2']")
    panel.wait_for()
    value = panel.locator(".cf-value", has_text="Settings")
    value.wait_for()
    text = value.inner_text()
    assert "Settings" in text and '"name"' in text and '"s2"' in text and "pickle" not in text, text
    page.screenshot(path=str(artifacts / "schema-step-model.png"))
    page.goto(f"{server.url}#/runs/{run_id}/steps/{run_id}:3")  # make_frame
    panel = page.locator(f".cf-step-panel[data-step='{run_id}:3']")
    panel.wait_for()
    frame = panel.locator(".cf-value", has_text="DataFrame")
    frame.wait_for()
    assert "2 rows × 3 columns: i, square, label" in frame.inner_text() and "Parquet" in frame.inner_text()
    page.screenshot(path=str(artifacts / "schema-step-frame.png"))
    assert not page.errors, page.errors

"""Large runs in the run view (issue 18, item 2), in Chromium against a real server and worker:

- a 300-step run with 3 failures: one fan-out node "scale x300: 297 ok, 3 failed, 0 running" with
  the workflow's last step in view; the failures found by the status filter and by "next failure"
  (button and keys) in under three actions each; the member list sorts; the full graph on demand;
- 1,000- and 10,000-step runs collapsed, and a 1,000-member fan-out expanded: what the user sees,
  with the figures printed (benchmarks/bench_views_fanout.py prints the same figures alone).

Screenshots at 1500x950 go to the artifacts directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from runview_helpers import open_view, serving, submit, view_built, wait_run

pytestmark = pytest.mark.ui

WAIT_MS = 120_000
FAILS = [17, 150, 283]


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator:
    missing = view_built()
    if missing:
        pytest.skip(missing)
    with serving(tmp_path_factory.mktemp("views-fanout"), ["viewapp"], concurrency=4) as server:
        yield server


@pytest.fixture(scope="module")
def run300(stack) -> str:
    run_id = submit(stack, "fan", 300, FAILS)
    wait_run(stack, run_id)
    return run_id


def in_view(page, selector: str) -> bool:
    """The element's box lies inside the graph's drawing area."""
    return page.evaluate("""(sel) => {
      const svg = document.querySelector('.cf-graph-svg').getBoundingClientRect();
      const box = document.querySelector(sel).getBoundingClientRect();
      return box.width > 0 && box.left >= svg.left - 1 && box.right <= svg.right + 1 &&
             box.top >= svg.top - 1 && box.bottom <= svg.bottom + 1;
    }""", selector)


def test_a_300_step_run_is_one_fan_out_with_its_last_step_in_view(stack, run300, page, artifacts):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1500, "height": 950})
    open_view(page, stack, run300, height=880)
    fan = page.locator(".cf-node-fanout")
    expect(fan).to_have_count(1, timeout=WAIT_MS)
    expect(fan).to_have_attribute("aria-label", "scale x300: 297 ok, 3 failed, 0 running")
    expect(fan).to_have_attribute("data-status", "error")
    # Three nodes: the workflow, the fan-out, the workflow's own last step (summarise), all in view
    # and labelled by the call they were.
    expect(page.locator(".cf-node")).to_have_count(3)
    last = page.locator('.cf-node[aria-label^="summarise(297, …)"]')
    expect(last).to_have_count(1)
    assert in_view(page, '.cf-node[aria-label^="summarise"]')
    assert in_view(page, ".cf-node-fanout")
    # The status bar: a segment for the ok members and one for the failed, sized by count.
    widths = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.cf-node-fanout .cf-status-seg')]
      .map((r) => [r.dataset.class, +r.getAttribute('width')]))""")
    assert set(widths) == {"ok", "failed"} and widths["ok"] > 20 * widths["failed"] / 3
    page.screenshot(path=str(artifacts / "fanout-300-collapsed.png"))

    # "Next failure": one click selects the first failed call, opens its fan-out's list at it
    # and the step panel shows its error.
    page.get_by_role("button", name="next failure").click()
    panel = page.locator(".cf-step-panel")
    expect(panel).to_contain_text(f"item {FAILS[0]} failed on purpose")
    selected = page.locator('.cf-member-row[aria-selected="true"]')
    expect(selected).to_contain_text(f"#{FAILS[0] + 2}")
    expect(selected).to_have_attribute("data-status", "error")
    page.screenshot(path=str(artifacts / "fanout-300-next-failure.png"))
    # The keys (with the graph focused): n / ] go on, p / [ go back, wrapping around.
    page.locator(".cf-graph-svg").focus()
    page.keyboard.press("n")
    expect(panel).to_contain_text(f"item {FAILS[1]} failed on purpose")
    page.keyboard.press("]")
    expect(panel).to_contain_text(f"item {FAILS[2]} failed on purpose")
    page.keyboard.press("]")
    expect(panel).to_contain_text(f"item {FAILS[0]} failed on purpose")
    page.keyboard.press("[")
    expect(panel).to_contain_text(f"item {FAILS[2]} failed on purpose")
    expect(page.get_by_role("button", name="next failure")).to_have_attribute("title", "next failure (keys: n or ] anywhere in the run view; / searches)")
    page.get_by_role("button", name="close the list").click()

    # The status filter: one choice lists exactly the failures.
    page.get_by_label("status filter").select_option("failed")
    rows = page.locator(".cf-member-scroll .cf-member-row")
    expect(rows).to_have_count(3)
    for row, i in zip(rows.all(), FAILS, strict=True):
        expect(row).to_have_attribute("data-status", "error")
        expect(row).to_contain_text(f"scale #{i + 2}")
    expect(fan).to_contain_text("3 match")
    page.screenshot(path=str(artifacts / "fanout-300-filter-failed.png"))
    page.get_by_label("status filter").select_option("")

    # Search by argument: the call scale(150, ...) is the one match.
    page.get_by_label("search steps").fill("150, 0")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("scale #152")
    page.get_by_label("search steps").fill("")

    # The member list: 300 rows, a few dozen in the DOM, sortable by status (failures first).
    fan.click()
    member_list = page.locator(".cf-member-list")
    expect(member_list).to_have_attribute("data-rows", "300")
    assert rows.count() < 80
    page.locator('.cf-member-sort[data-sort="status"]').click()
    expect(rows.first).to_have_attribute("data-status", "error")
    page.locator('.cf-member-sort[data-sort="item"]').click()
    page.locator('.cf-member-sort[data-sort="item"]').click()  # item, descending
    expect(rows.first).to_contain_text("scale #301")
    page.screenshot(path=str(artifacts / "fanout-300-list.png"))

    # The full graph on demand, and collapsed again.
    page.get_by_role("button", name="show as graph").click()
    expect(page.locator(".cf-node")).to_have_count(302)
    page.get_by_role("button", name="collapse fan-outs").click()
    expect(page.locator(".cf-node")).to_have_count(3)
    assert page.errors == []


def boxes_overlap(page, selector: str) -> list:
    """Pairs of visible elements matching `selector` whose boxes overlap."""
    return page.evaluate("""(sel) => {
      const boxes = [...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect()).filter((r) => r.width > 0);
      const out = [];
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push([i, j]);
      }
      return out;
    }""", selector)


def test_studio_finds_the_failures_of_a_300_step_run(stack, run300, page, artifacts):
    """The same collapsing in Studio: the failures in one action, the log filter's steps folded,
    the timeline's axis readable with the step panel open."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1500, "height": 950})
    page.goto(f"{stack.url}?token={stack.token}")
    page.wait_for_selector(".cf-studio")
    page.goto(f"{stack.url}#/runs/{run300}")
    fan = page.locator(".cf-node-fanout")
    expect(fan).to_have_attribute("aria-label", "scale x300: 297 ok, 3 failed, 0 running", timeout=WAIT_MS)
    assert in_view(page, '.cf-node[aria-label^="summarise"]')
    page.get_by_role("button", name="next failure").click()  # one action
    panel = page.locator(".cf-step-panel")
    expect(panel).to_contain_text(f"item {FAILS[0]} failed on purpose")
    page.keyboard.press("n")
    expect(panel).to_contain_text(f"item {FAILS[1]} failed on purpose")
    # The list is as tall as the graph, a few dozen rows in the DOM, and the page did not scroll.
    assert page.locator(".cf-member-scroll .cf-member-row").count() < 80
    assert page.evaluate("() => window.scrollY") == 0
    assert in_view(page, ".cf-node-fanout")
    page.screenshot(path=str(artifacts / "fanout-studio-next-failure.png"))

    # Logs: the step filter offers the fan-out as one choice, not 300.
    page.get_by_role("tab", name="Logs").click()
    step_filter = page.get_by_label("filter by step")
    options = step_filter.locator("option").all_text_contents()
    assert "scale x300 (all)" in options and len(options) < 10, options
    step_filter.select_option(label="scale x300 (all)")
    expect(page.locator(".cf-logs")).to_have_attribute("data-lines", "300")
    page.screenshot(path=str(artifacts / "fanout-studio-logs.png"))

    # Timeline with the step panel open: the axis labels do not overlap.
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator(".cf-tick").first).to_be_visible()
    assert boxes_overlap(page, ".cf-tick") == []
    page.screenshot(path=str(artifacts / "fanout-studio-timeline.png"))
    assert page.errors == []


def draw_figures(page) -> dict:
    return page.evaluate("""() => {
      const svg = document.querySelector('.cf-graph-svg');
      return { drawn: +svg.getAttribute('data-draw-ms'), layout: +svg.getAttribute('data-layout-ms') };
    }""")


EXPAND_JS = """async () => {
  const started = performance.now();
  document.querySelector('.cf-node-fanout').dispatchEvent(new MouseEvent('click', { bubbles: true }));
  while (!document.querySelector('.cf-member-scroll .cf-member-row')) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  // the frame that shows the rows, painted (a task queued from its animation frame runs after)
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - started;
}"""


@pytest.mark.parametrize("n", [1000, 10_000])
def test_thousands_of_steps_draw_collapsed(stack, page, artifacts, n):
    from playwright.sync_api import expect

    run_id = submit(stack, "fan", n - 2, [5])
    wait_run(stack, run_id, timeout=900)
    page.set_viewport_size({"width": 1500, "height": 950})
    open_view(page, stack, run_id, part="graph", height=880)
    page.wait_for_function(f"() => document.querySelector('.cf-graph')?.getAttribute('data-steps') === '{n}'",
                           timeout=WAIT_MS)
    fan = page.locator(".cf-node-fanout")
    expect(fan).to_have_attribute("aria-label", f"scale x{n - 2}: {n - 3} ok, 1 failed, 0 running")
    page.wait_for_function("() => document.querySelector('.cf-graph-svg').hasAttribute('data-draw-ms')")
    drawn = draw_figures(page)
    expand_ms = page.evaluate(EXPAND_JS)
    rows = page.locator(".cf-member-scroll .cf-member-row")
    expect(page.locator(".cf-member-list")).to_have_attribute("data-rows", str(n - 2))
    print(f"\n{n:,}-step run collapsed: graph built from its steps, collapsed, laid out and drawn in {drawn['drawn']:.0f} ms "
          f"(layout {drawn['layout']:.1f} ms); expanding its {n - 2:,}-member fan-out: {expand_ms:.0f} ms")
    assert page.locator(".cf-node").count() == 3
    assert rows.count() < 80  # virtualised: the rows in view, not thousands
    assert drawn["drawn"] < 1000 and expand_ms < 1000
    page.screenshot(path=str(artifacts / f"fanout-{n}-expanded.png"))
    assert page.errors == []

"""The run views at scale, in Chromium, against a real server and worker (tests/apps/viewapp.py):

- the graph of a 1,000-step run (a workflow fanning out 999 tasks), one fan-out node drawn in
  full on demand: layout + draw time, and it stays interactive (select a step, zoom, fit); the same run in 10 cf.groups collapses to 11 nodes
  and a group's member selector lists its members;
- 100,000 log lines: the virtualised list keeps a few dozen rows in the DOM while it scrolls end
  to end, every position shows the lines it should; frame times while scrolling;
- 10 metrics x 10,000 points: 10 charts, every point loaded; draw time.

The figures are printed (run with -s to see them); the assertions are about behaviour, not speed.
Screenshots go to the artifacts directory, light and dark.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
from runview_helpers import open_view, serving, submit, view_built, wait_run

pytestmark = pytest.mark.ui

WAIT_MS = 120_000
MAX_DOM_ROWS = 120  # the log list renders the rows in view plus a margin, never the 100,000


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator:
    missing = view_built()
    if missing:
        pytest.skip(missing)
    with serving(tmp_path_factory.mktemp("views-scale"), ["viewapp"], concurrency=4) as server:
        yield server


def since_mount(page) -> float:
    return page.evaluate("() => performance.now() - window.viewMountedAt")


def test_graph_of_a_thousand_steps(stack, page, artifacts):
    from playwright.sync_api import expect

    run_id = submit(stack, "wide", 1000)
    wait_run(stack, run_id)
    open_view(page, stack, run_id, part="graph", height=700)
    # The 999 calls of `unit` are one fan-out node; the full graph is one click away.
    fan = page.locator(".cf-node-fanout")
    expect(fan).to_have_attribute("aria-label", "unit x999: 999 ok, 0 failed, 0 running", timeout=WAIT_MS)
    fan.click()
    page.get_by_role("button", name="show as graph").click()
    page.wait_for_function("() => document.querySelectorAll('.cf-node').length === 1000", timeout=WAIT_MS)
    drawn_ms = since_mount(page)
    layout_ms = float(page.locator(".cf-graph-svg").get_attribute("data-layout-ms"))
    print(f"\ngraph of 1,000 steps drawn in full: {drawn_ms:.0f} ms after mounting (snapshot load and "
          f"the two clicks included), layout {layout_ms:.0f} ms")
    # Every step is drawn with its status as text, not only as a colour.
    assert page.locator('.cf-node[data-status="value"]').count() == 1000
    expect(page.locator(".cf-fan")).to_have_count(1)
    expect(page.locator(".cf-fan-label")).to_have_text("999 steps submitted together")
    page.screenshot(path=str(artifacts / "scale-graph-1000.png"))

    # Still interactive: a click selects a step (the panel opens), zoom and fit respond.
    started = page.evaluate("() => performance.now()")
    page.locator('.cf-node[data-node$=":500"]').click()
    expect(page.locator(".cf-step-panel")).to_contain_text("unit")
    expect(page.locator(".cf-step-panel")).to_contain_text("#500")
    click_ms = page.evaluate("() => performance.now()") - started
    transform = page.locator(".cf-graph-svg > g").get_attribute("transform")
    page.locator(".cf-graph-svg").hover()
    page.mouse.wheel(0, -400)
    expect(page.locator(".cf-graph-svg > g")).not_to_have_attribute("transform", transform)
    layouts = page.locator(".cf-graph-svg").get_attribute("data-layouts")
    page.get_by_role("button", name="Fit").click()
    print(f"selecting a step of the 1,000-step graph: {click_ms:.0f} ms to the step panel; "
          f"layouts made: {layouts}")
    # Selecting, zooming and opening the panel recolour and refit; they never lay out again
    # (two layouts: the collapsed graph, then the full one).
    assert page.locator(".cf-graph-svg").get_attribute("data-layouts") == layouts == "2"
    assert page.errors == []


def test_groups_collapse_to_one_node_each(stack, page, artifacts):
    from playwright.sync_api import expect

    run_id = submit(stack, "wide", 1000, 10)
    wait_run(stack, run_id)
    open_view(page, stack, run_id, part="graph", height=600)
    groups = page.locator(".cf-node-group")
    expect(groups).to_have_count(10, timeout=WAIT_MS)
    drawn_ms = since_mount(page)
    expect(page.locator(".cf-node")).to_have_count(11)  # the workflow and its 10 groups
    print(f"\ngraph of 1,000 steps in 10 groups: 11 nodes drawn {drawn_ms:.0f} ms after mounting")
    first = page.locator('.cf-node-group[aria-label^="▣ batch 0 "]')
    expect(first).to_have_attribute("data-status", "value")
    first.click()
    expect(page.locator(".cf-member-list")).to_have_attribute("data-rows", "99")
    members = page.locator(".cf-member-scroll .cf-member-row")
    page.get_by_label("search steps").fill("#42 ")
    expect(members).to_have_count(1)
    members.first.click()
    expect(page.locator(".cf-step-panel")).to_contain_text("#42")
    page.screenshot(path=str(artifacts / "scale-graph-groups.png"))
    assert page.errors == []


SCROLL_JS = """async (steps) => {
  const el = document.querySelector('.cf-logs-scroll');
  const rowHeight = 22;
  const frames = [];
  let maxRows = 0;
  const gaps = [];
  let last = performance.now();
  for (let i = 0; i < steps; i++) {
    el.scrollTop = Math.round((el.scrollHeight - el.clientHeight) * i / (steps - 1));
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const now = performance.now();
    frames.push(now - last);
    last = now;
    const rows = [...el.querySelectorAll('.cf-log-row')];
    maxRows = Math.max(maxRows, rows.length);
    // The rows in the DOM cover the visible window, and the top one is the line the position says.
    const box = el.getBoundingClientRect();
    const tops = rows.map((r) => r.getBoundingClientRect().top - box.top);
    const covered = tops.some((t) => t <= 0.5) && tops.some((t) => t + rowHeight >= el.clientHeight - 1);
    const top = rows.find((r, k) => tops[k] <= 0.5 && tops[k] + rowHeight > 0.5);
    const expected = Math.floor(el.scrollTop / rowHeight);
    if (!covered || !top || Number(top.dataset.index) !== expected || !top.textContent.includes('line ')) {
      gaps.push({ i, scrollTop: el.scrollTop, expected, shown: top ? top.dataset.index : null });
    }
  }
  return { frames, maxRows, gaps };
}"""


def test_a_hundred_thousand_log_lines_scroll(stack, page, artifacts):
    from playwright.sync_api import expect

    run_id = submit(stack, "chatty", 100_000, 4)
    wait_run(stack, run_id, timeout=600)
    open_view(page, stack, run_id, part="logs", height=700)
    page.wait_for_function("() => document.querySelector('.cf-logs')?.getAttribute('data-lines') === '100000'",
                           timeout=WAIT_MS)
    loaded_ms = since_mount(page)
    assert page.locator(".cf-log-row").count() < MAX_DOM_ROWS
    result = page.evaluate(SCROLL_JS, 200)
    frames = result["frames"][1:]
    print(f"\n100,000 log lines: loaded {loaded_ms:.0f} ms after mounting; scrolling end to end in 200 "
          f"jumps: frame median {statistics.median(frames):.1f} ms, p95 "
          f"{sorted(frames)[int(len(frames) * 0.95)]:.1f} ms, max {max(frames):.1f} ms; "
          f"at most {result['maxRows']} rows in the DOM")
    assert result["maxRows"] < MAX_DOM_ROWS
    assert result["gaps"] == [], f"positions that showed no (or the wrong) lines: {result['gaps'][:5]}"

    # Wheel scrolling, as a user does it.
    page.locator(".cf-logs-scroll").hover()
    wheel = page.evaluate("""async () => {
      const el = document.querySelector('.cf-logs-scroll');
      el.scrollTop = 0;
      const frames = [];
      let last = performance.now();
      let running = true;
      const tick = () => { const now = performance.now(); frames.push(now - last); last = now; if (running) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
      window.stopFrames = () => { running = false; return frames; };
    }""")
    for _ in range(60):
        page.mouse.wheel(0, 600)
    frames = page.evaluate("() => window.stopFrames()")[1:]
    del wheel
    scrolled = page.evaluate("() => document.querySelector('.cf-logs-scroll').scrollTop")
    print(f"wheel scrolling ({scrolled:.0f} px): frame median {statistics.median(frames):.1f} ms, "
          f"max {max(frames):.1f} ms over {len(frames)} frames")
    assert scrolled > 0
    assert page.locator(".cf-log-row").count() < MAX_DOM_ROWS

    # A filter narrows the 100,000 to the lines that match.
    page.get_by_label("filter text").fill("line 4242 of")
    expect(page.locator(".cf-log-row")).to_have_count(4)  # one per chatter task
    expect(page.locator(".cf-log-row").first).to_contain_text("line 4242 of 25000: value 2121")
    page.screenshot(path=str(artifacts / "scale-logs-100k.png"))
    assert page.errors == []


def test_ten_metrics_of_ten_thousand_points(stack, page, artifacts):
    run_id = submit(stack, "many_points", 10, 10_000)
    wait_run(stack, run_id, timeout=600)
    for theme in ("light", "dark"):
        open_view(page, stack, run_id, part="metrics", height=900, theme=theme)
        page.wait_for_function(
            "() => document.querySelectorAll('.cf-chart[data-drawn=\"10000\"]').length === 10", timeout=WAIT_MS)
        figures = page.evaluate("""() => {
          const charts = [...document.querySelectorAll('.cf-chart')];
          const first = +document.querySelector('.cf-metrics').getAttribute('data-first-data-at');
          return { sinceData: Math.max(...charts.map((c) => +c.getAttribute('data-drawn-at'))) - first,
                   sinceMount: performance.now() - window.viewMountedAt,
                   paths: charts.filter((c) => c.querySelector('.scatterlayer .trace path.js-line')).length };
        }""")
        print(f"\n10 metrics x 10,000 points ({theme}): all drawn {figures['sinceData']:.0f} ms after the "
              f"series arrived ({figures['sinceMount']:.0f} ms after mounting, loading included)")
        assert figures["paths"] == 10  # every chart has its line
        assert page.locator(".cf-chart-box").count() == 10
        page.screenshot(path=str(artifacts / f"scale-metrics-{theme}.png"), full_page=True)
    assert page.errors == []

"""Run views at scale, in Chromium: how fast large runs draw (issue 18).

    python benchmarks/bench_views_scale.py [--steps 1000 10000] [--repeat 3] [--series 300 --points 100]

Starts a real server and a `viewapp` worker (tests/apps/viewapp.py, as the browser tests do),
builds the runs by running them (a workflow fanning out N-2 trivial `scale` calls, one of them
failing, then one step of its own), opens the built run view (coflux/static/runview.js) in
Playwright's Chromium at 1500x950 and prints, per run size (the median over --repeat page loads):

- the collapsed graph: from building the graph model out of the run's steps, through collapsing
  the fan-out, layout and the DOM commit, to the next frame (target: under 1 s);
- expanding the fan-out into its member list (target: under 1 s);
- a chart of --series series x --points points of one key, drawn as a band (target: under 1 s),
  and the same with each step's trace shown.

Needs the front-end built (npm --prefix jupyter_ext/frontend run build) and Playwright with
/usr/bin/chromium (the project's test extras).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ui"))
sys.path.insert(0, str(REPO / "tests"))

from runview_helpers import open_view, start_stack, submit, view_built, wait_run  # noqa: E402

GRAPH_JS = """async () => {
  const svg = document.querySelector('.cf-graph-svg');
  const drawn = +svg.getAttribute('data-draw-ms');
  const started = performance.now();
  document.querySelector('.cf-node-fanout').dispatchEvent(new MouseEvent('click', { bubbles: true }));
  while (!document.querySelector('.cf-member-scroll .cf-member-row')) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  // the frame that shows the rows, painted (a task queued from its animation frame runs after)
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return { drawn, expand: performance.now() - started, rows: document.querySelectorAll('.cf-member-row').length };
}"""


def graph_figures(page, server, run_id: str, steps: int) -> dict:
    open_view(page, server, run_id, part="graph", height=880)
    page.wait_for_function(f"() => document.querySelector('.cf-graph')?.getAttribute('data-steps') === '{steps}'",
                           timeout=300_000)
    page.wait_for_function("() => document.querySelector('.cf-graph-svg').hasAttribute('data-draw-ms')")
    return page.evaluate(GRAPH_JS)


def chart_figures(page, server, run_id: str, total: int) -> dict:
    open_view(page, server, run_id, part="metrics", height=880)
    done = f"() => document.querySelector('.cf-chart')?.getAttribute('data-drawn') === '{total}'"
    page.wait_for_function(done, timeout=300_000)
    band = page.evaluate("""() => +document.querySelector('.cf-chart').getAttribute('data-drawn-at') -
      +document.querySelector('.cf-metrics').getAttribute('data-first-data-at')""")
    before = page.evaluate("() => performance.now()")
    page.locator(".cf-chart-head input[type=checkbox]").check()
    page.wait_for_function(f"() => +document.querySelector('.cf-chart').getAttribute('data-drawn-at') > {before}")
    each = page.evaluate("() => +document.querySelector('.cf-chart').getAttribute('data-drawn-at')") - before
    return {"band": band, "each": each}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--points", type=int, default=100)
    args = parser.parse_args()
    missing = view_built()
    if missing:
        print(missing, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="coflux-bench-views-") as base:
        server, worker = start_stack(Path(base))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                for steps in args.steps:
                    started = time.perf_counter()
                    run_id = submit(server, "fan", steps - 2, [5])
                    wait_run(server, run_id, timeout=1800)
                    built = time.perf_counter() - started
                    runs = [graph_figures(page, server, run_id, steps) for _ in range(args.repeat)]
                    print(f"{steps:>6,}-step run (built by its workflow in {built:.1f} s): collapsed graph drawn in "
                          f"{statistics.median(r['drawn'] for r in runs):.0f} ms, its {steps - 2:,}-member fan-out "
                          f"expanded in {statistics.median(r['expand'] for r in runs):.0f} ms "
                          f"({runs[0]['rows']} rows in the DOM); median of {args.repeat}", flush=True)
                run_id = submit(server, "fan", args.series, [], args.points)
                wait_run(server, run_id, timeout=1800)
                charts = [chart_figures(page, server, run_id, args.series * args.points * 2) for _ in range(args.repeat)]
                print(f"{args.series} series x {args.points} points (x 2 keys, one chart): band drawn "
                      f"{statistics.median(c['band'] for c in charts):.0f} ms after the series arrived; each step's "
                      f"trace shown in {statistics.median(c['each'] for c in charts):.0f} ms; median of {args.repeat}")
                browser.close()
        finally:
            worker.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

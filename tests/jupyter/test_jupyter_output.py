"""In a kernel, what a task prints goes to its run's logs (line by line, parallel tasks never
mixed within a line), never into the cell that happens to be running; the cell's own output is
untouched. Structured logs and metrics work the same as on a headless worker."""

from __future__ import annotations

import json

from jx_helpers import start_kernel

DEFINITIONS = """
%load_ext coflux
import json, sys, time
import coflux as cf

@cf.task()
def noisy(i):
    for k in range(5):
        for ch in f"task {i} line {k}":
            sys.stdout.write(ch)      # a line written a character at a time,
            time.sleep(0.001)         # while other tasks write theirs
        sys.stdout.write("\\n")
    print(f"task {i} to stderr", file=sys.stderr)
    cf.log_info("task {i} done", i=i)
    cf.Metric("k").record(i)
    return i

@cf.workflow()
def chorus(n):
    return sum(e.result() for e in [noisy.submit(i) for i in range(n)])
"""


async def test_task_output_goes_to_its_run_not_the_busy_cell(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok(DEFINITIONS)
    busy = await k.ok("r = chorus.run(4)\nvalue = r.result(timeout=60)\ntime.sleep(0.5)\nprint('cell output', value)",
                      timeout=90)
    assert busy["stdout"] == "cell output 6\n"  # nothing of the tasks' output landed here
    assert busy["stderr"] == ""
    out = await k.ok("print(json.dumps({'logs': r.client.logs(r.id), 'metrics': r.client.metrics(r.id)}))")
    report = json.loads(out["stdout"].strip().splitlines()[-1])
    by_level: dict[str, list[str]] = {}
    for line in report["logs"]:
        by_level.setdefault(line["level"], []).append(line["message"])
    assert sorted(by_level["stdout"]) == sorted(f"task {i} line {k}" for i in range(4) for k in range(5))
    assert sorted(by_level["stderr"]) == sorted(f"task {i} to stderr" for i in range(4))
    assert sorted(by_level["info"]) == sorted(f"task {i} done" for i in range(4))
    assert sorted(s["points"][0][1] for s in report["metrics"]) == [0.0, 1.0, 2.0, 3.0]


async def test_a_failed_run_shows_the_cell_line_that_raised(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok("%load_ext coflux\nimport coflux as cf")
    await k.ok("@cf.task()\ndef explode(x):\n    y = x * 2\n    raise KeyError(f'missing {y}')\n\n"
               "@cf.workflow()\ndef boom(x):\n    return explode(x)\n")
    out = await k.run("boom.run(21).result(timeout=30)")
    error = out["error"]
    assert error is not None and error.startswith("KeyError: 'missing 42'")
    plain = __import__("re").sub(r"\x1b\[[0-9;]*m", "", error)  # IPython colours its traceback
    # IPython shows the cell that defined the task, pointing at the line that raised.
    assert "----> 4     raise KeyError(f'missing {y}')" in plain, plain

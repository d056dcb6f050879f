"""A failed run reads like the user's own code, in a real kernel of a real Jupyter server.

A task defined in a notebook cell raises; the workflow (another cell) waits on it; the notebook
waits on the run. The traceback IPython shows ends with the user's frames, named as Jupyter names
cells ("Cell In[3], line 5"), with coflux's own frames (client.py, models.py, outcomes.py) folded
and no frame twice. What the step panel shows is stored with the step: the frame's cell name and
the arguments' parameter names.
"""

from __future__ import annotations

import json
import re

from jx_helpers import start_kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")

TASK_CELL = """import coflux as cf

@cf.task()
def scale_item(item: int, factor: float = 2.0) -> float:
    raise ValueError(f"item {item} cannot be scaled")
"""
FLOW_CELL = """@cf.workflow()
def scale_all(n: int) -> float:
    return scale_item.submit(n, factor=3.0).result()
"""


async def test_a_failed_run_shows_the_users_cells_and_folds_library_frames(coflux_ext, jp_serverapp):
    _, k = await start_kernel(jp_serverapp)
    await k.ok("%load_ext coflux")  # In[1]
    await k.ok(TASK_CELL)  # In[2]
    await k.ok(FLOW_CELL)  # In[3]
    out = await k.run("run = scale_all.run(7)\nrun.result(timeout=60)")  # In[4]
    shown = ANSI.sub("", out["error"] or "")
    assert shown.startswith("ValueError: item 7 cannot be scaled"), shown
    for library in ("client.py", "models.py", "outcomes.py", "remote_frames.py", "execute.py"):
        assert library not in shown, f"{library} frame shown:\n{shown}"
    # The user's frames, in order, each once: the waiting cell, the workflow's line, the raise.
    cells = re.findall(r"Cell In\[(\d+)\], line (\d+)", shown)
    assert cells == [("4", "2"), ("3", "3"), ("2", "5")], shown
    assert shown.count('raise ValueError(f"item {item} cannot be scaled")') == 1, shown

    out = await k.ok("import json\nsteps = run.inspect()['steps']\n"
                     "print(json.dumps([[s['target'], s.get('parameters'), "
                     "(s['executions'][-1]['result'] or {}).get('error')] for s in steps]))")
    steps = {target: (parameters, error) for target, parameters, error in json.loads(out["stdout"])}
    parameters, error = steps["scale_item"]
    assert parameters == ["item", "factor"]
    assert steps["scale_all"][0] == ["n"]
    (frame,) = error["frames"]
    assert frame[2] == "scale_item" and frame[4] == "Cell In[2], line 5", frame

"""`coflux runs inspect R:S`: one step of a run (its attempts, the child runs it started), as
text and JSON, and bad step targets refused in one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable


def test_inspect_one_step(cli: Callable[..., subprocess.CompletedProcess]) -> None:
    done = cli("submit", "--no-wait", "myapp.workflows/parent", "2")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert cli("runs", "result", run_id).stdout.strip() == "21"

    text = cli("runs", "inspect", f"{run_id}:2")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"run {run_id}  myapp.workflows/parent  workspace default  created ")
    assert lines[1] == f"  step {run_id}:2  myapp.workflows/start_child (task)  parent {run_id}:1:1"
    assert lines[2].startswith(f"    {run_id}:2:1  attempt 1  value 20")
    assert lines[3].startswith("    child run R") and lines[3].endswith(f"(myapp.workflows/child) from {run_id}:2:1")
    assert not any(f"step {run_id}:1 " in line for line in lines)  # only the step asked for

    as_json = json.loads(cli("runs", "inspect", f"{run_id}:2", "-o", "json").stdout)
    assert as_json["id"] == f"{run_id}:2" and as_json["target"] == "start_child"
    both = json.loads(cli("runs", "inspect", run_id, f"{run_id}:1", "-o", "json").stdout)
    assert both[0]["id"] == run_id and both[1]["id"] == f"{run_id}:1"

    for target, message in [(f"{run_id}:9", f"no step '{run_id}:9'"),
                            (f"{run_id}:2:1", f"malformed target '{run_id}:2:1': expected RUN or RUN:STEP (e.g. R7xk:2)"),
                            (f"{run_id}:x", f"malformed target '{run_id}:x': expected RUN or RUN:STEP (e.g. R7xk:2:1)")]:
        refused = cli("runs", "inspect", target)
        assert refused.returncode == 2 and refused.stderr == f"coflux: {message}\n", refused.stderr

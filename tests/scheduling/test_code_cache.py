"""`cf.Cache(version=cf.CODE)` (issue 21, item 2) with a real server and headless workers running a
module file that the test edits between worker restarts: equal code hits the cache (also after
whitespace, comment and docstring edits), an edit of the task or of a helper it calls misses."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from harness import _spawn, base_env

from .sched_helpers import SchedWorker, lines

SOURCE = '''
import coflux as cf


def scale(x):
    return x * 10


@cf.task(cache=cf.Cache(version=cf.CODE))
def compute(log, x):
    with open(log, "a") as f:
        f.write("compute\\n")
    return scale(x) + 1


@cf.workflow()
def flow(log, x):
    return compute(log, x)
'''

# The same code: other whitespace, comments, a docstring, other decorator spelling of the options.
COSMETIC = '''
import coflux as cf

def scale(x):
    # ten times
    return x*10

@cf.task(cache=cf.Cache(version=cf.CODE, max_age=None))
def compute(log, x):
    """Compute, noting each real run."""
    with open(log, "a") as f:   # one line per run
        f.write("compute\\n")
    return scale( x ) + 1

@cf.workflow()
def flow(log, x):
    return compute(log, x)
'''

HELPER_EDITED = SOURCE.replace("return x * 10", "return x * 100")
TASK_EDITED = SOURCE.replace("return scale(x) + 1", "return scale(x) + 2")


class FileWorker(SchedWorker):
    """A worker whose module is a file of the test's folder (the project it edits)."""

    def __init__(self, server, folder: Path, log: Path) -> None:
        super().__init__(server, ["codecached"], concurrency=2, log=log)
        self.folder = folder

    def start(self) -> FileWorker:
        args = [sys.executable, "-m", "coflux", "worker", "--server", self.server.url, "--token", self.server.token,
                "--concurrency", "2", *self.modules]
        env = base_env()
        env["PYTHONPATH"] = str(self.folder)
        self.proc = _spawn(args, cwd=self.folder, env=env, log=self.log)
        return self


def _run_with(sched, folder: Path, source: str, log: Path, n: int) -> tuple[int, dict]:
    """Write the module, start a worker for it, run flow once; (result, the run's compute step)."""
    (folder / "codecached.py").write_text(textwrap.dedent(source))
    worker = FileWorker(sched.server, folder, folder / f"worker-{n}.log").start()
    try:
        worker.wait_registered()
        run = sched.client().submit("codecached", "flow", str(log), 4)
        value = run.result(timeout=60)
        (step,) = [s for s in sched.inspect(run.id)["steps"] if s["target"] == "compute"]
        return value, step
    finally:
        worker.stop()


def test_a_code_versioned_cache_hits_for_the_same_code_and_misses_after_an_edit(sched, tmp_path: Path) -> None:
    folder, log = tmp_path / "project", tmp_path / "log"
    folder.mkdir()
    value, first = _run_with(sched, folder, SOURCE, log, 1)
    assert value == 41 and lines(log) == ["compute"]
    first_hash = first["executions"][0]["code_hash"]
    assert first_hash and len(first_hash) == 64

    value, again = _run_with(sched, folder, SOURCE, log, 2)  # another worker process, same file
    assert value == 41 and lines(log) == ["compute"]
    assert again["executions"][0]["result"]["kind"] == "cached"
    assert again["executions"][0]["code_hash"] == first_hash

    value, cosmetic = _run_with(sched, folder, COSMETIC, log, 3)
    assert value == 41 and lines(log) == ["compute"], "whitespace, comments and a docstring are no change"
    assert cosmetic["executions"][0]["result"]["kind"] == "cached"

    value, helper = _run_with(sched, folder, HELPER_EDITED, log, 4)
    assert value == 401 and lines(log) == ["compute", "compute"], "an edited helper misses"
    assert helper["executions"][0]["code_hash"] != first_hash
    # What the step panel asks: the code changed since the latest earlier call (the cosmetic one).
    code = sched.server.get(f"api/steps/{helper['id']}/code")
    assert code["by_code"] is True and code["code_hash"] == helper["executions"][0]["code_hash"]
    assert code["changed_since"] == {"step": cosmetic["id"], "execution": cosmetic["executions"][0]["id"],
                                     "code_hash": first_hash}
    assert sched.server.get(f"api/steps/{first['id']}/code")["changed_since"] is None  # nothing before it

    value, task = _run_with(sched, folder, TASK_EDITED, log, 5)
    assert value == 42 and len(lines(log)) == 3, "an edited task misses"

    value, back = _run_with(sched, folder, SOURCE, log, 6)  # the first code again: its entry hits
    assert value == 41 and len(lines(log)) == 3
    assert back["executions"][0]["result"]["successor"] == first["executions"][0]["id"]

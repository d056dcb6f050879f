"""Core engine benchmark: chain, fan-out and cold CLI submit, next to same-run baselines.

    python benchmarks/bench_core.py [--chain 200] [--fan-out 1000] [--nested 200] [--concurrency N]
                                    [--repeat 3] [--before DIR]

`--before DIR` (a copy of an earlier commit, e.g. `git archive 13d7db4 | tar -x -C /tmp/before`)
also measures the chain and fan-outs on that code in the same run and prints both side by side.
Both trees' server and worker run at once and their runs alternate (before, after, after,
before, ...), so a machine whose load changes during the run (a shared one) weighs on both alike.

Starts a real `coflux server` (SQLite in a temp dir) and a real `coflux worker` for
benchmarks/bench_app.py, then measures through the Python client. Every run's steps are
checked in the database to be committed (with results) when the run reports its result.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from coflux.client import Client  # noqa: E402

TOKEN = "bench-token"


def code_env(root: str) -> dict[str, str]:
    """The environment that makes `python -m coflux` run the code of the tree at `root`: the tree,
    and its server/ and jupyter_ext/ under the names a wheel installs them as (`coflux_server`,
    `coflux_jupyter`), so that neither an installed copy nor another tree's is what runs."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, _installed_names(root), root])}


@functools.cache
def _installed_names(root: str) -> str:
    """A temporary folder of links: coflux_server -> root/server, coflux_jupyter -> root/jupyter_ext."""
    folder = tempfile.mkdtemp(prefix="coflux-bench-names-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name, source in (("coflux_server", "server"), ("coflux_jupyter", "jupyter_ext")):
        os.symlink(os.path.join(root, source), os.path.join(folder, name))
    return folder


def start_server(data_dir: str, root: str = ROOT) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN, "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root, env=code_env(root))
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        if "ready at" in line:
            return process, line.split("ready at", 1)[1].strip()
    raise RuntimeError("server did not start")


def start_worker(url: str, concurrency: int, root: str = ROOT,
                 modules: tuple[str, ...] = ("bench_app",)) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coflux", "worker", "--server", url, "--token", TOKEN,
         "--concurrency", str(concurrency), *modules],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=code_env(root), cwd=HERE)


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stop what a benchmark started (workers before their server), killing what hangs."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_worker(client: Client, deadline: float = 30) -> None:
    end = time.time() + deadline
    while time.time() < end:
        try:
            run = client.submit("bench_app", "one_task", 1)
            if run.result(timeout=30) == 2:
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("worker did not come up")


def durable_steps(db_path: str, run_id: str) -> tuple[int, int]:
    """(steps, steps whose execution has a committed result), read straight from the database."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        steps = db.execute("select count(*) from steps where run_id = ?", (run_id,)).fetchone()[0]
        done = db.execute(
            "select count(*) from executions e join results r on r.execution_id = e.id where e.run_id = ?",
            (run_id,)).fetchone()[0]
        return steps, done
    finally:
        db.close()


def timed_run(client: Client, workflow: str, n: int, db_path: str, steps_per_item: int = 1,
              timeout: float = 300, module: str = "bench_app") -> tuple[float, str]:
    start = time.perf_counter()
    run = client.submit(module, workflow, n)
    run.result(timeout=timeout)
    elapsed = time.perf_counter() - start
    steps, done = durable_steps(db_path, run.id)
    expected = n * steps_per_item + 1
    if steps != expected or done != steps:
        raise AssertionError(f"{workflow}: {steps} steps, {done} with committed results (expected {expected})")
    return elapsed, run.id


class Stack:
    """A server (SQLite in a temp dir) and a worker running the code of the tree at `root`."""

    def __init__(self, root: str, concurrency: int, prefix: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self.data_dir = self._dir.name
        self.db_path = os.path.join(self.data_dir, "coflux.db")
        self.server, self.url = start_server(self.data_dir, root)
        self.worker = start_worker(self.url, concurrency, root)
        self.client = Client(self.url, TOKEN)
        self.deadlocked = False
        self.tx_per_step: dict[str, list[float]] = {}  # workflow -> committed batches per step, per run
        wait_for_worker(self.client)

    def run(self, workflow: str, n: int, steps_per_item: int = 1, timeout: float = 300) -> float:
        before = self.transactions()
        elapsed = timed_run(self.client, workflow, n, self.db_path, steps_per_item, timeout)[0]
        after = self.transactions()
        if before is not None and after is not None:
            self.tx_per_step.setdefault(workflow, []).append((after - before) / (n * steps_per_item + 1))
        return elapsed

    def transactions(self) -> int | None:
        """Batches the server's orchestrator has committed (None from a tree that does not say)."""
        request = urllib.request.Request(self.url.rstrip("/") + "/api/health",
                                         headers={"Authorization": f"token {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                health = json.load(response)
        except urllib.error.HTTPError as exc:  # 503 still carries the figures
            health = json.load(exc)
        return health.get("orchestrator", {}).get("transactions")

    def close(self) -> None:
        self.client.close()
        self.worker.kill()
        self.server.terminate()
        self.worker.wait(10)
        self.server.wait(10)
        self._dir.cleanup()


def interleaved(stacks: list[Stack], repeat: int, run: Any) -> list[list[float]]:
    """`run(stack)` `repeat` times on each stack, alternating which goes first."""
    times: list[list[float]] = [[] for _ in stacks]
    for i in range(repeat):
        order = list(enumerate(stacks))
        for k, stack in order if i % 2 == 0 else order[::-1]:
            times[k].append(run(stack))
    return times


def nested_or_nan(stack: Stack, n: int, timeout: float) -> float:
    """The nested fan-out deadlocks on code that cannot park blocked executions: NaN then (once;
    its worker stays stuck, so it is not tried again)."""
    if stack.deadlocked:
        return float("nan")
    try:
        return stack.run("nested_fan_out", n, 2, timeout=timeout)
    except Exception:
        stack.deadlocked = True
        return float("nan")


def baseline_function_chain(n: int) -> float:
    def inc(x: int) -> int:
        return x + 1

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        value = 0
        for _ in range(n):
            value = inc(value)
        best = min(best, time.perf_counter() - start)
    return best


def baseline_ws_round_trip(client: Client, count: int = 500) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.connection.call("ping", {})
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--nested", type=int, default=200, help="tasks that each call a task")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="DIR", help="also measure the code of this checkout, same run")
    args = parser.parse_args()
    stacks = [Stack(ROOT, args.concurrency, "coflux-bench-")]
    try:
        if args.before:
            stacks.append(Stack(os.path.abspath(args.before), args.concurrency, "coflux-bench-before-"))
        after = stacks[0]
        client, url = after.client, after.url

        ws_rtt = baseline_ws_round_trip(client)
        fn_chain = baseline_function_chain(args.chain)

        chains_by = interleaved(stacks, args.repeat, lambda st: st.run("chain", args.chain))
        fans_by = interleaved(stacks, args.repeat, lambda st: st.run("fan_out", args.fan_out))
        # Last: code that deadlocks here leaves its worker stuck, and the runs above are done.
        nested_by = interleaved(stacks, args.repeat, lambda st: nested_or_nan(
            st, args.nested, 300 if st is after else 20))
        chains, fans, nested = chains_by[0], fans_by[0], nested_by[0]
        if any(t != t for t in nested):
            raise AssertionError("the nested fan-out did not finish on this tree")
        before = None
        if args.before:
            before_nested = [t for t in nested_by[1] if t == t]
            before = {"chain": min(chains_by[1]), "fan_out": min(fans_by[1]),
                      "nested": min(before_nested) if len(before_nested) == args.repeat else float("nan")}

        populate, all_hits = [], []
        for i in range(args.repeat):
            salt = f"salt-{i}-{time.time()}"  # a fresh cache for each repetition
            start = time.perf_counter()
            client.submit("bench_app", "cached_fan_out", args.fan_out, salt).result(timeout=300)
            populate.append(time.perf_counter() - start)
            start = time.perf_counter()
            run = client.submit("bench_app", "cached_fan_out", args.fan_out, salt)
            run.result(timeout=300)
            all_hits.append(time.perf_counter() - start)
            kinds = [s["executions"][-1]["result"]["kind"] for s in run.inspect()["steps"][1:]]
            if kinds.count("cached") != args.fan_out:
                raise AssertionError(f"expected {args.fan_out} cache hits, got {kinds.count('cached')}")

        env = {**os.environ, "COFLUX_SERVER": url, "COFLUX_TOKEN": TOKEN}
        colds = []
        for i in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "coflux", "submit", "bench_app/one_task", str(i)],
                           check=True, env=env, capture_output=True, cwd=after.data_dir)
            colds.append(time.perf_counter() - start)
        interpreter = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import coflux.cli"], check=True, capture_output=True)
            interpreter.append(time.perf_counter() - start)
    finally:
        for stack in stacks:
            stack.close()

    chain_best = min(chains)
    fan_best = min(fans)
    print(f"coflux core benchmark (worker concurrency {args.concurrency}, best of {args.repeat})")
    print(f"  baseline: plain function call chain   {1e6 * fn_chain / args.chain:10.3f} us per call")
    print(f"  baseline: localhost WebSocket RTT     {1e3 * ws_rtt:10.3f} ms (ping through the client stack)")
    print(f"  (a) chain of {args.chain} tasks          {1e3 * chain_best / args.chain:10.3f} ms per step"
          f"   ({args.chain / chain_best:.0f} steps/s; target <= 2 ms)")
    print(f"  (b) fan-out of {args.fan_out} tasks        {args.fan_out / fan_best:10.0f} steps/s"
          f"   ({1e3 * fan_best / args.fan_out:.3f} ms per step; target >= 1000 steps/s)")
    print(f"  (e) nested fan-out: {args.nested} tasks each calling a task  {2 * args.nested / min(nested):10.0f} "
          f"steps/s   ({2 * args.nested} task steps in {min(nested):.3f} s)")
    print(f"  (d) fan-out of {args.fan_out} cached tasks (2 ms each): populating {min(populate):.3f} s, "
          f"all hits {min(all_hits):.3f} s  ({min(populate) / min(all_hits):.1f}x faster; target >= 10x)")
    print(f"  (c) cold `coflux submit` one task     {min(colds):10.3f} s"
          f"   (interpreter + `import coflux.cli` alone: {min(interpreter):.3f} s)")
    print("  durability: every step of every run had a committed result when the run returned")
    for stack, name in zip(stacks, ("this tree", "before"), strict=False):
        per_step = stack.tx_per_step.get("chain")
        if per_step:
            print(f"  transactions per chain step ({name}): {statistics.median(per_step):.2f} (median of {len(per_step)})")
    if before is not None:
        def nested_rate(seconds: float) -> str:
            return "deadlocks" if seconds != seconds else f"{2 * args.nested / seconds:.0f} steps/s"
        print(f"  same run, interleaved, best of {args.repeat}: code at {args.before} (before) vs this tree (after):")
        print(f"    chain     {1e3 * before['chain'] / args.chain:8.3f} ms/step   vs {1e3 * chain_best / args.chain:8.3f}")
        print(f"    fan-out   {args.fan_out / before['fan_out']:8.0f} steps/s   vs {args.fan_out / fan_best:8.0f}")
        print(f"    nested    {nested_rate(before['nested']):>14}   vs {nested_rate(min(nested))}")
    ok = (1e3 * chain_best / args.chain <= 2.0 and args.fan_out / fan_best >= 1000
          and min(populate) / min(all_hits) >= 10)
    print("  targets:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

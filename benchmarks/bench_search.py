"""Log search benchmark: `coflux logs RUN --search WORD` over a run with a million log lines.

    python benchmarks/bench_search.py [--lines 1000000] [--repeat 5] [--data-dir DIR] [--db-url URL]

Starts a real `coflux server` (SQLite in --data-dir, or the database at --db-url) and fills the
store through the server's ingest path, --lines lines in all, one in 100,000 with the word
"needle", every other one with "hay":
- `--fill worker`: a real `coflux worker` runs `log_flood`, whose tasks call `cf.log_info` in a
  loop (bench_observe_app.py);
- `--fill direct` (the default; much faster on a loaded machine): a worker session of this
  process hosts one workflow and, when it runs, sends its lines as `telemetry` requests of 5,000
  lines (the worker protocol's own batches, at most 10,000 entries each), then its result.
With --data-dir, a store filled by an earlier invocation is used again (`search-run.json` there
names its run).

Then prints, medians and 90th percentiles of --repeat:
- `coflux logs RUN --search needle` as a user types it, process start to exit (target: under 1 s),
  and the HTTP route alone (`GET api/runs/RUN/logs?search=needle`);
- for "hay" (in every line but the needles): the route's first page of 1,000 lines, and the
  command's time to its first 1,000 lines (printing all of them is a million lines of output);
- the same searches as a scan (SQL LIKE over the run's lines, SQLite only), for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_cli import cli_env, coflux_command, figures, time_command, time_get  # noqa: E402
from bench_core import TOKEN, code_env, start_worker, stop_processes, wait_for_worker  # noqa: E402

from coflux.client import Client  # noqa: E402

TASKS = 10  # log_flood tasks: each logs lines/TASKS lines, "needle" at k % 100,000 == 7


def start_server(data_dir: str, db_url: str | None) -> tuple[subprocess.Popen, str]:
    """A server whose output goes to server.log in `data_dir` (a pipe nobody reads would fill
    up and stop it)."""
    args = [sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN, "--data-dir", data_dir]
    log_path = os.path.join(data_dir, "server.log")
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(args + (["--db-url", db_url] if db_url else []), stdout=log,
                                   stderr=subprocess.STDOUT, cwd=ROOT, env=code_env(ROOT))
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        with open(log_path, errors="replace") as log:
            log.seek(offset)
            for line in log:
                if "ready at" in line:
                    return process, line.split("ready at", 1)[1].strip()
        time.sleep(0.1)
    raise RuntimeError(f"server did not start (see {log_path})")


def fill_by_worker(client: Client, lines: int) -> str:
    """A log_flood run of `lines` lines on a real worker; returns its id once it finished."""
    run = client.submit("bench_observe_app", "log_flood", TASKS, lines // TASKS)
    run.result(timeout=7200)
    return run.id


def count_stored(db_path: str, run_id: str) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return db.execute("select coalesce(sum(line_count), 0) from telemetry where run_id = ?",
                          (run_id,)).fetchone()[0]
    finally:
        db.close()


def count_lines(url: str, run_id: str) -> int:
    """Lines of the run the server has, through its logs route (a page at a time)."""
    from coflux.cli_http import Api

    total, after = 0, 0
    with Api(url, TOKEN) as api:
        while True:
            page = api.get(f"runs/{run_id}/logs", after=after, limit=10_000)
            total += len(page["lines"])
            after = page["last"]
            if not page["more"]:
                return total


class DirectFiller:
    """A worker session over the client protocol that hosts `bench_search_fill/flood(lines)` and,
    for each execution, sends its log lines as telemetry (a few batches in flight), then a result."""

    MODULE, TARGET = "bench_search_fill", "flood"

    def __init__(self, url: str, batch: int = 5000, in_flight: int = 4) -> None:
        import queue

        from coflux.connection import Connection

        self.batch, self.in_flight = batch, in_flight
        self.executions: queue.Queue = queue.Queue()
        definition = {"type": "workflow", "parameters": [{"name": "lines", "kind": "positional_or_keyword"}],
                      "options": {}, "instruction": None}

        async def register(connection: Connection) -> None:
            await connection.request_async("register", {
                "kind": "headless", "name": "bench-search-filler", "workspace": "default", "concurrency": 1,
                "prefetch": 1, "targets": {self.MODULE: {self.TARGET: definition}}, "provides": {}, "accepts": {},
                "running": []})

        def on_push(message: dict) -> None:
            if message.get("op") == "execute":
                self.executions.put(message)

        self.connection = Connection(url, TOKEN, name="bench-search-filler", handshake=register, on_push=on_push)
        self.connection.start()

    def run(self, client: Client, lines: int) -> str:
        """Submit the workflow, send its lines, report its result; returns the run id."""
        run = client.submit(self.MODULE, self.TARGET, lines)
        execution = self.executions.get(timeout=120)["execution"]
        self.connection.notify("started", {"execution": execution, "at": time.time()})
        pending: list = []
        per_task = lines // TASKS
        batch_number = 0
        entries: list = []
        for i in range(TASKS):
            for k in range(per_task):
                word = "needle" if k % 100_000 == 7 else "hay"
                entries.append(["info", f"{word} {{k}} in task {{i}}" if word == "needle" else "hay {k} of task {i}",
                                {"k": {"v": k}, "i": {"v": i}}, time.time()])
                if len(entries) == self.batch:
                    batch_number += 1
                    pending.append(self.connection.request("telemetry", {"execution": execution,
                                                                         "batch": batch_number, "logs": entries}))
                    entries = []
                    while len(pending) >= self.in_flight:
                        pending.pop(0).result(600)
        if entries:
            batch_number += 1
            pending.append(self.connection.request("telemetry", {"execution": execution, "batch": batch_number,
                                                                 "logs": entries}))
        for future in pending:
            future.result(600)
        self.connection.call("result", {"execution": execution, "kind": "value", "value": {"v": lines}}, 600)
        if run.result(timeout=600) != lines:
            raise AssertionError("the filler's run did not finish with its value")
        return run.id

    def close(self) -> None:
        self.connection.close()


def first_lines(args: list[str], env: dict[str, str], count: int, repeat: int) -> list[float]:
    """Seconds from process start until `count` lines of output arrived (the command is then stopped)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=HERE)
        got = 0
        while got < count and process.stdout.readline():  # type: ignore[union-attr]
            got += 1
        times.append(time.perf_counter() - start)
        process.kill()
        process.wait()
        if got < count:
            raise AssertionError(f"only {got} lines of output, expected {count}")
    return times


def scan(db_path: str, run_id: str, word: str) -> tuple[float, int]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        start = time.perf_counter()
        found = db.execute("select count(*) from telemetry b, json_each(b.lines) e where b.run_id = ? and "
                           "(json_extract(e.value, '$[1]') like ? or json_extract(e.value, '$[2]') like ?)",
                           (run_id, f"%{word}%", f"%{word}%")).fetchone()[0]
        return time.perf_counter() - start, found
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--data-dir", help="keep the store here (and reuse one filled before)")
    parser.add_argument("--db-url", help="a SQLAlchemy database URL instead of SQLite (e.g. PostgreSQL)")
    parser.add_argument("--fill", choices=["direct", "worker"], default="direct")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a plain `kill` still stops what it started

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="coflux-bench-search-")
    os.makedirs(data_dir, exist_ok=True)
    marker = os.path.join(data_dir, "search-run.json")
    pycache = tempfile.mkdtemp(prefix="coflux-bench-search-pyc-")
    processes: list[subprocess.Popen] = []
    try:
        server, url = start_server(data_dir, args.db_url)
        processes.append(server)
        previous = json.load(open(marker)) if os.path.exists(marker) else None
        lines = TASKS * (args.lines // TASKS)
        if previous and previous["lines"] == args.lines and previous.get("db_url") == args.db_url:
            run_id, fill_s, how = previous["run"], previous["seconds"], previous.get("fill", "worker")
        else:
            client = Client(url, TOKEN)
            start = time.perf_counter()
            if args.fill == "worker":
                processes.append(start_worker(url, args.concurrency, modules=("bench_app", "bench_observe_app")))
                wait_for_worker(client)
                start = time.perf_counter()
                run_id = fill_by_worker(client, args.lines)
            else:
                filler = DirectFiller(url)
                try:
                    run_id = filler.run(client, args.lines)
                finally:
                    filler.close()
            fill_s, how = time.perf_counter() - start, args.fill
            client.close()
            stored = count_stored(os.path.join(data_dir, "coflux.db"), run_id) if not args.db_url else \
                count_lines(url, run_id)
            if stored != lines:
                raise AssertionError(f"{stored} lines stored, expected {lines}")
            with open(marker, "w") as f:
                json.dump({"run": run_id, "lines": args.lines, "seconds": fill_s, "db_url": args.db_url,
                           "fill": how}, f)
        needles = TASKS * len(range(7, args.lines // TASKS, 100_000))

        env = cli_env(url, pycache)
        coflux = coflux_command()
        search = [*coflux, "logs", run_id, "--search", "needle"]
        found = subprocess.run(search, env=env, capture_output=True, text=True, check=True, cwd=HERE).stdout
        if len(found.splitlines()) != needles or "hay" in found:
            raise AssertionError(f"--search needle printed {len(found.splitlines())} lines, expected {needles}")
        rare_cli = time_command(search, env, args.repeat)
        path = f"runs/{run_id}/logs"
        rare_route = time_get(url, path, args.repeat, search="needle", limit=1000)
        common_route = time_get(url, path, args.repeat, search="hay", limit=1000)
        common_route_deep = time_get(url, path, args.repeat, search="hay", limit=1000, after=lines // 2)
        common_cli = first_lines([*coflux, "logs", run_id, "--search", "hay"], env, 1000, args.repeat)
        plain_cli = first_lines([*coflux, "logs", run_id], env, 1000, args.repeat)
        db_path = os.path.join(data_dir, "coflux.db")
        scans = [scan(db_path, run_id, w) for w in ("needle", "hay")] if not args.db_url else []
        load = os.getloadavg()[0]
    finally:
        stop_processes(processes)
        shutil.rmtree(pycache, ignore_errors=True)
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)

    store = "PostgreSQL" if args.db_url and args.db_url.startswith("postgres") else args.db_url or "SQLite"
    through = "a worker's tasks" if how == "worker" else "telemetry requests of a worker session"
    print(f"coflux log search benchmark ({store}; a run of {lines} log lines, stored through {through} in "
          f"{fill_s:.0f} s: {lines / fill_s:.0f} lines/s; {args.repeat} runs each; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs)")
    print(f"  `coflux logs R --search needle` ({needles} lines), whole command   {figures(rare_cli)}"
          f"   (target < 1 s)")
    print(f"  GET api/runs/R/logs?search=needle, the route alone            {figures(rare_route)}")
    print(f"  GET ...?search=hay&limit=1000 (first page of ~{lines - needles})    {figures(common_route)}")
    print(f"  GET ...?search=hay&limit=1000&after=<middle of the run>       {figures(common_route_deep)}")
    print(f"  `coflux logs R --search hay`: first 1000 lines printed        {figures(common_cli)}")
    print(f"  `coflux logs R` (no search): first 1000 lines printed         {figures(plain_cli)}")
    for word, (seconds, count) in zip(("needle", "hay"), scans, strict=False):
        print(f"  the same search as a scan (SQL LIKE), {word!r}: {count} lines in {1e3 * seconds:.0f} ms")
    ok = statistics.median(rare_cli) < 1.0
    print("  target:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A server killed again and again while a worker holds work it was given ahead of time, shared
by the SQLite and the PostgreSQL variants.

A task worker (`faulttasks`) with every slot busy on a slow body also holds trivial executions it
was given ahead of time (prefetched). The server is killed (-9) right then and started again on
the same port and database: while it is down the worker hands those back (a `release` sent once
it has reconnected), the new server gives them out again at once, and the trivial bodies run
and finish in a few milliseconds, before that `release` arrives. Only the server dies, so every
body must run exactly once: the scenario counts the bodies through their start markers (one
file per body, named after its execution id) and what the server recorded of each step.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from handoutflow import expected
from harness import Server, Worker, free_port, wait_until
from sqlalchemy import create_engine, text

from coflux.client import Client

SLOTS = 3  # the task worker's concurrency (it is given as many again ahead of time)
SLOW_SECONDS = 0.8  # longer than the worker waits before it hands queued work back (0.25 s)


@dataclass
class KillFigures:
    kills: int
    completed: int = 0  # runs that ended with their right value
    wrong: list[str] = field(default_factory=list)
    bodies: int = 0  # task bodies started, in all
    twice: dict[str, int] = field(default_factory=dict)  # execution id -> bodies beyond the first
    attempts_beyond_first: int = 0  # task steps the server recorded more than one attempt of
    handed_out_again: int = 0  # executions given to a worker more than once (the window was hit)
    seconds: float = 0.0

    @property
    def duplicated(self) -> int:
        return sum(self.twice.values())

    def summary(self) -> str:
        return (f"{self.kills} server kills: runs completed {self.completed}/{self.kills}, bodies {self.bodies}, "
                f"run twice {self.duplicated} {sorted(self.twice)[:5]}, steps with a second attempt "
                f"{self.attempts_beyond_first}, handed out again {self.handed_out_again}, {self.seconds:.1f} s"
                + (f"; wrong: {self.wrong[:3]}" if self.wrong else ""))


def _starts(log: Path) -> Counter:
    """Bodies started, by execution id (markers `start.<execution>.<pid>.<random>`)."""
    return Counter(name.split(".")[1] for name in os.listdir(log) if name.startswith("start."))


def _handed_out_again(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            return db.execute(text("SELECT count(*) FROM executions WHERE assignment > 1")).scalar_one()
    finally:
        engine.dispose()


def kill_server_repeatedly(tmp: Path, *, db_url: str | None = None, kills: int = 12) -> KillFigures:
    log = tmp / "markers"
    log.mkdir()
    extra = ["--reconnect-grace", "10"] + (["--db-url", db_url] if db_url else [])
    server = Server(tmp / "data", port=free_port(), extra=extra).start()
    flow = Worker(server, ["handoutflow"], concurrency=2, log=tmp / "flow.log").start()
    tasks = Worker(server, ["faulttasks"], concurrency=SLOTS, log=tmp / "tasks.log",
                   extra=["--max-parked", "0"]).start()
    figures = KillFigures(kills)
    client = None
    started = time.monotonic()
    try:
        flow.wait_registered()
        tasks.wait_registered()
        client = Client(server.url, server.token)
        runs = []
        for i in range(kills):
            before = sum(_starts(log).values())
            run = client.submit("handoutflow", "wave", str(log), i, SLOTS, 2 * SLOTS, SLOW_SECONDS)
            # Every slot is on a slow body and the trivial ones wait behind them on the worker:
            # kill the server before the worker hands them back (it waits 0.25 s).
            wait_until(lambda before=before: sum(_starts(log).values()) >= before + SLOTS, 60, 0.005,
                       message=f"the slow bodies of wave {i} to start")
            server.kill()
            server.start()
            try:
                value = run.result(timeout=60)
            except Exception as exc:  # a wrong outcome is a figure, reported by the assertions
                figures.wrong.append(f"{run.id}: {type(exc).__name__}: {exc}"[:300])
            else:
                if value == expected(i, SLOTS, 2 * SLOTS):
                    figures.completed += 1
                else:
                    figures.wrong.append(f"{run.id}: {value!r}")
            runs.append(run.id)
        figures.seconds = time.monotonic() - started
        time.sleep(0.3)  # a body started late would leave its marker now
        starts = _starts(log)
        figures.bodies = sum(starts.values())
        figures.twice = {execution: n - 1 for execution, n in starts.items() if n > 1}
        for run_id in runs:
            for step in client.get_run(run_id)["steps"]:
                if step["target"] == "work" and len(step["executions"]) > 1:
                    figures.attempts_beyond_first += 1
        figures.handed_out_again = _handed_out_again(db_url or f"sqlite:///{tmp / 'data' / 'coflux.db'}")
        return figures
    finally:
        if client is not None:
            client.close()
        for worker in (flow, tasks):
            worker.stop()
        server.stop()

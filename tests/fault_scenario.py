"""The fault scenario under load, shared by the SQLite and the PostgreSQL variants.

A server with a short reconnect grace, a workflow worker (`faultflow`) and two task workers
(`faulttasks`); `runs` runs of `job` (`tasks` sequential tasks of `seconds` each, retries at 0)
submitted at once. While they are in flight:

1. kill -9 of the server, started again on the same port and database;
2. kill -9 of one of the two task workers (a replacement joins, so two remain);
3. SIGSTOP of the other original task worker for longer than the grace (the server must notice
   it is unresponsive and give its work away), then SIGCONT: it comes back to a session that
   has ended, and its late results must not change anything.

Every body leaves a start and an end marker named after its execution id, so the scenario counts
how often each ran. What it measures (`Figures`): runs completed with the right value, bodies run
twice without having crashed mid-way (`duplicated`), executions abandoned although their body
never started (`abandoned_unstarted`: work that was only assigned must be re-queued, never
abandoned), and the time to finish.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness import Server, Worker, free_port, stop_process, wait_until

from coflux.client import Client

GRACE = 4.0  # the server's --reconnect-grace: long enough for a restart, short enough to wait out


def expected(i: int, tasks: int) -> int:
    """What run `i` of faultflow.job returns."""
    return sum(i * 100 + k for k in range(tasks))


@dataclass
class Figures:
    runs: int
    completed: int = 0  # runs that ended with their right value
    wrong: list[str] = field(default_factory=list)  # runs with another outcome (id: what)
    duplicated: int = 0  # bodies that ran again although the earlier one did not crash mid-way
    duplicated_by_resumed: int = 0  # of those, bodies the frozen worker ran after it resumed
    abandoned_unstarted: int = 0  # abandoned executions whose body never started
    crashed_reruns: int = 0  # bodies re-run because the earlier one died with its worker (allowed)
    bodies: int = 0  # task bodies started, in all
    seconds: float = 0.0  # submit of the first run to the result of the last
    phases: dict[str, float] = field(default_factory=dict)  # when each fault happened (s after submit)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"completed {self.completed}/{self.runs}, duplicated {self.duplicated} "
                f"({self.duplicated_by_resumed} by the frozen worker once resumed), abandoned before "
                f"starting {self.abandoned_unstarted}, re-run after a crash {self.crashed_reruns}, "
                f"bodies {self.bodies}, time to finish {self.seconds:.1f} s, faults at "
                + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
                + (f"; wrong: {self.wrong[:5]}" if self.wrong else "")
                + (f"; {'; '.join(self.notes)}" if self.notes else ""))


def _markers(log: Path) -> tuple[Counter, Counter, dict[str, list[int]]]:
    """(bodies started, bodies ended, pids that started it) by execution id."""
    starts: Counter = Counter()
    ends: Counter = Counter()
    pids: dict[str, list[int]] = {}
    for name in os.listdir(log):
        what, execution, pid = name.split(".")[:3]
        (starts if what == "start" else ends)[execution] += 1
        if what == "start":
            pids.setdefault(execution, []).append(int(pid))
    return starts, ends, pids


def _group(pgid: int) -> set[int]:
    """The processes of a process group (a worker and its pool)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.add(int(entry))
    return found


def _ended(log: Path) -> int:
    return sum(1 for name in os.listdir(log) if name.startswith("end."))


def run_fault_scenario(tmp: Path, *, db_url: str | None = None, runs: int = 100, tasks: int = 3,
                       seconds: float = 0.15, deadline: float = 120.0) -> Figures:
    log = tmp / "markers"
    log.mkdir()
    extra = ["--reconnect-grace", str(GRACE)] + (["--db-url", db_url] if db_url else [])
    server = Server(tmp / "data", port=free_port(), extra=extra).start()
    no_parking = ["--max-parked", "0"]
    flow = Worker(server, ["faultflow"], concurrency=8, log=tmp / "flow.log", extra=no_parking).start()
    first = Worker(server, ["faulttasks"], concurrency=3, log=tmp / "tasks1.log", extra=no_parking).start()
    second = Worker(server, ["faulttasks"], concurrency=3, log=tmp / "tasks2.log", extra=no_parking).start()
    third: Worker | None = None
    frozen_pids: set[int] = set()
    figures = Figures(runs)
    total = runs * tasks
    client = None
    try:
        for worker in (flow, first, second):
            worker.wait_registered()
        client = Client(server.url, server.token)
        start = time.monotonic()
        handles = [client.submit("faultflow", "job", str(log), i, tasks, seconds) for i in range(runs)]

        def at(fraction: float, what: str) -> None:
            wait_until(lambda: _ended(log) >= fraction * total, deadline, 0.02, message=f"{what}: "
                       f"{fraction:.0%} of the task bodies to end")
            figures.phases[what] = time.monotonic() - start

        # 1. kill -9 of the server, with runs in flight.
        at(0.1, "server kill -9")
        killed_at = time.time()
        server.kill()
        server.start()
        ready_at = time.time()

        # 2. kill -9 of one of the two task workers; a replacement joins.
        at(0.3, "worker kill -9")
        stop_process(first.proc, hard=True)  # the worker and its pool, no goodbye
        third = Worker(server, ["faulttasks"], concurrency=3, log=tmp / "tasks3.log", extra=no_parking).start()
        third.wait_registered()

        # 3. SIGSTOP of the other task worker past the reconnect grace, then SIGCONT.
        at(0.45, "worker SIGSTOP")
        frozen_session = second.session()
        frozen_pids = _group(second.proc.pid)
        os.killpg(second.proc.pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()

            def given_away() -> bool:  # the server no longer counts the frozen worker as connected
                return not any(w["connected"] and w["id"] == (frozen_session or {}).get("id")
                               for w in server.workers())

            try:
                wait_until(given_away, 60, 0.2, message="the server to notice the frozen worker")
                time.sleep(GRACE + 1.0)
            except AssertionError as exc:
                figures.notes.append(str(exc))
            figures.phases["SIGCONT"] = time.monotonic() - start
            figures.notes.append(f"frozen for {time.monotonic() - stopped:.1f} s")
        finally:
            os.killpg(second.proc.pid, signal.SIGCONT)

        # Every run completes, within the deadline (nothing hangs).
        for i, handle in enumerate(handles):
            remaining = max(1.0, deadline - (time.monotonic() - start))
            try:
                value = handle.result(timeout=remaining)
            except Exception as exc:  # a wrong outcome is a figure, reported by the assertions
                figures.wrong.append(f"{handle.id}: {type(exc).__name__}: {exc}"[:300])
                continue
            if value == expected(i, tasks):
                figures.completed += 1
            else:
                figures.wrong.append(f"{handle.id}: {value!r}")
        figures.seconds = time.monotonic() - start

        # How each wrong run's workflow went, against the server restart (for the report).
        for line in list(figures.wrong):
            run_id = line.split(":", 1)[0]
            try:
                workflow = client.get_run(run_id)["steps"][0]["executions"]
            except Exception:
                continue
            times = [{k: (round(e[k] - killed_at, 3) if isinstance(e.get(k), float) else e.get(k))
                      for k in ("id", "session", "created_at", "assigned_at", "started_at")}
                     | {"result": (e.get("result") or {}).get("kind")} for e in workflow]
            figures.notes.append(f"{run_id} workflow (s after the server kill; restarted at "
                                 f"{ready_at - killed_at:.2f} s): {times}")

        # Count bodies against what the server recorded.
        time.sleep(0.5)  # let a resumed worker's last markers land
        starts, ends, pids = _markers(log)
        figures.bodies = sum(starts.values())
        for handle in handles:
            try:
                snapshot = client.get_run(handle.id)
            except Exception as exc:
                figures.notes.append(f"snapshot of {handle.id} failed: {exc}")
                continue
            by_item: dict[tuple, list[dict]] = {}
            for step in snapshot["steps"]:
                if step["target"] != "work":
                    continue
                key = tuple(a.get("v") for a in step["arguments"][1:3])
                by_item.setdefault(key, []).extend(step["executions"])
            for executions in by_item.values():
                finished_ok = 0
                for execution in executions:
                    kind = (execution.get("result") or {}).get("kind")
                    ran = starts.get(execution["id"], 0)
                    if ran > 1:
                        figures.duplicated += ran - 1  # the same attempt's body ran twice
                        figures.duplicated_by_resumed += min(
                            ran - 1, sum(pid in frozen_pids for pid in pids[execution["id"]]))
                    if kind in ("abandoned", "crashed"):
                        if ran == 0:
                            figures.abandoned_unstarted += 1
                        else:
                            figures.crashed_reruns += 1
                    elif ends.get(execution["id"], 0) > 0:
                        finished_ok += 1
                figures.duplicated += max(0, finished_ok - 1)  # ran to its end and was still re-run
        return figures
    finally:
        if client is not None:
            client.close()
        for worker in (flow, first, second, third):
            if worker is not None:
                if worker.proc is not None and worker.proc.poll() is None:
                    try:
                        os.killpg(worker.proc.pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                worker.stop()
        server.stop()

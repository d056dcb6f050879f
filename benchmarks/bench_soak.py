"""Soak benchmark: a million recorded steps, then the same probes as on a fresh database.

    python benchmarks/bench_soak.py [--steps 1000000] [--fan-out 1000] [--probes 5] [--concurrency N]

Starts a real `coflux server` (SQLite in a temp dir) and a real `coflux worker` for
benchmarks/bench_app.py, and records the history through the server itself: run after run of
`fan_out(n)` (one workflow step and n task steps each) until --steps steps are recorded, while
the server's resident memory is sampled from /proc. Then, next to a second server on a fresh
database started in the same run (same machine, same load), it measures alternately:

- the per-step cost of a `fan_out` run (soaked vs fresh; target: within 1.1x),
- the server's RSS over the soak (target: flat once warm: the last sample within 10% and 32 MiB
  of the sample after the first tenth of the steps),
- `coflux runs inspect R` of a 1,000-step run on the soaked database (target: under 0.2 s, the
  whole command as a user types it, with its bytecode cached as after `pip install`; the server's
  answer alone and a bare interpreter start are shown beside it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_cli import cli_env, coflux_command, time_command  # noqa: E402
from bench_core import TOKEN, start_server, start_worker, stop_processes, wait_for_worker  # noqa: E402

from coflux.client import Client  # noqa: E402


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """Samples a process's RSS every `interval` seconds, with the number of steps recorded so far."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.steps = 0
        self.samples: list[tuple[float, int, float]] = []  # (seconds since start, steps, MiB)
        self._halt = threading.Event()
        self._start = time.monotonic()

    def sample(self) -> None:
        self.samples.append((time.monotonic() - self._start, self.steps, rss_mib(self.pid)))

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def fan_out_run(client: Client, n: int) -> tuple[float, str]:
    start = time.perf_counter()
    run = client.submit("bench_app", "fan_out", n)
    value = run.result(timeout=600)
    elapsed = time.perf_counter() - start
    if value != sum(range(1, n + 1)):
        raise AssertionError(f"fan_out({n}) returned {value}")
    return elapsed, run.id


def count_steps(db_path: str) -> tuple[int, int]:
    """(steps, steps whose last execution has a result) in the database, read-only."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        steps = db.execute("select count(*) from steps").fetchone()[0]
        done = db.execute("select count(*) from results where successor_id is null").fetchone()[0]
        return steps, done
    finally:
        db.close()


def timed_inspect(url: str, run_id: str, repeat: int) -> tuple[float, float, float, int]:
    """(median server answer to the run snapshot, median whole `coflux runs inspect`, median bare
    interpreter start, steps in the snapshot)."""
    client = Client(url, TOKEN)
    try:
        snapshots = []
        steps = 0
        for _ in range(repeat):
            start = time.perf_counter()
            snapshot = client.get_run(run_id)
            snapshots.append(time.perf_counter() - start)
            steps = len(snapshot["steps"])
    finally:
        client.close()
    pycache = tempfile.mkdtemp(prefix="coflux-soak-pyc-")
    try:
        env = cli_env(url, pycache)
        clis = time_command([*coflux_command(), "runs", "inspect", run_id], env, repeat)
        bare = time_command([sys.executable, "-c", "pass"], env, repeat)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    return statistics.median(snapshots), statistics.median(clis), statistics.median(bare), steps


def tenth_rates(progress: list[tuple[float, int]]) -> tuple[float, float]:
    """Steps per second over the first and over the last tenth of the recorded steps."""
    first_steps, last_steps = progress[0][1], progress[-1][1]
    span = max(1, (last_steps - first_steps) // 10)
    early_end = next(p for p in progress if p[1] >= first_steps + span)
    late_start = next(p for p in reversed(progress) if p[1] <= last_steps - span)

    def rate(a: tuple[float, int], b: tuple[float, int]) -> float:
        return (b[1] - a[1]) / max(1e-9, b[0] - a[0])
    return rate(progress[0], early_end), rate(late_start, progress[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="steps to record before the end probes")
    parser.add_argument("--fan-out", type=int, default=1000, help="tasks per run while building the history")
    parser.add_argument("--probe", type=int, default=1000, help="tasks of each per-step cost probe run")
    parser.add_argument("--probes", type=int, default=5, help="probe runs on each database (alternating)")
    parser.add_argument("--inspect-steps", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rss-interval", type=float, default=5.0)
    args = parser.parse_args()
    # A plain `kill` still stops the servers and workers this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    soak_dir = tempfile.mkdtemp(prefix="coflux-soak-")
    fresh_dir = tempfile.mkdtemp(prefix="coflux-soak-fresh-")
    processes: list[subprocess.Popen] = []
    try:
        server, url = start_server(soak_dir)
        worker = start_worker(url, args.concurrency)
        processes += [server, worker]
        client = Client(url, TOKEN)
        wait_for_worker(client)
        db_path = os.path.join(soak_dir, "coflux.db")

        # Per-step cost on this database while it is (almost) empty.
        early = [fan_out_run(client, args.probe)[0] / (args.probe + 1) for _ in range(args.probes)]

        sampler = RssSampler(server.pid, args.rss_interval)
        sampler.steps = count_steps(db_path)[0]
        sampler.sample()
        sampler.start()
        build_start = time.perf_counter()
        runs = 0
        restarts = 0
        progress: list[tuple[float, int]] = [(build_start, sampler.steps)]  # (when, steps) after each run
        while sampler.steps < args.steps:
            if worker.poll() is not None:  # something outside stopped it: the soak goes on
                restarts += 1
                print(f"  ... the worker exited ({worker.returncode}); starting another", flush=True)
                worker = start_worker(url, args.concurrency)
                processes.append(worker)
            try:
                fan_out_run(client, args.fan_out)
            except Exception as exc:
                if worker.poll() is None:
                    raise
                print(f"  ... a run failed with its worker: {exc}", flush=True)
                continue
            runs += 1
            sampler.steps += args.fan_out + 1
            progress.append((time.perf_counter(), sampler.steps))
            if runs % 100 == 0:
                rate = (sampler.steps) / (time.perf_counter() - build_start)
                print(f"  ... {sampler.steps} steps, server RSS {rss_mib(server.pid):.1f} MiB, "
                      f"{rate:.0f} steps/s", flush=True)
        build_time = time.perf_counter() - build_start
        sampler.stop()
        steps, done = count_steps(db_path)
        if done != steps:
            raise AssertionError(f"{steps} steps recorded but {done} with a final result")

        # The end probes, alternating with a fresh database on a second server.
        fresh_server, fresh_url = start_server(fresh_dir)
        processes += [fresh_server, start_worker(fresh_url, args.concurrency)]
        fresh_client = Client(fresh_url, TOKEN)
        wait_for_worker(fresh_client)
        fan_out_run(fresh_client, args.probe)  # warm its caches and processes as the soaked ones are
        soaked, fresh = [], []
        for _ in range(args.probes):
            soaked.append(fan_out_run(client, args.probe)[0] / (args.probe + 1))
            fresh.append(fan_out_run(fresh_client, args.probe)[0] / (args.probe + 1))
        fresh_client.close()

        inspect_run = client.submit("bench_app", "fan_out", args.inspect_steps - 1)
        inspect_run.result(timeout=600)
        fresh_client = Client(fresh_url, TOKEN)
        fresh_inspect_run = fresh_client.submit("bench_app", "fan_out", args.inspect_steps - 1)
        fresh_inspect_run.result(timeout=600)
        fresh_client.close()
        snapshot_s, cli_s, bare_s, inspect_steps = timed_inspect(url, inspect_run.id, 11)
        fresh_snapshot_s, fresh_cli_s, _, _ = timed_inspect(fresh_url, fresh_inspect_run.id, 11)
        client.close()
        load = os.getloadavg()[0]
        db_mib = os.path.getsize(db_path) / 2**20
    finally:
        stop_processes(processes)
        shutil.rmtree(soak_dir, ignore_errors=True)
        shutil.rmtree(fresh_dir, ignore_errors=True)

    early_rate, late_rate = tenth_rates(progress)
    soaked_ms, fresh_ms = 1e3 * statistics.median(soaked), 1e3 * statistics.median(fresh)
    early_ms = 1e3 * statistics.median(early)
    ratio = soaked_ms / fresh_ms
    samples = sampler.samples
    # "Warm": past the first tenth of the steps and past the point where the bounded caches fill
    # (100,000 results), unless the soak is too short for that.
    warm_steps = max(steps // 10, min(150_000, steps // 2))
    warm = next((s for s in samples if s[1] >= samples[0][1] + warm_steps), samples[0])
    last = samples[-1]
    peak = max(s[2] for s in samples)
    growth = last[2] - warm[2]
    rss_flat = growth <= 0.10 * warm[2] and growth <= 32
    print(f"coflux soak benchmark ({steps} steps recorded in {runs} runs of fan_out({args.fan_out}) in "
          f"{build_time:.0f} s, {steps / build_time:.0f} steps/s; database {db_mib:.0f} MiB; "
          f"worker concurrency {args.concurrency}" + (f"; worker restarted {restarts}x" if restarts else "") + ")")
    print(f"  throughput while recording: first tenth of the steps {early_rate:.0f} steps/s, last tenth "
          f"{late_rate:.0f} steps/s (late/early {late_rate / early_rate:.2f})")
    print(f"  per-step cost, fan_out({args.probe}), median of {args.probes}:")
    print(f"    baseline: fresh database, second server  {fresh_ms:8.3f} ms per step")
    print(f"    soaked database after {steps} steps   {soaked_ms:8.3f} ms per step"
          f"   ({ratio:.2f}x fresh; target <= 1.1x)")
    print(f"    (same server before the soak               {early_ms:8.3f} ms per step)")
    print(f"    samples (ms, in the order taken): soaked {[round(1e3 * x, 2) for x in soaked]}, "
          f"fresh {[round(1e3 * x, 2) for x in fresh]}")
    print("  server RSS (MiB) by steps recorded:")
    shown = samples if len(samples) <= 12 else [samples[round(i * (len(samples) - 1) / 11)] for i in range(12)]
    for at, n, mib in shown:
        print(f"    {at:7.0f} s  {n:9d} steps  {mib:8.1f} MiB")
    print(f"    warm (after {warm[1]} steps) {warm[2]:.1f} MiB, end {last[2]:.1f} MiB, peak {peak:.1f} MiB: "
          f"{growth:+.1f} MiB ({'flat' if rss_flat else 'NOT flat'}; target: within 10% and 32 MiB)")
    print(f"  `coflux runs inspect` of a {inspect_steps}-step run, medians of 11 (fresh database beside it: "
          f"server answer {1e3 * fresh_snapshot_s:.1f} ms, whole command {fresh_cli_s:.3f} s; load average "
          f"{load:.1f} on {os.cpu_count()} CPUs):")
    print(f"    soaked database: whole command {cli_s:.3f} s (target < 0.2 s), server answer "
          f"{1e3 * snapshot_s:.1f} ms, bare `python -c pass` {bare_s:.3f} s")
    ok = ratio <= 1.1 and rss_flat and cli_s < 0.2
    print("  targets:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

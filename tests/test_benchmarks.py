"""The benchmark script keeps working (small sizes; the figures themselves are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import REPO_DIR, base_env


def test_core_benchmark_runs_and_checks_durability() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_core.py", "--chain", "20", "--fan-out", "40", "--nested", "20",
         "--repeat", "1"],
        cwd=REPO_DIR, env=base_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for label in ("baseline: plain function call chain", "baseline: localhost WebSocket RTT",
                  "(a) chain of 20 tasks", "(b) fan-out of 40 tasks",
                  "(e) nested fan-out: 20 tasks each calling a task", "(d) fan-out of 40 cached tasks",
                  "(c) cold `coflux submit` one task",
                  "durability: every step of every run had a committed result"):
        assert label in out, out


def test_soak_benchmark_smoke() -> None:
    """bench_soak.py at a tiny size: it records the history, probes both databases, samples RSS."""
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_soak.py", "--steps", "2000", "--fan-out", "100", "--probe", "100",
         "--probes", "1", "--inspect-steps", "100", "--rss-interval", "0.5"],
        cwd=REPO_DIR, env=base_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for label in ("coflux soak benchmark", "baseline: fresh database, second server", "soaked database after",
                  "server RSS (MiB) by steps recorded", "`coflux runs inspect` of a 100-step run",
                  "soaked database: whole command", "server answer"):
        assert label in out, out


def test_pools_benchmark_smoke() -> None:
    """bench_pools.py at a tiny size: a cold launch timed, and a fan-out across launched workers."""
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_pools.py", "--cold", "1", "--fan-out", "40"],
        cwd=REPO_DIR, env=base_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for label in ("submit -> first result, the pool launching the worker", "fan-out of 40, cold",
                  "fan-out of 40, warm"):
        assert label in out, out


def test_ship_benchmark_smoke() -> None:
    """bench_ship.py at a tiny size: a shipped cell-style task and an imported one, same worker."""
    result = subprocess.run([sys.executable, "benchmarks/bench_ship.py", "--calls", "3"],
                            cwd=REPO_DIR, env=base_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout[result.stdout.index("{"):])
    for name in ("imported", "shipped"):
        assert report[name]["first_ms"] > 0 and report[name]["later_median_ms"] > 0, report

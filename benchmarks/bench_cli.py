"""CLI benchmark: how long the read-only commands take, process start to exit, as a user types them.

    python benchmarks/bench_cli.py [--steps 1000] [--repeat 20] [--concurrency N]

Starts a real `coflux server` (SQLite in a temp dir) and a real `coflux worker` for
benchmarks/bench_app.py, records a `fan_out` run of --steps steps (target: `coflux runs inspect`
of a 1,000-step run under 0.2 s end to end), then times each read-only command --repeat times
(`runs inspect`, `runs inspect -o json`, `runs result`, `runs list`, `logs`, `metrics`,
`assets inspect`, `workspaces list`) and prints the median and 90th percentile, next to the
server's answer alone (the same HTTP GET the command makes, from this process) and a bare
interpreter start. On a shared machine wall-clock time mostly measures the load, so the CPU time
each part used is shown too: the command's own (user + system) and the server's per answer,
which add up to what the command takes on an idle machine.

The commands run as the installed `coflux` script with bytecode caching on (a private
PYTHONPYCACHEPREFIX, warmed once), as after `pip install`: with PYTHONDONTWRITEBYTECODE set, every
start would also compile coflux's modules from source.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_core import TOKEN, code_env, start_server, start_worker, stop_processes, wait_for_worker  # noqa: E402

from coflux.cli_http import Api  # noqa: E402
from coflux.client import Client  # noqa: E402


def coflux_command() -> list[str]:
    """The `coflux` console script beside this interpreter (what a user types), else `-m coflux`."""
    script = os.path.join(os.path.dirname(sys.executable), "coflux")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "coflux"]


def cli_env(url: str, pycache: str, root: str = ROOT) -> dict[str, str]:
    """The CLI's environment: the server and token, the code of `root`, bytecode cached in `pycache`."""
    env = {k: v for k, v in code_env(root).items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "COFLUX_SERVER": url, "COFLUX_TOKEN": TOKEN, "PYTHONPYCACHEPREFIX": pycache}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(args: list[str], env: dict[str, str], repeat: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of `args` (checked to succeed), `repeat` times after one warm-up run;
    the CPU seconds of each run are appended to `cpu` if given."""
    subprocess.run(args, check=True, env=env, capture_output=True, cwd=HERE)
    times = []
    for _ in range(repeat):
        used = _children_cpu()
        start = time.perf_counter()
        subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=HERE)
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(_children_cpu() - used)
    return times


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_get(url: str, path: str, repeat: int, server_pid: int | None = None,
             cpu: list[float] | None = None, **query: object) -> list[float]:
    """Seconds of the server's answer alone: the same GET, from this (already started) process.
    With `server_pid`, the server's CPU seconds per answer (averaged) are appended to `cpu`."""
    with Api(url, TOKEN) as api:
        api.get(path, **query)
        times = []
        used = process_cpu(server_pid) if server_pid else 0.0
        for _ in range(repeat):
            start = time.perf_counter()
            api.get(path, **query)
            times.append(time.perf_counter() - start)
        if server_pid and cpu is not None:
            cpu.append((process_cpu(server_pid) - used) / repeat)
    return times


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def figures(values: list[float]) -> str:
    return f"median {1e3 * statistics.median(values):7.1f} ms   p90 {1e3 * p90(values):7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps of the run that `runs inspect` shows")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="coflux-bench-cli-")
    pycache = tempfile.mkdtemp(prefix="coflux-bench-cli-pyc-")
    processes: list[subprocess.Popen] = []
    try:
        server, url = start_server(data_dir)
        processes.append(server)
        processes.append(start_worker(url, args.concurrency))
        client = Client(url, TOKEN)
        wait_for_worker(client)
        run = client.submit("bench_app", "fan_out", args.steps - 1)
        expected = sum(range(1, args.steps))
        if run.result(timeout=600) != expected:
            raise AssertionError("fan_out returned a wrong value")
        client.close()

        env = cli_env(url, pycache)
        coflux = coflux_command()
        commands = [
            # The text asks for the part of the snapshot it prints (`view=inspect`), -o json for all of it.
            (f"runs inspect ({args.steps} steps)", ["runs", "inspect", run.id],
             (f"runs/{run.id}", {"view": "inspect"})),
            ("runs inspect -o json", ["runs", "inspect", run.id, "-o", "json"], (f"runs/{run.id}", {})),
            ("runs result", ["runs", "result", run.id], (f"runs/{run.id}/result", {"timeout": 0})),
            ("runs list", ["runs", "list"], ("runs", {"limit": 20})),
            ("logs", ["logs", run.id], (f"runs/{run.id}/logs", {"limit": 5000})),
            ("metrics", ["metrics", run.id], (f"runs/{run.id}/metrics", {})),
            ("assets inspect", ["assets", "inspect", run.id], (f"runs/{run.id}/assets", {})),
            ("workspaces list", ["workspaces", "list"], ("workspaces", {})),
        ]
        rows = []
        for name, argv, (path, query) in commands:
            own: list[float] = []
            served: list[float] = []
            whole = time_command([*coflux, *argv], env, args.repeat, cpu=own)
            answer = time_get(url, path, args.repeat, server_pid=server.pid, cpu=served, **query)
            rows.append((name, whole, answer, statistics.median(own), served[0]))
        bare = time_command([sys.executable, "-c", "pass"], env, args.repeat)
        help_times = time_command([*coflux, "--help"], env, args.repeat)
        load = os.getloadavg()[0]
    finally:
        stop_processes(processes)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(pycache, ignore_errors=True)

    print(f"coflux CLI benchmark ({args.repeat} runs each; `{' '.join(coflux)}`; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs)")
    print(f"  {'command':<28} {'whole command (process start to exit)':<40} {'server answer alone':<40} "
          "CPU: command + server")
    for name, whole, answer, own, served in rows:
        print(f"  {name:<28} {figures(whole):<40} {figures(answer):<40} "
              f"{1e3 * own:5.0f} + {1e3 * served:4.0f} = {1e3 * (own + served):4.0f} ms")
    print(f"  {'coflux --help':<28} {figures(help_times)}")
    print(f"  {'python -c pass':<28} {figures(bare)}")
    inspect_median = statistics.median(rows[0][1])
    inspect_cpu = rows[0][3] + rows[0][4]
    print(f"  target: `coflux runs inspect` of a {args.steps}-step run under 0.2 s: "
          + ("met" if inspect_median < 0.2 else "NOT met") + f" (median {inspect_median:.3f} s; the CPU time it "
          f"needs, command and server together: {inspect_cpu:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

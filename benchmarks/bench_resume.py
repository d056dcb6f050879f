"""Resume-from-failure benchmark: what reusing a failed run's completed calls costs.

    python benchmarks/bench_resume.py [--items 300] [--failing 3] [--repeat 3]

Starts a real `coflux server` and a real `coflux worker` (tests/apps/resumeui.py, 8 processes),
runs `fan` over --items parts of which --failing fail until a flag file exists, then, with the
flag in place, times (median of --repeat fresh runs each):
  - the failed run (every part runs once),
  - `run.resume()`: a new attempt of the workflow whose --items submits are matched against the
    first attempt's calls (admission rule `reuse_earlier_attempt`): all but --failing resolve
    at once, --failing run again,
  - a plain re-run of the workflow step (`client.rerun`): every part runs again,
  - a fresh run with nothing failing, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = os.path.join(ROOT, "tests", "apps")
TOKEN = "bench-resume-token"


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    out["PYTHONPATH"] = os.pathsep.join([ROOT, APPS])
    return out


def start_server(data: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN,
                               "--data-dir", os.path.join(data, "data")], cwd=data, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        line = server.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError("the server did not start")
        if line.startswith("coflux server ready at "):
            return server, line.split(" at ", 1)[1].strip()


def workflows(url: str) -> list[dict]:
    request = urllib.request.Request(url + "api/workflows", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["workflows"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--failing", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from coflux.client import Client

    data = tempfile.mkdtemp(prefix="bench-resume-")
    server, url = start_server(data)
    worker = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--server", url, "--token", TOKEN,
                               "--concurrency", "8", "resumeui"], cwd=APPS, env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    failing = [round(i * (args.items - 1) / max(args.failing - 1, 1)) for i in range(args.failing)]
    times: dict[str, list[float]] = {"failed run": [], "resume": [], "plain re-run": [], "fresh run": []}
    phases: dict[str, list[tuple[float, float]]] = {"first": [], "resume": [], "rerun": []}
    try:
        with Client(url, TOKEN) as client:
            deadline = time.monotonic() + 60
            while not any(w["name"] == "fan" for w in workflows(url)):
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not register")
                time.sleep(0.1)
            for i in range(args.repeat):
                flag = os.path.join(data, f"flag-{i}")
                start = time.perf_counter()
                run = client.submit("resumeui", "fan", args.items, failing, flag)
                try:
                    run.result(timeout=600)
                    raise RuntimeError("the run was meant to fail")
                except Exception as exc:
                    if "parts failed" not in str(exc):
                        raise
                times["failed run"].append(time.perf_counter() - start)
                open(flag, "w").close()
                start = time.perf_counter()
                run.resume().result(timeout=600)
                times["resume"].append(time.perf_counter() - start)
                start = time.perf_counter()
                client.result(client.rerun(f"{run.id}:1"), 600)
                times["plain re-run"].append(time.perf_counter() - start)
                start = time.perf_counter()
                client.submit("resumeui", "fan", args.items, [], flag).result(timeout=600)
                times["fresh run"].append(time.perf_counter() - start)
                # The server's side: from each attempt's creation to its start and to its result.
                for attempt in client.get_run(run.id)["steps"][0]["executions"]:
                    phases[attempt["cause"] or "first"].append(
                        (attempt["started_at"] - attempt["created_at"], attempt["result"]["at"] - attempt["started_at"]))
    finally:
        worker.terminate()
        worker.wait(10)
        server.terminate()
        server.wait(10)
    print(f"resume benchmark: {args.items} parts, {args.failing} failing, median of {args.repeat}")
    for label, values in times.items():
        print(f"  {label:<14} {1000 * statistics.median(values):8.0f} ms")
    for cause, values in phases.items():
        print(f"  workflow attempt ({cause}): started after {1000 * statistics.median(v[0] for v in values):6.0f} ms, "
              f"ran {1000 * statistics.median(v[1] for v in values):6.0f} ms")
    reused = args.items - args.failing
    overhead = statistics.median(times["resume"])
    print(f"  resume: {reused} calls reused and {args.failing} run again in {1000 * overhead:.0f} ms "
          f"({1000 * overhead / args.items:.2f} ms per call submitted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

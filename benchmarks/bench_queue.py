"""Queue listing benchmark: `GET api/queue` (Studio's queue page) with many pending executions.

    python benchmarks/bench_queue.py [--pending 10000] [--repeat 20]

Starts a real `coflux server` and a real `coflux worker` for tests/apps/studioapp.py (so its
workflows are registered), stops the worker, then submits --pending runs over HTTP: each run's
first step waits ("no connected worker hosts studioapp/child"). Prints medians and 90th
percentiles of --repeat requests for `GET api/queue` at limit 500 and 5,000 (the listing is built
on the orchestrator thread, the creation times read from the database), and of `GET api/health`
meanwhile, for scale.
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
TOKEN = "bench-queue-token"


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    out["PYTHONPATH"] = os.pathsep.join([ROOT, APPS])
    return out


def call(url: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def timed(url: str, path: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(url, path)
        times.append(time.perf_counter() - start)
    return times


def figures(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {1000 * statistics.median(values):7.1f} ms, p90 {1000 * p90:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="bench-queue-")
    server = subprocess.Popen([sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN,
                               "--data-dir", os.path.join(data, "data")], cwd=data, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = ""
        while not url:
            line = server.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("the server did not start")
            if line.startswith("coflux server ready at "):
                url = line.split(" at ", 1)[1].strip()
        worker = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--server", url, "--token", TOKEN,
                                   "studioapp"], cwd=APPS, env=env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not any(w["name"] == "child" for w in call(url, "api/workflows")["workflows"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not register")
            time.sleep(0.1)
        worker.terminate()
        worker.wait(30)
        start = time.perf_counter()
        for i in range(args.pending):
            call(url, "api/runs", {"module": "studioapp", "target": "child", "args": [i]})
        print(f"submitted {args.pending} runs over HTTP in {time.perf_counter() - start:.1f} s")
        listing = call(url, "api/queue?limit=5")
        print(f"queue total {listing['total']}; first waits because: {listing['queue'][0]['waiting']}")
        for limit in (500, 5000):
            print(f"GET api/queue?limit={limit:<5} {figures(timed(url, f'api/queue?limit={limit}', args.repeat))}")
        print(f"GET api/health           {figures(timed(url, 'api/health', args.repeat))}")
    finally:
        server.terminate()
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

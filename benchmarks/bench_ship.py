"""Shipping benchmark: what running a cell's task on a headless worker by value costs.

    python benchmarks/bench_ship.py [--calls 50]

Starts a real `coflux server` and a real `coflux worker --accept-code --concurrency 1` hosting a
module with task `imported`. This process attaches as a kernel would (`cf.attach`) and defines,
in `__main__` as a notebook cell does, the same task as `shipped` with `remote=True`. One
workflow run (in this process) calls, one after another:
  - `imported` --calls times (the first warms nothing on the worker: its process is started),
  - `shipped` --calls times: the first call pickles the function, uploads it to the blob store
    and the worker downloads and unpickles it; later calls find it cached on both sides.
Prints each first call and the median of the later ones, in milliseconds.
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOKEN = "bench-ship-token"
MODULE = "import coflux as cf\n\n\n@cf.task()\ndef imported(x):\n    return x + 1\n"

import coflux as cf  # noqa: E402


@cf.task(remote=True)
def shipped(x):
    return x + 1


@cf.stub("bench_ship_module")
def imported(x): ...


def _timed(target, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        started = time.perf_counter()
        assert target(i) == i + 1
        out.append((time.perf_counter() - started) * 1000)
    return out


@cf.workflow()
def compare(calls: int) -> dict:
    return {"imported": _timed(imported, calls), "shipped": _timed(shipped, calls)}


def env(folder: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    out["PYTHONPATH"] = os.pathsep.join([ROOT, folder])
    out["COFLUX_CODE_CACHE"] = os.path.join(folder, "code-cache")  # a cold worker-side cache
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-ship-")
    with open(os.path.join(folder, "bench_ship_module.py"), "w") as file:
        file.write(MODULE)
    server = subprocess.Popen([sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN,
                               "--data-dir", os.path.join(folder, "data")], cwd=folder, env=env(folder),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = None
    try:
        while True:
            line = server.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("the server did not start")
            if line.startswith("coflux server ready at "):
                url = line.split(" at ", 1)[1].strip()
                break
        worker = subprocess.Popen([sys.executable, "-m", "coflux", "worker", "--server", url, "--token", TOKEN,
                                   "--concurrency", "1", "--accept-code", "bench_ship_module"],
                                  cwd=folder, env=env(folder), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        cf.attach(url, TOKEN, module="bench_ship_cells")
        from coflux.client import Client

        client = Client(url, TOKEN)
        deadline = time.monotonic() + 60
        while not any(w["connected"] and "bench_ship_module/imported" in w["targets"]
                      for w in client.blobs.api_get("workers")["workers"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not register")
            time.sleep(0.1)
        timings = compare.run(args.calls).result(timeout=600)
        report = {name: {"first_ms": round(values[0], 2), "later_median_ms": round(statistics.median(values[1:]), 2)}
                  for name, values in timings.items()}
        print(json.dumps({"calls": args.calls, **report}, indent=2))
        client.close()
        cf.detach()
    finally:
        for proc in (worker, server):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pools: time from submit to first result when a process pool must launch the worker, and the
steps/s of a fan-out across two launched workers.

    python benchmarks/bench_pools.py [--cold 5] [--fan-out 1000] [--concurrency 4]

A `coflux server --launcher process` in a temporary directory; each cold measurement uses a
workspace of its own with a fresh pool (so no worker is running when the run is submitted), and
times `submit` of `bench_app/one_task` until its result is in. The fan-out runs
`bench_app/fan_out(N)` on a pool with `maxWorkers=2`: cold (the workers are launched as the
work waits) and warm (both launched workers already connected)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOKEN = "bench-pools-token"
sys.path.insert(0, ROOT)


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
    out["PYTHONPATH"] = os.pathsep.join([ROOT, HERE])
    return out


def start_server(data: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "coflux", "server", "--port", "0", "--token", TOKEN,
                               "--launcher", "process", "--data-dir", os.path.join(data, "data")], cwd=data,
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        line = server.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError("the server did not start")
        if line.startswith("coflux server ready at "):
            return server, line.split(" at ", 1)[1].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=5, help="cold launches to time")
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4, help="of each launched worker")
    args = parser.parse_args()

    from coflux.client import Client

    data = tempfile.mkdtemp(prefix="bench-pools-")
    server, url = start_server(data)
    try:
        print(f"coflux pools benchmark ({os.cpu_count()} CPUs)")
        cold = []
        for i in range(args.cold):
            with Client(url, TOKEN, workspace=f"cold-{i}") as client:
                client.pools.create("bench", "process", set={"directory": HERE, "idleTimeout": 2},
                                    modules=["bench_app"])
                start = time.perf_counter()
                run = client.submit("bench_app", "one_task", 1)
                assert run.result(timeout=120) == 2
                cold.append(time.perf_counter() - start)
                client.pools.disable("bench")
        print(f"submit -> first result, the pool launching the worker: median {statistics.median(cold):.2f} s, "
              f"min {min(cold):.2f} s, max {max(cold):.2f} s ({len(cold)} runs)")

        with Client(url, TOKEN, workspace="fan") as client:
            client.pools.create("bench", "process", modules=["bench_app"], set={
                "directory": HERE, "maxWorkers": 2, "concurrency": args.concurrency, "idleTimeout": 600})
            for label in ("cold (workers launched as the work waits)", "warm (two launched workers connected)"):
                start = time.perf_counter()
                run = client.submit("bench_app", "fan_out", args.fan_out)
                total = run.result(timeout=600)
                seconds = time.perf_counter() - start
                assert total == sum(range(1, args.fan_out + 1)), total
                used = {lc["id"] for lc in client.pools.launches("bench") if lc["state"] == "connected"}
                print(f"fan-out of {args.fan_out}, {label}: {seconds:.2f} s, "
                      f"{args.fan_out / seconds:.0f} steps/s, on {len(used)} launched worker(s)")
            client.pools.disable("bench")
    finally:
        server.terminate()
        server.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Workflows for the run view's browser tests (tests/ui/test_runview_browser.py,
tests/ui/test_views_scale_browser.py): one run with every kind of node, edge, log, metric and
asset the views draw, and runs at scale (1,000 steps, 100,000 log lines, 10 x 10,000 points).

A headless worker imports it as `viewapp`; a notebook runs the file in its own namespace (so the
targets are the kernel's), which is why everything it needs is defined here.

(No `from __future__ import annotations`: `-> cf.Asset` is evaluated, so every process that
imports this module can decode the assets it passes around.)
"""

import json
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path

import coflux as cf

loss = cf.Metric("loss", group=cf.MetricGroup("training", units="epoch"), scale="loss")
accuracy = cf.Metric("accuracy", group="training", scale=cf.MetricScale("ratio", lower=0, upper=1))
throughput = cf.Metric("throughput", scale=cf.MetricScale("items/s", units="items/s"))


def wait_for_gate(gate: str, timeout: float = 300) -> None:
    """Block until the file `gate` exists (the test opens it); no gate: go on at once."""
    deadline = time.monotonic() + timeout
    while gate and not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} was never opened")
        time.sleep(0.05)


def png(width: int, height: int) -> bytes:
    """A small RGB gradient as a PNG (no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@cf.task()
def square(i: int) -> int:
    cf.log_debug("squaring {i}", i=i)
    return i * i


@cf.task()
def broken(i: int) -> int:
    cf.log_error("item {i} is about to fail", i=i)
    raise ValueError(f"item {i} is broken")


@cf.task(memo=True)
def lookup(key: str) -> str:
    return key.upper()


@cf.task(cache=True)
def expensive(x: int) -> int:
    return x + 1000


@cf.task()
def train(epochs: int, gate: str = "") -> float:
    value = 1.0
    for epoch in cf.progress(range(epochs), key="epochs"):
        value *= 0.7
        loss.record(value, at=epoch)
        accuracy.record(1 - value, at=epoch)
        throughput.record(100 + epoch * 3)
        time.sleep(0.15)  # slower than the metrics' throttle (10 points/s): every point goes out live
        if epoch == epochs // 2:
            wait_for_gate(gate)  # a test sees a half-drawn chart and a half-full progress bar
    cf.log_info("trained {epochs} epochs: loss {loss}", epochs=epochs, loss=round(value, 4))
    return value


@cf.task()
def make_report(rows: int) -> cf.Asset:
    """An asset of an image, a CSV table, a markdown note and a JSON file."""
    workdir = Path(tempfile.mkdtemp(prefix="report-", dir="."))
    (workdir / "chart.png").write_bytes(png(96, 64))
    (workdir / "table.csv").write_text("name,value,label\n" + "".join(
        f"row{i},{i * i},\"item, {i}\"\n" for i in range(rows)))
    (workdir / "notes.md").write_text("# Report\n\nSome **bold** text, `code` and a [link](https://example.com).\n\n"
                                      "- first\n- second\n\n<script>alert('raw html stays text')</script>\n")
    (workdir / "summary.json").write_text(json.dumps({"rows": rows, "ok": True, "nested": {"a": [1, 2, 3]}}))
    asset = cf.asset(at=workdir, name="report")
    cf.log_info("wrote {asset} with {rows} rows", asset=asset, rows=rows)
    return asset


@cf.workflow()
def child_flow(n: int) -> int:
    return sum(square(i) for i in range(n))


@cf.workflow()
def showcase(n: int = 3, gate: str = "") -> dict:
    """Every kind of node and edge: a group of squares, a failure caught, memo and cache hits,
    a child run, metrics (a group with two scales, an ungrouped metric, progress), and an asset."""
    cf.log_info("showcase of {n} items for {who}", n=n, who="the views")
    with cf.group("squares"):
        squares = [square.submit(i) for i in range(n)]
    total = sum(s.result() for s in squares)
    failed = broken.submit(n)
    try:
        failed.result()
    except Exception as e:  # shown as an error node; the run goes on
        cf.log_warning("{execution} failed: {error}", execution=failed, error=str(e))
    first, again = lookup("a"), lookup("a")  # the second call is a memo hit
    cached = expensive(1)
    cached_again = expensive(1)  # answered from the cache
    child = child_flow(2)
    report = make_report(5)
    trained = train(8, gate)
    return {"total": total, "memo": [first, again], "cached": cached + cached_again, "child": child,
            "report": report, "loss": trained}


# ---------------------------------------------------------------------- scale

@cf.task()
def unit(i: int) -> int:
    return i


@cf.workflow()
def wide(n: int = 1000, groups: int = 0) -> int:
    """n steps: n-1 units submitted by the workflow (in `groups` cf.groups, or none)."""
    handles = []
    if groups:
        per = max(1, (n - 1) // groups)
        for g in range(groups):
            with cf.group(f"batch {g}"):
                end = n - 1 if g == groups - 1 else min(n - 1, (g + 1) * per)  # the last takes the rest
                handles += [unit.submit(i) for i in range(g * per, end)]
    else:
        handles = [unit.submit(i) for i in range(n - 1)]
    return sum(h.result() for h in handles)


@cf.task()
def chatter(lines: int) -> int:
    for k in range(lines):
        cf.log_info("line {k} of {total}: value {value}", k=k, total=lines, value=k * 0.5)
    return lines


@cf.workflow()
def chatty(lines: int = 100_000, tasks: int = 4) -> int:
    per = lines // tasks
    return sum(h.result() for h in [chatter.submit(per) for _ in range(tasks)])


@cf.task()
def record_many(metrics: int, points: int) -> int:
    series = [cf.Metric(f"m{j}", group=cf.MetricGroup(f"chart {j}", units="step"), throttle=None)
              for j in range(metrics)]
    for p in range(points):
        for j, metric in enumerate(series):
            metric.record((p % 100) * (j + 1) + p * 0.01, at=p)
    return metrics * points


@cf.workflow()
def many_points(metrics: int = 10, points: int = 10_000) -> int:
    return record_many(metrics, points)


# ---------------------------------------------------------------------- large runs (issue 18)

sweep_loss = cf.Metric("loss", group=cf.MetricGroup("sweep", units="epoch"), scale="loss", throttle=None)
sweep_score = cf.Metric("score", group="sweep", scale=cf.MetricScale("percent", lower=0, upper=100), throttle=None)


@cf.task()
def scale(i: int, points: int = 0, fail: tuple = ()) -> int:
    """One item of a fan-out: records `points` of loss and score, fails when `i` is in `fail`."""
    cf.log_info("scaling item {i}", i=i)
    for p in range(points):
        decay = 0.93 + (i % 7) * 0.005
        sweep_loss.record(decay ** p * (1 + (i % 5) * 0.1), at=p)
        sweep_score.record(min(100.0, p * (0.8 + (i % 9) * 0.05)), at=p)
    if i in fail:
        raise RuntimeError(f"item {i} failed on purpose")
    return i


@cf.task()
def summarise(ok: int, failed: int) -> str:
    return f"{ok} ok, {failed} failed"


@cf.workflow()
def fan(n: int = 300, fail: tuple = (), points: int = 0) -> str:
    """n calls of `scale` (the ones in `fail` fail), then one more step of the workflow's own."""
    handles = [scale.submit(i, points, tuple(fail)) for i in range(n)]
    ok = failed = 0
    for h in handles:
        try:
            h.result()
            ok += 1
        except Exception:
            failed += 1
    return summarise(ok, failed)

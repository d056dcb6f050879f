"""Assets and large values between tasks (tests/test_assets.py, tests/test_blobs.py)."""

from __future__ import annotations

import os
from pathlib import Path

import coflux as cf


def _write_files() -> None:
    Path("a.txt").write_text("hello")
    Path("sub").mkdir()
    Path("sub/b.csv").write_text("x,y\n1,2\n")
    Path("sub/deeper").mkdir()
    Path("sub/deeper/c.md").write_text("# title\n")
    Path("img.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


@cf.task()
def workdir() -> dict:
    """Where this execution runs and what is in it (a fresh, empty directory); it leaves a file
    behind, which must not be there for the next execution."""
    found = sorted(os.listdir("."))
    with open("left-behind.txt", "w") as f:
        f.write("x")
    return {"cwd": os.getcwd(), "files": found}


@cf.task()
def make_all(name: str | None = None) -> cf.Asset:
    _write_files()
    return cf.asset(name=name)


@cf.task()
def make_forms() -> dict:
    """Every form of cf.asset(entries, at=, match=) in one execution."""
    _write_files()
    everything = cf.asset(name="everything")
    return {
        "all": everything,
        "glob": cf.asset(match="*.txt"),
        "glob_deep": cf.asset(match="sub/*"),
        "path": cf.asset("a.txt"),
        "paths": cf.asset(["a.txt", Path("img.png")]),
        "directory": cf.asset("sub"),
        "at": cf.asset(at="sub"),
        "at_path": cf.asset("b.csv", at="sub"),
        "again": cf.asset(everything, match="*.png"),
        "dict": cf.asset({"renamed/x.txt": "a.txt", "nested": everything, "one": everything["img.png"]}),
    }


@cf.task()
def consume(asset: cf.Asset) -> dict:
    """What a receiving task can do with an asset: restore it all, some of it, read entries."""
    restored = asset.restore()
    only_csv = asset.restore(match="*.csv", at="only")
    entry = asset["a.txt"]
    return {
        "id": asset.id,
        "name": asset.name,
        "paths": sorted(restored),
        "exists": all(p.is_file() for p in restored.values()),
        "a": Path(restored["a.txt"]).read_text(),
        "csv": sorted(str(p.relative_to(Path.cwd())) for p in only_csv.values()),
        "read": entry.read(),
        "read_range": entry.read(1, 3),
        "read_past_end": entry.read(100),
        "entry_restore": str(entry.restore(at="single").relative_to(Path.cwd())),
        "contains": ["a.txt" in asset, "missing.txt" in asset],
        "types": {e.path: e.metadata.get("type") for e in asset.entries},
        "sizes": {e.path: e.size for e in asset.entries},
        "metadata": asset.metadata,
    }


@cf.workflow()
def asset_roundtrip(name: str | None = None) -> dict:
    return consume(make_all(name))


@cf.task()
def bad_paths() -> dict:
    """Each bad input is a ValueError with a clear message, and nothing is recorded."""
    _write_files()
    outside = Path(os.getcwd()).parent / f"outside-{os.getpid()}.txt"
    outside.write_text("secret")
    os.symlink(outside, "link.txt")
    errors = {}
    for label, call in [
        ("dotdot", lambda: cf.asset("../" + outside.name)),
        ("absolute", lambda: cf.asset(str(outside))),
        ("symlink", lambda: cf.asset("link.txt")),
        ("at_outside", lambda: cf.asset(at="..")),
        ("dict_key", lambda: cf.asset({"../x.txt": "a.txt"})),
        ("dict_at", lambda: cf.asset({"x.txt": "a.txt"}, at="sub")),
        ("missing", lambda: cf.asset("nope.txt")),
        ("nothing", lambda: cf.asset(match="*.nothing")),
    ]:
        try:
            call()
            errors[label] = None
        except ValueError as exc:
            errors[label] = str(exc)
    outside.unlink()
    return errors


@cf.workflow()
def bad_asset_paths() -> dict:
    return bad_paths()


@cf.task()
def empty_asset() -> cf.Asset:
    return cf.asset()  # the fresh working directory has no files: ValueError


@cf.workflow()
def no_files() -> cf.Asset:
    return empty_asset()


@cf.workflow()
def asset_forms() -> dict:
    return make_forms()


@cf.workflow()
def two_workdirs() -> list:
    return [workdir(), workdir()]


# ---------------------------------------------------------------------- large values


@cf.task()
def make_frame(mib: int):
    import numpy as np
    import pandas as pd

    rows = mib * 1024 * 1024 // 16
    return pd.DataFrame({"a": np.arange(rows, dtype=np.int64), "b": np.ones(rows, dtype=np.float64)})


@cf.task()
def frame_summary(frame) -> dict:
    return {"rows": len(frame), "sum_a": int(frame["a"].sum()), "sum_b": float(frame["b"].sum()),
            "columns": list(frame.columns), "bytes": int(frame.memory_usage(index=False).sum())}


@cf.workflow()
def pass_frame(mib: int) -> dict:
    return frame_summary(make_frame(mib))


@cf.task()
def array_stats(array) -> dict:
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sum": float(array.sum())}


@cf.workflow()
def pass_array(array) -> dict:
    return array_stats(array)


@cf.task()
def make_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@cf.task()
def echo(value):
    return value


@cf.workflow()
def big_bytes(n: int) -> int:
    return len(make_bytes(n))


@cf.workflow()
def echo_flow(value):
    return echo(value)


@cf.workflow()
def log_big(n: int) -> int:
    """A log value above the blob threshold is stored as a blob reference."""
    payload = b"L" * n
    cf.log_info("payload of {size} bytes", size=n, payload=payload)
    return n

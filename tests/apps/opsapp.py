"""The operational commands of the CLI (tests/test_cli_ops.py): a step that fails once and is
retried, a workflow held until a file appears, one that needs a worker nobody runs, assets and
a large value in the blob store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import coflux as cf


@cf.task(retries=cf.Retries(1, backoff=(0.1, 0.1)))
def fails_once(marker: str) -> int:
    """Attempt 1 raises (and leaves `marker` behind); attempt 2 returns 7."""
    cf.log_info("attempt at {marker}", marker=marker)
    if not os.path.exists(marker):
        Path(marker).write_text("failed once")
        raise ValueError("first attempt fails")
    return 7


@cf.task()
def wait_for(path: str, value: int) -> int:
    cf.log_info("waiting for {path}", path=path)
    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    cf.log_info("released with {value}", value=value)
    return value


@cf.workflow()
def flaky(marker: str) -> int:
    cf.log_info("flaky starts")
    return fails_once(marker) + 1


@cf.workflow()
def held(path: str) -> int:
    """Step 2 waits for `path`; the run returns its value + 1."""
    return wait_for(path, 41) + 1


@cf.workflow(requires={"ops-test": ["nobody"]})
def unplaceable() -> int:
    return 0


@cf.task()
def files() -> cf.Asset:
    Path("a.txt").write_text("hello")
    Path("sub").mkdir()
    Path("sub/b.csv").write_text("x,y\n1,2\n")
    Path("sub/c.csv").write_text("x,y\n3,4\n")
    Path("img.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256)))
    return cf.asset(name="ops")


@cf.workflow()
def with_asset() -> cf.Asset:
    return files()

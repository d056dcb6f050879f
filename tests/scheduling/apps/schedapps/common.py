"""Helpers for the workflow modules: append-only log files count what really ran."""

from __future__ import annotations

import os
import time


def mark(path: str, text: str = "") -> None:
    """Append one line (O_APPEND: lines from concurrent processes never interleave)."""
    with open(path, "a") as f:
        f.write(text + "\n")


def lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def count(path: str, prefix: str | None = None) -> int:
    return sum(1 for line in lines(path) if prefix is None or line.startswith(prefix))


def wait_for(path: str, timeout: float = 60.0) -> None:
    """Block until `path` exists (the tests create it to release gated work)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)

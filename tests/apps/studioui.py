"""Workflows for Studio's browser test (tests/ui/test_studio_browser.py): typed parameters with
defaults for the run dialog, docstrings for the workflow list, logs, and a step that fails until
a file exists (so the test can read its traceback, then re-run it and see it succeed)."""

import os
import time

import coflux as cf


@cf.task()
def scale(i: int, factor: float) -> float:
    cf.log_info("scaling {i} by {factor}", i=i, factor=factor)
    return i * factor


@cf.task()
def check(fix_file: str) -> str:
    """Fails while `fix_file` does not exist."""
    if not os.path.exists(fix_file):
        raise ValueError(f"the fix file {os.path.basename(fix_file)} is missing")
    return "fixed"


@cf.workflow()
def crunch(count: int, factor: float = 2.0, label: str = "demo", verbose: bool = False,
           tags: list = (), fix_file: str = "") -> str:
    """Scales `count` numbers, then checks a file.

    The second paragraph is shown only on the workflow's own page."""
    total = sum(e.result() for e in [scale.submit(i, factor) for i in range(count)])
    if verbose:
        cf.log_info("label {label} with tags {tags}", label=label, tags=list(tags))
    try:
        outcome = check(fix_file or "/nonexistent")
    except Exception as exc:  # the run finishes; the failed step stays for Studio to show
        outcome = f"check failed: {exc}"
    return f"{label}: {total} ({outcome})"


@cf.workflow()
def slow(seconds: float = 30.0) -> str:
    """Sleeps, so a test can cancel it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"


@cf.task()
def wait_for(gate: str) -> str:
    deadline = time.monotonic() + 120
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} never appeared")
        time.sleep(0.05)
    return "opened"


@cf.workflow()
def gated(gate: str) -> str:
    """Waits until the file `gate` exists (a test opens it)."""
    return wait_for(gate)

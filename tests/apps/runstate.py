"""A workflow for tests/test_run_state.py: its first attempt never ends by itself (the test kills
its worker meanwhile, which abandons it); any later attempt (a re-run) returns at once."""

import os
import time

import coflux as cf


@cf.workflow()
def hold(marker: str, value: int) -> int:
    if os.path.exists(marker):
        return value
    with open(marker, "w"):
        pass
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until its worker is killed
        time.sleep(0.05)
    raise TimeoutError("this attempt was meant to be abandoned")

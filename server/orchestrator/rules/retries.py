"""When a failed attempt is tried again, and after how long."""

from __future__ import annotations

import random

from ..model import FAILURE_KINDS


def is_retryable(kind: str, error: dict | None) -> bool:
    """Errors (unless the worker's `when` said no), abandonment, crashes and timeouts are;
    cancellations and suspensions are not."""
    if kind not in FAILURE_KINDS:
        return False
    return not (kind == "error" and error is not None and error.get("retryable") is False)


def retry_delay(config: dict | None, failures_before: int) -> float | None:
    """Seconds until the next attempt, or None when no retry is left.

    `failures_before` counts the step's consecutive failures before this one. With a limit,
    retry k (k = 0 .. limit-1) waits min + k / max(limit - 1, 1) * (max - min); without a
    limit the delay is uniformly random between min and max.
    """
    if not config:
        return None
    low, high = (float(x) for x in config.get("backoff") or (0, 0))
    limit = config.get("limit")
    if limit is None:
        return random.uniform(low, high)
    if failures_before >= int(limit):
        return None
    return low + failures_before / max(int(limit) - 1, 1) * (high - low)

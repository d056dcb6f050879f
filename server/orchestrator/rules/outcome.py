"""What follows when an attempt ends: one ordered list of rules.

`conclude` runs the rules in order over an `Ending` (how the attempt ended) and returns a
`Verdict`, which the orchestrator applies: it records the result (with the successor a retry
or a recurrence creates), cancels descendants when the verdict says so, and keeps the cache
index current. The rules:

1. retry: a failure (error, abandoned, crashed, timeout) the retry policy allows becomes a new
   attempt after its backoff; errors the worker's `when` rejected are final.
2. recur: a recurrent step that returned None runs again after its delay (recorded `recurred`).
3. cancel descendants: a timeout, abandonment or crash leaves no child running (an error does
   not: the code that raised it may have handled its children).
4. cache index: a value with a cache key becomes reusable by equal calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coflux.protocol import FAILURE_KINDS, ResultKind

from ..model import Pending
from .retries import is_retryable, retry_delay


@dataclass
class Ending:
    """How an attempt ended, as the outcome rules see it."""

    pending: Pending
    kind: str
    value: Any = None
    error: Any = None
    now: float = 0.0
    # The step's consecutive failures before this attempt (read from the database only when a
    # retry policy asks).
    failures_before: Callable[[], int] = field(default=lambda: 0)


@dataclass
class Verdict:
    kind: str  # what is recorded (a recurrence records `recurred`)
    value: Any = None
    next_attempt: tuple[str, float | None] | None = None  # (cause, execute_after): the successor to create
    cancel_descendants: bool = False
    index_cache: bool = False  # the value becomes a cache entry


def retry_failure(ending: Ending, verdict: Verdict) -> None:
    if ending.kind not in FAILURE_KINDS or not is_retryable(ending.kind, ending.error):
        return
    delay = retry_delay(ending.pending.options.get("retries"), ending.failures_before())
    if delay is not None:
        verdict.next_attempt = ("retry", ending.now + delay if delay > 0 else None)


def recur_on_none(ending: Ending, verdict: Verdict) -> None:
    options = ending.pending.options
    if ending.kind == ResultKind.VALUE and options.get("recurrent") and ending.value == {"v": None}:
        delay = float(options.get("delay") or 0)
        verdict.next_attempt = ("recur", ending.now + delay if delay > 0 else None)
        verdict.kind, verdict.value = ResultKind.RECURRED, None


def cancel_descendants(ending: Ending, verdict: Verdict) -> None:
    if ending.kind in FAILURE_KINDS and ending.kind != ResultKind.ERROR:
        verdict.cancel_descendants = True


def index_cache(ending: Ending, verdict: Verdict) -> None:
    if ending.pending.cache_key is not None and verdict.kind == ResultKind.VALUE:
        verdict.index_cache = True


Rule = Callable[[Ending, Verdict], None]
OUTCOME_RULES: tuple[Rule, ...] = (retry_failure, recur_on_none, cancel_descendants, index_cache)


def conclude(ending: Ending, rules: tuple[Rule, ...] = OUTCOME_RULES) -> Verdict:
    """The verdict on an ended attempt: each rule in order may amend it."""
    verdict = Verdict(kind=ending.kind, value=ending.value)
    for rule in rules:
        rule(ending, verdict)
    return verdict

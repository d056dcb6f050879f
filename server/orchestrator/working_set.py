"""The orchestrator's working set: everything it holds in memory, in one object.

Only the orchestrator thread reads or writes it. All of it can be rebuilt from the database
(`Orchestrator._load`), which is what recovery does after a rolled-back batch: the old working
set is dropped whole and a new one loaded, so no part can survive a rollback by accident.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .caches import BoundedCache, approx_size
from .model import Pending, Session, Waiter

# Bounds of the in-memory caches (each can be read again from the database; see caches.py).
RESULTS_MAX_ITEMS = 100_000
RESULTS_MAX_BYTES = 32 * 1024 * 1024
RESULT_MAX_BYTES = 1024 * 1024  # a bigger value is read from the database when someone needs it
RUNS_MAX_ITEMS = 20_000
CACHE_KEYS_MAX_ITEMS = 20_000
RESUMED_MAX_ITEMS = 200
RESUMED_MAX_BYTES = 64 * 1024 * 1024  # an evicted table is read again on its attempt's next call
CACHE_KEYS_MAX_BYTES = 16 * 1024 * 1024


def _result_size(result: tuple) -> int:
    _, value, error, _ = result
    if value is None and error is None:
        return 0
    return approx_size(value, RESULT_MAX_BYTES) + approx_size(error, RESULT_MAX_BYTES)


def _results_cache() -> BoundedCache:
    return BoundedCache(RESULTS_MAX_ITEMS, RESULTS_MAX_BYTES, max_entry_bytes=RESULT_MAX_BYTES, sizeof=_result_size)


def _cache_values() -> BoundedCache:
    return BoundedCache(CACHE_KEYS_MAX_ITEMS, CACHE_KEYS_MAX_BYTES, sizeof=lambda entries: 120 * len(entries))


@dataclass(eq=False)
class WorkingSet:
    # Workers.
    sessions: dict[str, Session] = field(default_factory=dict)
    peer_sessions: dict[Any, str] = field(default_factory=dict)  # connection -> session id
    session_secrets: dict[str, str | None] = field(default_factory=dict)  # session id -> sha256 of its secret
    # (module, target) -> its parameter names, as the latest worker declaring it said (views name
    # a step's arguments with them; not stored: a restarted server learns them again on register).
    signatures: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    # Executions without a result: waiting (pending_by_id: queued, delayed or blocked) or handed out.
    pending_by_id: dict[str, Pending] = field(default_factory=dict)
    ready: dict[tuple[str, str], deque[Pending]] = field(default_factory=dict)  # (module, target) -> due work
    delayed: dict[str, Pending] = field(default_factory=dict)  # waiting for their `execute_after`
    urgent: deque[Pending] = field(default_factory=deque)  # ready work a running (parked) execution waits for
    deferrable: dict[tuple, Pending] = field(default_factory=dict)  # (module, target, workspace, defer key) -> latest
    active: dict[str, str] = field(default_factory=dict)  # handed-out execution -> session id
    assigned: dict[str, Pending] = field(default_factory=dict)  # what an active execution was handed out as

    # Outcomes and who waits for them.
    results: BoundedCache = field(default_factory=_results_cache)  # execution -> (kind, value, error, successor)
    waiters: dict[str, list[Waiter]] = field(default_factory=dict)  # execution -> waiters
    peer_waiters: dict[Any, set[Waiter]] = field(default_factory=dict)  # connection -> its waiters

    # Caching: executions due and unfinished, and recent values, by cache key.
    cache_inflight: dict[str, set[str]] = field(default_factory=dict)
    cache_values: BoundedCache = field(default_factory=_cache_values)  # key -> [(execution, step, workspace, at)]
    # Resumed steps: what their earlier attempts' children computed (resumption.py; reloadable).
    resumed: BoundedCache = field(default_factory=lambda: BoundedCache(
        RESUMED_MAX_ITEMS, RESUMED_MAX_BYTES, sizeof=lambda table: 200 * table.size()))

    # Runs and workspaces (read from the database on first use).
    runs: BoundedCache = field(default_factory=lambda: BoundedCache(RUNS_MAX_ITEMS))  # run id -> RunInfo
    workspace_ids: dict[str, int] = field(default_factory=dict)
    workspace_bases: dict[int, int | None] = field(default_factory=dict)
    paused_workspaces: dict[int, str] = field(default_factory=dict)  # id -> name: nothing new is dispatched there
    archived_workspaces: set[int] = field(default_factory=set)  # no new runs, hidden from lists

    # Pools and the launches not ended (pools.py; rules/launch.py has their shapes).
    pools: dict[int, Any] = field(default_factory=dict)  # pool id -> PoolState
    launches: dict[str, Any] = field(default_factory=dict)  # launch id -> LaunchState
    pools_tick: float | None = None  # when the pending `pools` timer fires

    # Timers: (due, sequence, kind, payload), a heap.
    timers: list[tuple[float, int, str, Any]] = field(default_factory=list)

    # Numbering, read again from the database after a rollback.
    seq_next: int | None = None  # the next feed event's number (feed.py)
    telemetry_id_next: int | None = None  # the next log line's or metric point's id (telemetry.py)
    telemetry_batches: dict[str, int] = field(default_factory=dict)  # active execution -> last batch number
    # (SQLite) batches of lines not in the search index yet: (batch id, lines). Lost with the
    # working set on purpose: loading indexes what the database lacks.
    unindexed: list[tuple[int, list]] = field(default_factory=list)
    unindexed_lines: int = 0
    index_timer: bool = False

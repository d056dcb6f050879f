"""In-memory working set of the orchestrator. Everything here can be rebuilt from the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from coflux.protocol import FAILURE_KINDS, FINAL_KINDS  # noqa: F401 (re-exported for the components)


class Peer(Protocol):
    """A loop-side connection (WebSocket or HTTP long-poll) that can receive messages."""

    def send_many(self, messages: list[dict]) -> None: ...


@dataclass(eq=False)
class Session:
    id: str
    workspace_id: int
    kind: str
    name: str
    targets: dict[tuple[str, str], str]  # (module, target) -> "workflow" | "task"
    concurrency: int  # executions it runs at once; 0 = unlimited
    provides: dict[str, list[str]]
    accepts: dict[str, list[str]]
    peer: Peer | None = None
    running: set[str] = field(default_factory=set)
    expires_at: float | None = None  # set while disconnected: abandon its work after this
    prefetch: int = 0  # executions it may hold queued beyond `concurrency` (hides dispatch latency)
    prefetch_paused: bool = False  # it handed queued work back; only idle slots count until one frees
    kernel_id: str | None = None  # for a notebook kernel: the Jupyter kernel it lives in
    gone: bool = False  # its process is known dead: end the session as soon as its socket closes
    # Executions blocked on others' results give their slot back (see coflux/worker/slots.py):
    parked: int = 0  # how many of `running` are parked, as the worker last said
    stuck: set[str] = field(default_factory=set)  # blocked but holding a slot: its parking bound is reached
    max_parked: int = 0
    draining: bool = False  # stopping: only work its own running executions wait for
    workspace_paused: str | None = None  # its workspace's name while that is paused (rules/placement.py)
    # A worker launched for a pool (its credential says which): it takes only that pool's modules.
    pool: str | None = None
    pool_modules: tuple[str, ...] | None = None
    accepts_code: bool = False  # opted in (`coflux worker --accept-code`) to code shipped by value
    # (module, target) -> the hash of its code as the worker has it now (a kernel: the cell as it
    # is now); what a step panel compares the code a step ran with.
    code_hashes: dict[tuple[str, str], str] = field(default_factory=dict)
    declared_at: float = 0.0  # when it last declared its targets (the newest declaration wins)

    def busy_slots(self) -> int:
        return len(self.running) - self.parked

    def has_capacity(self) -> bool:
        extra = 0 if self.prefetch_paused else self.prefetch
        return self.peer is not None and (
            self.concurrency <= 0 or self.busy_slots() < self.concurrency + extra)


@dataclass(eq=False)
class Pending:
    """An execution without a result: waiting for its time, its dependencies or a worker."""

    id: str
    step_id: str
    run_id: str
    module: str
    target: str
    type: str
    workspace_id: int
    execute_after: float
    arguments: list[Any]
    options: dict[str, Any]
    requires: dict[str, list[str]]
    origin_session_id: str | None
    attempt: int = 1
    cause: str | None = None  # why a later attempt exists: retry, rerun, resume, suspend, recur
    cache_key: str | None = None
    defer_key: str | None = None
    force: bool = False  # a re-run: never a cache hit
    after: list[str] | None = None  # start once any of these executions resolves (suspense)
    blocked: bool = False
    parent_id: str | None = None  # the execution that submitted its step
    urgent: bool = False  # a running (parked) execution waits for it: schedule it first
    started_at: float | None = None  # its worker said it began running (assigned is not started)
    assignment: int = 0  # the number of its latest hand-out to a worker (0: never handed out)
    code_hash: str | None = None  # the code it runs, as its caller knew it (coflux/codehash.py)

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout") or 0)


@dataclass(eq=False)
class Waiter:
    """Someone waiting on an execution's outcome: a request to answer, a running parent to
    which a child's outcome is pushed unasked (`push`), or an internal `callback`."""

    peer: Peer | None
    request_id: Any
    expires_at: float | None = None
    done: bool = False
    extra: dict | None = None  # merged into the reply (the `call` op adds the execution id)
    push: tuple[str, str] | None = None  # (parent execution, child execution)
    callback: Callable[[dict], None] | None = None


class RunInfo:
    __slots__ = ("id", "workspace_id", "requires", "memo", "origin_session_id", "next_number", "module",
                 "target")

    def __init__(self, row: Any, next_number: int) -> None:
        self.id = row.id
        self.workspace_id = row.workspace_id
        self.requires = row.requires or {}
        self.memo = bool(row.memo)
        self.origin_session_id = row.origin_session_id
        self.module = row.module
        self.target = row.target
        self.next_number = next_number

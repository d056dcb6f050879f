"""In-memory working set of the orchestrator. Everything here can be rebuilt from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# Result kinds that end a chain (anything else hands over to `successor_id`).
FINAL_KINDS = {"value", "error", "cancelled", "abandoned", "crashed", "timeout"}


class Peer(Protocol):
    """A loop-side connection (WebSocket or HTTP long-poll) that can receive messages."""

    def send(self, message: dict) -> None: ...


@dataclass
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

    def has_capacity(self) -> bool:
        extra = 0 if self.prefetch_paused else self.prefetch
        return self.peer is not None and (
            self.concurrency <= 0 or len(self.running) < self.concurrency + extra)


@dataclass
class Pending:
    """An execution that has not been assigned to a worker yet."""

    id: str
    step_id: str
    run_id: str
    module: str
    target: str
    type: str
    workspace_id: int
    execute_after: float
    arguments: list[Any]
    requires: dict[str, list[str]]
    timeout: float
    origin_session_id: str | None


@dataclass(eq=False)
class Waiter:
    """Someone waiting on an execution's outcome: a request to answer, or (with `push`) a
    running parent to which the outcome of a child it submitted is pushed unasked."""

    peer: Peer
    request_id: Any
    expires_at: float | None = None
    done: bool = False
    extra: dict | None = None  # merged into the reply (the `call` op adds the execution id)
    push: tuple[str, str] | None = None  # (parent execution, child execution)

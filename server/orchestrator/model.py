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
    concurrency: int  # 0 = unlimited
    provides: dict[str, list[str]]
    accepts: dict[str, list[str]]
    peer: Peer | None = None
    running: set[str] = field(default_factory=set)
    expires_at: float | None = None  # set while disconnected: abandon its work after this

    def has_capacity(self) -> bool:
        return self.peer is not None and (self.concurrency <= 0 or len(self.running) < self.concurrency)


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


@dataclass
class Waiter:
    peer: Peer
    request_id: Any
    expires_at: float | None = None
    done: bool = False

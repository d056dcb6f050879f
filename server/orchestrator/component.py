"""The base of the orchestrator's components, and what they may use of the orchestrator.

Each component has one job (the queue, the workers, the outcomes, the waiters, ...) and works
on the orchestrator's state through `Host`, the orchestrator seen from a component: the working
set (`ws`), the batch's write buffer (`w`) and connection (`db`), its effects (`reply`, `send`,
`publish`, `add_timer`), lookups (`follow`, `result_of`, ...) and the other components.
Components call each other only through public methods, as `self.o.<component>.<method>`; the
decisions themselves are the ordered rule lists of `rules/`.
"""

from __future__ import annotations

from typing import Any, Protocol

from .model import Peer, RunInfo
from .working_set import WorkingSet


class Host(Protocol):
    """The orchestrator as its components see it (core.Orchestrator implements it)."""

    ws: WorkingSet
    w: Any  # writes.WriteBuffer of the current batch
    db: Any  # the batch's connection (in its transaction)
    needs_schedule: bool  # set when placement should run at the end of the batch
    reconnect_grace: float
    engine: Any  # for reads outside the batch's transaction
    # The components (typed loosely here: their modules import this one).
    workers: Any
    worker_state: Any
    submission: Any
    queue: Any
    outcomes: Any
    waiters: Any
    telemetry: Any
    feed: Any
    control: Any
    resumption: Any
    assets: Any
    tokens: Any
    inputs: Any
    pools: Any
    pool_runtime: Any  # server/pools/runtime.py: the launch runner, credentials, secrets
    manifests: Any

    def after_commit(self, fn: Any) -> None: ...
    def reply(self, peer: Peer | None, request_id: Any, result: Any) -> None: ...
    def send(self, peer: Peer | None, message: dict) -> None: ...
    def publish(self, topic: str, event: Any, stored: dict | None = None) -> None: ...
    def add_timer(self, due: float, kind: str, payload: Any) -> None: ...
    def follow(self, execution_id: str) -> tuple[str, str, tuple | None]: ...
    def result_of(self, execution_id: str) -> tuple[str, Any, Any, str | None] | None: ...
    def cache_result(self, execution_id: str, result: tuple) -> tuple: ...
    def execution_exists(self, execution_id: str) -> bool: ...
    def run_info(self, run_id: str) -> RunInfo: ...
    def workspace_id(self, name: str, create: bool = False) -> int: ...
    def workspace_lineage(self, workspace_id: int) -> list[int]: ...


class Component:
    __slots__ = ("o",)

    def __init__(self, host: Host) -> None:
        self.o = host

    # The working set and the batch's database handles are replaced on recovery: always the current ones.
    @property
    def ws(self) -> WorkingSet:
        return self.o.ws

    @property
    def w(self) -> Any:
        return self.o.w

    @property
    def db(self) -> Any:
        return self.o.db

"""When a pool launches a worker, and when a launched worker stops: ordered rules.

`hosts` says whether a pool could run a waiting execution (its workspace, a module it hosts,
the execution's `requires` against the pool's `provides`/`accepts`). A step that carries code
shipped by value is hosted only by a pool with `acceptCode` (its workers run
`coflux worker --accept-code`), whatever its modules: the step's module is the defining
kernel's, and its code travels with it. For a pool that hosts
work no connected worker takes, `LAUNCH_RULES` are checked in order: the first that refuses
says why nothing is launched (and the waiting execution's reason shows it); when none does, a
worker is launched. A launched worker idle for the pool's `idleTimeout` is stopped (`idle`)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..matching import worker_matches
from ..model import Pending
from .placement import shipped

ACTIVE = ("launching", "started", "connected", "stopping")
STARTING = ("launching", "started")
BACKOFF_BASE = 1.0  # seconds after the first failed launch; doubled per failure in a row
BACKOFF_MAX = 60.0


@dataclass(eq=False)
class PoolState:
    id: int
    workspace_id: int
    workspace: str
    name: str
    type: str
    config: dict
    modules: list[str]
    provides: dict[str, list[str]]
    accepts: dict[str, list[str]]
    enabled: bool
    failures: int = 0  # failed launches in a row
    retry_at: float = 0.0  # no launch before this (backoff)
    last_error: str | None = None

    def setting(self, key: str) -> Any:
        from ...pools.config import setting

        return setting(self.config, key)


@dataclass(eq=False)
class LaunchState:
    id: str
    pool_id: int
    state: str
    secret_hash: str
    handle: dict | None = None
    session_id: str | None = None
    created_at: float = 0.0
    idle_since: float | None = None
    extra: dict = field(default_factory=dict)


def hosts_module(pool: PoolState, module: str) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in pool.modules)


def accepts_code(pool: PoolState) -> bool:
    return bool(pool.setting("acceptCode"))


def hosts(pool: PoolState, pending: Pending) -> bool:
    if pool.workspace_id != pending.workspace_id or not worker_matches(pending.requires, pool.provides, pool.accepts):
        return False
    if shipped(pending):
        return accepts_code(pool)
    return hosts_module(pool, pending.module)


def refuses_shipped_code(pool: PoolState, pending: Pending) -> str | None:
    """Why a pool that would otherwise host a shipped step launches nothing for it (None: it
    accepts code, or would not host the step anyway)."""
    if not shipped(pending) or accepts_code(pool) or pool.workspace_id != pending.workspace_id \
            or not worker_matches(pending.requires, pool.provides, pool.accepts):
        return None
    return (f"pool {pool.name} does not accept shipped code "
            f"(`coflux pools update {pool.name} --set acceptCode=true` lets it)")


def backoff(failures: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, failures - 1))


@dataclass(frozen=True)
class Facts:
    """What the rules know of a pool now."""

    allowed: tuple[str, ...]  # launcher types this server runs (`coflux server --launcher`)
    active: int  # its launches not ended
    starting: int  # of those, the ones not connected yet
    now: float


@dataclass(frozen=True)
class LaunchRule:
    name: str
    refusal: Callable[[PoolState, Facts], str | None]  # why not, or None


def _failed_text(pool: PoolState, facts: Facts) -> str:
    wait = math.ceil(max(0.0, pool.retry_at - facts.now))
    return f"pool {pool.name}: launch failed: {pool.last_error} (retrying in {wait} s)"


LAUNCH_RULES: tuple[LaunchRule, ...] = (
    LaunchRule("enabled", lambda p, f: None if p.enabled else f"pool {p.name} is disabled"),
    LaunchRule("launcher allowed", lambda p, f: None if p.type in f.allowed else
               f"pool {p.name}: this server does not run {p.type} launchers (start it with --launcher {p.type})"),
    LaunchRule("not backing off", lambda p, f: None if f.now >= p.retry_at else _failed_text(p, f)),
    LaunchRule("one launch at a time", lambda p, f: None if not f.starting else
               f"pool {p.name}: launching a worker"),
    LaunchRule("under max workers", lambda p, f: None if f.active < int(p.setting("maxWorkers")) else
               f"pool {p.name}: at its {int(p.setting('maxWorkers'))} worker(s) (maxWorkers)"),
)


def refusal(pool: PoolState, facts: Facts, rules: tuple[LaunchRule, ...] = LAUNCH_RULES) -> str | None:
    """Why `pool` launches no worker now (None: launch one)."""
    for rule in rules:
        reason = rule.refusal(pool, facts)
        if reason is not None:
            return reason
    return None


def idle(launch: LaunchState, running: int, idle_timeout: float, now: float) -> bool:
    """A connected launched worker with nothing to run for `idle_timeout` seconds is stopped."""
    return launch.state == "connected" and running == 0 and launch.idle_since is not None \
        and now - launch.idle_since >= idle_timeout

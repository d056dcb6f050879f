"""Pools: their rows, the launches the server decides, and the state of each launched worker.

Everything here runs on the orchestrator's thread, in its batches: a pool's changes, the
decision to launch (rules/launch.py) and each launch's state are rows and feed events of the
batch that made them. What takes time (starting a process, a container, a Job; stopping one)
is handed to the launch runner (server/pools/runner.py) once the batch has committed, and the
runner reports back through `orchestrator.call`. A launch is recorded before its worker is
started and counts as "starting" until that worker connects with its credential or the
connect timeout ends it, so a restart in between never launches twice for the same work."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import delete, func, select, update

from coflux.protocol import WORKERS_TOPIC, LaunchEvent, PoolEvent

from ..errors import BadRequest, NotFound
from ..ids import random_id
from ..pools import config as pool_config
from ..pools.launchers.base import LaunchSpec
from ..store import schema as t
from ..tokens import hash_token
from .component import Component
from .model import Pending, Session
from .rules import launch as rules
from .rules import placement

TICK = 1.0  # seconds between checks of idle workers, connect timeouts and backoffs, while any matter
ENDED = ("exited", "failed", "lost")
SCAN_PER_TARGET = 20  # waiting executions of one target looked at for a launch decision


class Pools(Component):
    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Pools and the launches not ended, from the database (start and recovery); what was
        launched before a restart is watched again (or found gone) once this batch commits."""
        runtime = self.o.pool_runtime
        names = {v: k for k, v in self.ws.workspace_ids.items()}
        for row in self.db.execute(select(t.pools)):
            self.ws.pools[row.id] = self._pool_from_row(row, names.get(row.workspace_id) or self._ws_name(row.workspace_id))
        runtime.credentials.clear()
        for row in self.db.execute(select(t.launches).where(t.launches.c.state.notin_(ENDED))):
            launch = rules.LaunchState(id=row.id, pool_id=row.pool_id, state=row.state, secret_hash=row.secret_hash,
                                       handle=row.handle, session_id=row.session_id, created_at=row.created_at)
            self.ws.launches[launch.id] = launch
            runtime.credentials.add(row.secret_hash, row.id, row.pool_name, self._ws_name(row.workspace_id))
            self.o.after_commit(lambda kind=row.type, launch=launch: runtime.runner and runtime.runner.reattach(
                launch.id, kind, launch.handle))
            if launch.state in rules.STARTING:
                # Launched (or about to be) before the restart: it has the connect timeout from now to
                # connect with its credential; until then it counts as starting (no second launch).
                pool = self.ws.pools.get(launch.pool_id)
                timeout = float(pool.setting("connectTimeout")) if pool else 60.0
                self.o.add_timer(time.time() + timeout, "launch_timeout", launch.id)
        if self.ws.launches or self.ws.pools:
            self.schedule_tick(time.time() + TICK)

    def _ws_name(self, workspace_id: int) -> str:
        for name, ws_id in self.ws.workspace_ids.items():
            if ws_id == workspace_id:
                return name
        row = self.db.execute(select(t.workspaces.c.name).where(t.workspaces.c.id == workspace_id)).first()
        return row.name if row else str(workspace_id)

    def _pool_from_row(self, row: Any, workspace: str) -> rules.PoolState:
        return rules.PoolState(id=row.id, workspace_id=row.workspace_id, workspace=workspace, name=row.name,
                               type=row.type, config=row.config, modules=row.modules, provides=row.provides,
                               accepts=row.accepts, enabled=bool(row.enabled))

    # ------------------------------------------------------------------ pools: the management API

    def _pool(self, workspace: str, name: str) -> rules.PoolState:
        ws_id = self.o.workspace_id(workspace)
        for pool in self.ws.pools.values():
            if pool.workspace_id == ws_id and pool.name == name:
                return pool
        raise NotFound(f"no pool {name!r} in workspace {workspace!r}")

    def describe(self, pool: rules.PoolState) -> dict:
        launches = [lc for lc in self.ws.launches.values() if lc.pool_id == pool.id]
        return {"name": pool.name, "workspace": pool.workspace, "type": pool.type,
                "config": pool_config.public_config(pool.config), "modules": pool.modules,
                "provides": pool.provides, "accepts": pool.accepts, "enabled": pool.enabled,
                "active_launches": len(launches), "last_error": pool.last_error if pool.failures else None}

    def list_pools(self, workspace: str) -> list[dict]:
        ws_id = self.o.workspace_id(workspace)
        return [self.describe(p) for p in sorted(self.ws.pools.values(), key=lambda p: p.name)
                if p.workspace_id == ws_id]

    def get_pool(self, workspace: str, name: str) -> dict:
        return self.describe(self._pool(workspace, name))

    def create_pool(self, workspace: str, name: str, kind: str, settings: dict, modules: Any,
                    provides: Any, accepts: Any, *, replace: bool = False) -> dict:
        name = pool_config.check_name(name)
        kind = pool_config.check_type(kind)
        config = self.o.pool_runtime.secrets.seal(pool_config.apply_settings(kind, {}, settings, []))
        modules = pool_config.check_modules(modules, config)
        provides = pool_config.check_tags(provides, "provides")
        accepts = pool_config.check_tags(accepts, "accepts")
        ws_id = self.o.workspace_id(workspace, create=True)
        existing = next((p for p in self.ws.pools.values() if p.workspace_id == ws_id and p.name == name), None)
        now = time.time()
        values = dict(type=kind, config=config, modules=modules, provides=provides, accepts=accepts, updated_at=now)
        if existing is not None:
            if not replace:
                raise BadRequest(f"pool {name!r} exists in workspace {workspace!r} (use `pools update`)")
            self.db.execute(update(t.pools).where(t.pools.c.id == existing.id).values(**values))
            existing.type, existing.config, existing.modules = kind, config, modules
            existing.provides, existing.accepts = provides, accepts
            pool = existing
        else:
            pool_id = self._fresh_pool_id()
            self.db.execute(t.pools.insert().values(id=pool_id, workspace_id=ws_id, name=name, enabled=True,
                                                    created_at=now, **values))
            pool = self.ws.pools[pool_id] = rules.PoolState(
                id=pool_id, workspace_id=ws_id, workspace=workspace, name=name, type=kind, config=config,
                modules=modules, provides=provides, accepts=accepts, enabled=True)
        self._changed(pool)
        return self.describe(pool)

    def _fresh_pool_id(self) -> int:
        """An id no pool ever had: launches outlive their deleted pool (on record, some still
        stopping) and are found by pool id, and SQLite hands a deleted row's id out again."""
        self.w.flush()
        used = [self.db.execute(select(func.max(t.pools.c.id))).scalar() or 0,
                self.db.execute(select(func.max(t.launches.c.pool_id))).scalar() or 0,
                *self.ws.pools, *(launch.pool_id for launch in self.ws.launches.values())]
        return max(used) + 1

    def update_pool(self, workspace: str, name: str, settings: dict, unset: list, modules: Any = None,
                    provides: Any = ..., accepts: Any = ...) -> dict:
        pool = self._pool(workspace, name)
        config = pool_config.apply_settings(pool.type, pool.config, settings, unset)
        config = self.o.pool_runtime.secrets.seal(config)
        new_modules = pool_config.check_modules(modules if modules is not None else pool.modules, config)
        new_provides = pool_config.check_tags(provides, "provides") if provides is not ... else pool.provides
        new_accepts = pool_config.check_tags(accepts, "accepts") if accepts is not ... else pool.accepts
        pool.config, pool.modules, pool.provides, pool.accepts = config, new_modules, new_provides, new_accepts
        pool.failures, pool.retry_at, pool.last_error = 0, 0.0, None  # a new recipe: try it at once
        self.db.execute(update(t.pools).where(t.pools.c.id == pool.id).values(
            config=config, modules=new_modules, provides=new_provides, accepts=new_accepts, updated_at=time.time()))
        self._changed(pool)
        return self.describe(pool)

    def set_enabled(self, workspace: str, name: str, enabled: bool) -> dict:
        pool = self._pool(workspace, name)
        pool.enabled = enabled
        if enabled:
            pool.failures, pool.retry_at = 0, 0.0
        self.db.execute(update(t.pools).where(t.pools.c.id == pool.id).values(enabled=enabled, updated_at=time.time()))
        if not enabled:  # its workers drain and exit; nothing new is launched
            for launch in list(self.ws.launches.values()):
                if launch.pool_id == pool.id:
                    self._stop(launch, pool)
        self._changed(pool)
        return self.describe(pool)

    def delete_pool(self, workspace: str, name: str) -> None:
        pool = self._pool(workspace, name)
        for launch in list(self.ws.launches.values()):
            if launch.pool_id == pool.id:
                self._stop(launch, pool)
        self.db.execute(delete(t.pools).where(t.pools.c.id == pool.id))
        del self.ws.pools[pool.id]
        self.o.publish(WORKERS_TOPIC, PoolEvent(type="pool", workspace=pool.workspace, pool=pool.name, deleted=True))

    def export_pools(self, workspace: str) -> list[dict]:
        """Pools as `pools import` takes them (a secret field is left out: it is never shown)."""
        ws_id = self.o.workspace_id(workspace)
        out = []
        for pool in sorted(self.ws.pools.values(), key=lambda p: p.name):
            if pool.workspace_id == ws_id:
                config = {k: v for k, v in pool.config.items() if k not in pool_config.SECRET}
                out.append({"name": pool.name, "type": pool.type, "config": config, "modules": pool.modules,
                            "provides": pool.provides, "accepts": pool.accepts, "enabled": pool.enabled})
        return out

    def import_pools(self, workspace: str, pools: Any) -> list[str]:
        """Create or replace each pool given (all checked first: one bad entry changes nothing)."""
        if not isinstance(pools, list):
            raise BadRequest("pools must be a list")
        for entry in pools:
            if not isinstance(entry, dict):
                raise BadRequest("each pool is an object")
            pool_config.check_name(entry.get("name"))
            kind = pool_config.check_type(entry.get("type"))
            config = pool_config.apply_settings(kind, {}, entry.get("config") or {}, [])
            pool_config.check_modules(entry.get("modules"), config)
        names = []
        for entry in pools:
            self.create_pool(workspace, entry["name"], entry["type"], entry.get("config") or {}, entry.get("modules"),
                             entry.get("provides"), entry.get("accepts"), replace=True)
            if entry.get("enabled") is False:
                self.set_enabled(workspace, entry["name"], False)
            names.append(entry["name"])
        return names

    def launches(self, workspace: str, name: str, limit: int = 50) -> list[dict]:
        pool = self._pool(workspace, name)
        self.w.flush()
        # By workspace and name too: a deleted pool's id may be reused (SQLite), its launches kept.
        rows = self.db.execute(select(t.launches).where(
            t.launches.c.pool_id == pool.id, t.launches.c.workspace_id == pool.workspace_id,
            t.launches.c.pool_name == pool.name).order_by(t.launches.c.created_at.desc()).limit(limit)).all()
        return [{"id": r.id, "pool": r.pool_name, "type": r.type, "state": r.state, "session": r.session_id,
                 "worker": _where(r.handle),
                 "error": r.error, "log_tail": r.log_tail, "exit_code": r.exit_code, "created_at": r.created_at,
                 "started_at": r.started_at, "connected_at": r.connected_at, "ended_at": r.ended_at} for r in rows]

    def _changed(self, pool: rules.PoolState) -> None:
        self.o.needs_schedule = True
        self.o.publish(WORKERS_TOPIC, PoolEvent(type="pool", workspace=pool.workspace, pool=pool.name,
                                                enabled=pool.enabled))
        self.schedule_tick(time.time() + TICK)

    def schedule_tick(self, at: float) -> None:
        """One pending `pools` timer at a time (the earliest asked for)."""
        if self.ws.pools_tick is None or at < self.ws.pools_tick:
            self.ws.pools_tick = at
            self.o.add_timer(at, "pools", at)

    # ------------------------------------------------------------------ deciding

    def _facts(self, pool: rules.PoolState, now: float) -> rules.Facts:
        mine = [lc for lc in self.ws.launches.values() if lc.pool_id == pool.id]
        return rules.Facts(allowed=self.o.pool_runtime.allowed, active=len(mine),
                           starting=sum(lc.state in rules.STARTING for lc in mine), now=now)

    def hosts_module(self, workspace_id: int, module: str) -> bool:
        """Whether an enabled pool of the workspace launches workers for `module`."""
        return any(p.enabled and p.workspace_id == workspace_id and rules.hosts_module(p, module)
                   for p in self.ws.pools.values())

    def after_schedule(self, now: float) -> None:
        """Launch a worker for due work no connected worker takes: from the first pool (by
        name) that hosts it and may launch, unless one of its pools is launching already."""
        if not any(p.enabled for p in self.ws.pools.values()):
            return
        pools = sorted((p for p in self.ws.pools.values() if p.enabled), key=lambda p: p.name)
        covered: set[int] = set()  # pools launching a worker now (or that just decided to)
        for launch in self.ws.launches.values():
            if launch.state in rules.STARTING:
                covered.add(launch.pool_id)
        sessions = list(self.ws.sessions.values())
        for waiting in list(self.ws.ready.values()):
            for index, pending in enumerate(waiting):
                if index >= SCAN_PER_TARGET:
                    break
                if pending.id not in self.ws.pending_by_id or pending.workspace_id in self.ws.paused_workspaces:
                    continue  # gone, or paused: a worker launched now would get nothing to run
                hosting = [p for p in pools if rules.hosts(p, pending)]
                if not hosting or any(p.id in covered for p in hosting):
                    continue
                if placement.why_unplaced(pending, sessions) is None:
                    continue
                for pool in hosting:
                    if rules.refusal(pool, self._facts(pool, now)) is None:
                        self._launch(pool, now)
                        covered.add(pool.id)
                        break

    def waiting_note(self, pending: Pending) -> str | None:
        """Why the pools that could host `pending` have not given it a worker (queue reasons)."""
        now = time.time()
        refused = None  # a pool that would take it, were it to accept shipped code
        hosted = False
        for pool in self.ws.pools.values():
            if pool.enabled and refused is None:
                refused = rules.refuses_shipped_code(pool, pending)
            if pool.workspace_id != pending.workspace_id or not rules.hosts(pool, pending):
                continue
            hosted = True
            reason = rules.refusal(pool, self._facts(pool, now))
            if pool.failures and pool.last_error and (reason is None or reason.endswith("launching a worker")):
                return f"pool {pool.name}: launch failed: {pool.last_error} (retrying)"
            if reason is not None:
                return reason
        return None if hosted else refused

    def _launch(self, pool: rules.PoolState, now: float) -> None:
        runtime = self.o.pool_runtime
        secret = secrets.token_urlsafe(32)
        hashed = hash_token(secret)  # as service tokens are kept
        launch = rules.LaunchState(id=random_id("L", 10), pool_id=pool.id, state="launching", secret_hash=hashed,
                                   created_at=now)
        self.db.execute(t.launches.insert().values(
            id=launch.id, pool_id=pool.id, pool_name=pool.name, workspace_id=pool.workspace_id, type=pool.type,
            state="launching", secret_hash=hashed, created_at=now))
        self.ws.launches[launch.id] = launch
        runtime.credentials.add(hashed, launch.id, pool.name, pool.workspace)
        self._publish(launch, pool)
        self.o.add_timer(now + float(pool.setting("connectTimeout")), "launch_timeout", launch.id)
        self.schedule_tick(now + TICK)
        try:
            config = runtime.secrets.open(pool.config)
        except Exception as exc:
            config = dict(pool.config)
            launch.extra["error"] = f"cannot decrypt the pool's secrets: {exc}"
        spec = LaunchSpec(launch_id=launch.id, pool=pool.name, workspace=pool.workspace, config=config,
                          modules=pool.modules, provides=pool.provides, accepts=pool.accepts,
                          server_url=_server_url(config, runtime.server_url), token=secret,
                          log_dir=runtime.runner.log_dir if runtime.runner else "")
        kind = pool.type
        self.o.after_commit(lambda: runtime.runner and runtime.runner.start(kind, spec))

    def _publish(self, launch: rules.LaunchState, pool: rules.PoolState | None, **extra: Any) -> None:
        event = LaunchEvent(type="launch", launch=launch.id, pool=pool.name if pool else "", state=launch.state)
        event.update(extra)  # type: ignore[typeddict-item]
        self.o.publish(WORKERS_TOPIC, event)

    def _stop(self, launch: rules.LaunchState, pool: rules.PoolState) -> None:
        """Drain and stop a launched worker (killed after the pool's drain timeout)."""
        if launch.state == "stopping":
            return
        launch.state = "stopping"
        self.db.execute(update(t.launches).where(t.launches.c.id == launch.id).values(state="stopping"))
        self._publish(launch, pool)
        runtime = self.o.pool_runtime
        handle, kind, timeout = launch.handle, pool.type, float(pool.setting("drainTimeout"))
        self.o.after_commit(lambda: runtime.runner and runtime.runner.stop(kind, handle, timeout))

    # ------------------------------------------------------------------ what the runner reports

    def launch_started(self, launch_id: str, handle: dict) -> bool:
        """The launcher started it (False: the launch has ended meanwhile; the runner stops it)."""
        launch = self.ws.launches.get(launch_id)
        if launch is None:
            return False
        launch.handle = handle
        values: dict[str, Any] = {"handle": handle, "started_at": time.time()}
        if launch.state == "launching":
            launch.state = values["state"] = "started"
        self.db.execute(update(t.launches).where(t.launches.c.id == launch_id).values(**values))
        pool = self.ws.pools.get(launch.pool_id)
        self._publish(launch, pool)
        if launch.state == "stopping" and pool is not None:  # stopped while it was being started
            launch.state = "started"
            self._stop(launch, pool)
        return True

    def launch_failed(self, launch_id: str, error: str, log_tail: str) -> None:
        self._end(launch_id, "failed", error=error, log_tail=log_tail)

    def launch_exited(self, launch_id: str, code: int | None, log_tail: str, lost: bool = False) -> None:
        launch = self.ws.launches.get(launch_id)
        if launch is None:
            return
        if launch.state in rules.STARTING:  # it never connected
            error = "gone after a server restart before connecting" if lost else \
                f"the worker exited{f' with code {code}' if code is not None else ''} before connecting"
            self._end(launch_id, "failed", error=error, log_tail=log_tail, exit_code=code)
        else:
            self._end(launch_id, "lost" if lost else "exited", log_tail=log_tail, exit_code=code)

    def _end(self, launch_id: str, state: str, *, error: str | None = None, log_tail: str = "",
             exit_code: int | None = None) -> None:
        launch = self.ws.launches.pop(launch_id, None)
        if launch is None:
            return
        pool = self.ws.pools.get(launch.pool_id)
        now = time.time()
        launch.state = state
        self.o.pool_runtime.credentials.remove(launch.secret_hash)
        self.db.execute(update(t.launches).where(t.launches.c.id == launch_id).values(
            state=state, error=error, log_tail=log_tail or None, exit_code=exit_code, ended_at=now))
        if pool is not None:
            if state == "failed":
                pool.failures += 1
                pool.last_error = (error or "failed").splitlines()[0][:300]
                pool.retry_at = now + rules.backoff(pool.failures)
                self.schedule_tick(pool.retry_at)
            self.o.needs_schedule = True
        extra: dict[str, Any] = {}
        if error:
            extra["error"] = error
        if exit_code is not None:
            extra["exit_code"] = exit_code
        self._publish(launch, pool, **extra)

    # ------------------------------------------------------------------ workers and timers

    def check_credential(self, principal: Any) -> None:
        launch = self.ws.launches.get(principal.name)
        if launch is None or launch.pool_id not in self.ws.pools:
            raise BadRequest("this launch has ended: its credential is no longer valid")

    def attach_session(self, session: Session, principal: Any) -> None:
        """A worker connected with a launch credential: it is that launch's worker, and takes
        only its pool's work with its pool's tags (whatever it says of itself)."""
        launch = self.ws.launches.get(principal.name)
        pool = self.ws.pools.get(launch.pool_id) if launch is not None else None
        if launch is None or pool is None:
            raise BadRequest("this launch has ended: its credential is no longer valid")
        if session.workspace_id != pool.workspace_id:
            raise BadRequest(f"a worker launched for pool {pool.name} works in workspace {pool.workspace} only")
        session.pool = pool.name
        session.pool_modules = tuple(pool.modules)
        session.provides, session.accepts = pool.provides, pool.accepts
        # Shipped code only if the pool says so (acceptCode) and the worker opted in (--accept-code).
        session.accepts_code = session.accepts_code and bool(pool.setting("acceptCode"))
        if launch.state in rules.STARTING or launch.session_id != session.id:
            now = time.time()
            if launch.state in rules.STARTING:
                launch.state = "connected"
            launch.session_id, launch.idle_since = session.id, now
            pool.failures, pool.retry_at, pool.last_error = 0, 0.0, None
            self.db.execute(update(t.launches).where(t.launches.c.id == launch.id).values(
                state=launch.state, session_id=session.id, connected_at=now))
            self._publish(launch, pool, session=session.id)

    def on_timer(self, kind: str, payload: Any, now: float) -> None:
        if kind == "launch_timeout":
            launch = self.ws.launches.get(payload)
            if launch is not None and launch.state in rules.STARTING:
                pool = self.ws.pools.get(launch.pool_id)
                timeout = float(pool.setting("connectTimeout")) if pool else 0.0
                handle, kind_ = launch.handle, pool.type if pool else "process"
                self._end(launch.id, "failed", error=f"no connection within {timeout:g} s")
                runtime = self.o.pool_runtime
                self.o.after_commit(lambda: runtime.runner and runtime.runner.stop(kind_, handle, 0.0))
        elif kind == "pools" and payload == self.ws.pools_tick:
            self.ws.pools_tick = None
            self.tick(now)

    def tick(self, now: float) -> None:
        """Stop idle launched workers; look again at pools whose backoff ended."""
        for launch in list(self.ws.launches.values()):
            pool = self.ws.pools.get(launch.pool_id)
            if pool is None or launch.state != "connected":
                continue
            session = self.ws.sessions.get(launch.session_id or "")
            running = len(session.running) if session is not None else 0
            if running or launch.idle_since is None:
                launch.idle_since = None if running else now
                continue
            if rules.idle(launch, running, float(pool.setting("idleTimeout")), now):
                self._stop(launch, pool)
        self.o.needs_schedule = True
        if self.ws.launches or any(p.failures for p in self.ws.pools.values()):
            self.schedule_tick(now + TICK)


def _where(handle: dict | None) -> dict | None:
    """Where a launched worker runs, as users may see it (a pid, a container, a Job)."""
    if not handle:
        return None
    return {k: v for k, v in handle.items() if k in ("pid", "container", "job", "namespace")}


def _server_url(config: dict, default: str) -> str:
    host = config.get("serverHost")
    if not host:
        return default
    return f"{'https' if config.get('serverSecure') else 'http'}://{host}/"

"""Read-only queries behind the HTTP API, the CLI and live views (run on the read pool)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from ..errors import NotFound
from . import schema as t

FINAL_KINDS = {"value", "error", "cancelled", "abandoned", "crashed", "timeout"}


def _result_dict(row: Any) -> dict | None:
    if row.kind is None:
        return None
    return {"kind": row.kind, "value": row.value, "error": row.error, "successor": row.successor_id,
            "at": row.result_at}


def _execution_state(row: Any) -> str:
    """Where an attempt is: `pending` (no worker yet), `assigned` (a worker has it, it has not
    reported starting), `running` (it started: the worker said so) or its result kind."""
    if row.kind is not None:
        return row.kind
    if row.started_at is not None:
        return "running"
    if row.assigned_at is not None:
        return "assigned"
    return "pending"


def get_run(engine: Engine, run_id: str) -> dict:
    with engine.connect() as db:
        # The feed position first: events after it may repeat what the snapshot shows (viewers
        # fold idempotently), but none that the snapshot lacks can be before it.
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
        run = db.execute(select(t.runs, t.workspaces.c.name.label("workspace"))
                         .join(t.workspaces, t.workspaces.c.id == t.runs.c.workspace_id)
                         .where(t.runs.c.id == run_id)).first()
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        steps = db.execute(select(t.steps).where(t.steps.c.run_id == run_id).order_by(t.steps.c.number)).all()
        executions = db.execute(
            select(t.executions, t.results.c.kind, t.results.c.value, t.results.c.error,
                   t.results.c.successor_id, t.results.c.created_at.label("result_at"),
                   t.sessions.c.name.label("worker"))
            .outerjoin(t.results, t.results.c.execution_id == t.executions.c.id)
            .outerjoin(t.sessions, t.sessions.c.id == t.executions.c.session_id)
            .where(t.executions.c.run_id == run_id)
            .order_by(t.executions.c.step_id, t.executions.c.attempt)).all()
        ids = [e.id for e in executions]
        children = db.execute(select(t.children).where(t.children.c.parent_id.in_(ids))).all() if ids else []
        dependencies = db.execute(select(t.dependencies).where(
            t.dependencies.c.execution_id.in_(ids))).all() if ids else []
        groups = db.execute(select(t.groups).where(t.groups.c.execution_id.in_(ids))).all() if ids else []
        child_runs = db.execute(select(t.runs.c.id, t.runs.c.parent_execution_id, t.runs.c.module,
                                       t.runs.c.target).where(t.runs.c.parent_execution_id.in_(ids))).all() \
            if ids else []
    by_step: dict[str, list[dict]] = {}
    for e in executions:
        by_step.setdefault(e.step_id, []).append({
            "id": e.id, "attempt": e.attempt, "cause": e.cause, "created_at": e.created_at,
            "execute_after": e.execute_after,
            "assigned_at": e.assigned_at, "started_at": e.started_at, "session": e.session_id,
            "worker": e.worker, "state": _execution_state(e), "result": _result_dict(e)})
    stale = _stale_steps(executions, dependencies)
    return {
        "id": run.id, "workspace": run.workspace, "module": run.module, "target": run.target,
        "parent": run.parent_execution_id, "created_at": run.created_at, "requires": run.requires,
        "memo": run.memo, "seq": seq,
        "steps": [{
            "id": s.id, "number": s.number, "module": s.module, "target": s.target, "type": s.type,
            "parent": s.parent_execution_id, "created_at": s.created_at, "arguments": s.arguments,
            "options": s.options, "cache_key": s.cache_key, "memo_key": s.memo_key, "stale": s.id in stale,
            "executions": by_step.get(s.id, [])} for s in steps],
        "children": [{"parent": c.parent_id, "child": c.child_id, "group": c.group_id, "memo": c.memo}
                     for c in children],
        "dependencies": [{"execution": d.execution_id, "dependency": d.dependency_id} for d in dependencies],
        "groups": [{"execution": g.execution_id, "group": g.group_id, "name": g.name} for g in groups],
        "child_runs": [{"id": r.id, "parent": r.parent_execution_id, "module": r.module, "target": r.target}
                       for r in child_runs],
    }


def _stale_steps(executions: list, dependencies: list) -> set[str]:
    """Steps that consumed a result which a re-run has since replaced: the dependency's chain
    ended at an attempt older than the newest attempt of its step."""
    by_id = {e.id: e for e in executions}
    latest: dict[str, int] = {}
    for e in executions:
        latest[e.step_id] = max(latest.get(e.step_id, 0), e.attempt)
    stale: set[str] = set()
    for d in dependencies:
        current = by_id.get(d.dependency_id)
        for _ in range(10000):  # along retries and suspensions; a successor in another run ends it
            if current is None or current.successor_id not in by_id:
                break
            current = by_id[current.successor_id]
        if current is not None and current.attempt < latest.get(current.step_id, 0):
            consumer = by_id.get(d.execution_id)
            if consumer is not None:
                stale.add(consumer.step_id)
    return stale


def list_runs(engine: Engine, module: str | None = None, target: str | None = None,
              limit: int = 50) -> list[dict]:
    query = (select(t.runs.c.id, t.runs.c.module, t.runs.c.target, t.runs.c.created_at,
                    t.runs.c.parent_execution_id, t.workspaces.c.name.label("workspace"))
             .join(t.workspaces, t.workspaces.c.id == t.runs.c.workspace_id)
             .order_by(t.runs.c.created_at.desc()).limit(max(1, min(limit, 1000))))
    if module:
        query = query.where(t.runs.c.module == module)
    if target:
        query = query.where(t.runs.c.target == target)
    with engine.connect() as db:
        rows = db.execute(query).all()
        out = []
        for r in rows:
            out.append({"id": r.id, "module": r.module, "target": r.target, "created_at": r.created_at,
                        "parent": r.parent_execution_id, "workspace": r.workspace,
                        "status": _run_status(db, r.id)})
    return out


def _run_status(db: Any, run_id: str) -> str:
    current = f"{run_id}:1:1"
    for _ in range(10000):
        row = db.execute(select(t.results.c.kind, t.results.c.successor_id)
                         .where(t.results.c.execution_id == current)).first()
        if row is None:
            return "running"
        if row.successor_id is None:
            return row.kind
        current = row.successor_id
    return "running"


def list_workflows(engine: Engine, workspace: str = "default") -> list[dict]:
    with engine.connect() as db:
        rows = db.execute(select(t.workflows).join(t.workspaces, t.workspaces.c.id == t.workflows.c.workspace_id)
                          .where(t.workspaces.c.name == workspace)
                          .order_by(t.workflows.c.module, t.workflows.c.name)).all()
    return [{"module": r.module, "name": r.name, "parameters": r.parameters, "options": r.options,
             "instruction": r.instruction, "updated_at": r.updated_at} for r in rows]


def list_workspaces(engine: Engine) -> list[dict]:
    with engine.connect() as db:
        rows = db.execute(select(t.workspaces).order_by(t.workspaces.c.id)).all()
    names = {r.id: r.name for r in rows}
    return [{"name": r.name, "base": names.get(r.base_id), "created_at": r.created_at} for r in rows]


def _asset_dict(row: Any) -> dict:
    entries = row.entries or []
    return {"id": row.id, "run": row.run_id, "execution": row.execution_id, "name": row.name,
            "entries": entries, "count": len(entries), "size": sum(e.get("size", 0) for e in entries),
            "created_at": row.created_at}


def get_asset(engine: Engine, asset_id: str) -> dict:
    """An asset with its entries ([{path, blob, size, metadata}]); NotFound if there is none."""
    with engine.connect() as db:
        row = db.execute(select(t.assets).where(t.assets.c.id == asset_id)).first()
    if row is None:
        raise NotFound(f"no asset {asset_id!r}")
    return _asset_dict(row)


def list_run_assets(engine: Engine, run_id: str) -> list[dict]:
    """The assets a run's executions created, oldest first (NotFound for an unknown run)."""
    with engine.connect() as db:
        if db.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
            raise NotFound(f"no run {run_id!r}")
        rows = db.execute(select(t.assets).where(t.assets.c.run_id == run_id)
                          .order_by(t.assets.c.created_at, t.assets.c.id)).all()
    return [_asset_dict(r) for r in rows]

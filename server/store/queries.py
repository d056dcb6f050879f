"""Read-only queries behind the HTTP API, the CLI and live views (run on the read pool)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Text, func, select, type_coerce

from coflux.protocol import CODE_VERSION, execution_state, run_state

from ..errors import NotFound
from . import schema as t


class RawJSON:
    """A JSON column's text as SQLite stored it, not decoded: what `get_run(raw_json=True)` gives
    for step arguments and options and result values and errors, for an encoder that writes
    the text into its output as it is (`coflux_server.http_base.encode_json`). The text is what
    SQLAlchemy's JSON type wrote, `json.dumps` of the value, so the reply reads the same as
    decoding and encoding it again would, without the cost (most of a large run's snapshot)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def decode(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text!r})"


# `get_run(view=...)`: everything (Studio, the notebook views, `runs inspect -o json`), or only
# what `coflux runs inspect` prints (its text output asks for `GET api/runs/<id>?view=inspect`).
RUN_VIEWS = ("full", "inspect")


def get_run(engine: Engine, run_id: str, *, raw_json: bool = False, view: str = "full") -> dict:
    """The run as stored: steps with their executions and results, edges, groups, child runs.

    Kept to a handful of indexed queries by run id (edges through a subquery of the run's
    executions, never a list of bound ids) and to plain rows: `coflux runs inspect` of a
    1,000-step run is mostly this function, and it is read on every snapshot and subscription.

    With `raw_json` (the HTTP route, whose reply is encoded by `encode_json`), the JSON columns
    of steps and results are `RawJSON` texts on SQLite, not decoded values. Only there: other
    drivers (psycopg) decode JSON themselves. A JSON number comes back as a number either way
    (SQLite's numeric affinity of a JSON column), as SQLAlchemy's JSON type passes it on.

    The "inspect" view has the same shape with fewer keys: steps without their number,
    creation time, arguments and keys; attempts without cause, execute_after and
    state; only the memo edges of `children`; no `dependencies` or `groups`."""
    if view not in RUN_VIEWS:
        raise ValueError(f"unknown run view {view!r}")
    full = view == "full"
    raw = raw_json and engine.dialect.name == "sqlite"
    s, e, r = t.steps.c, t.executions.c, t.results.c
    json_columns = [s.arguments, s.options, r.value, r.error]
    arguments, options, value_column, error_column = (
        [type_coerce(c, Text).label(c.name) for c in json_columns] if raw else json_columns)
    run_executions = select(e.id).where(e.run_id == run_id).scalar_subquery()
    with engine.connect() as db:
        # The feed position first: events after it may repeat what the snapshot shows (viewers
        # fold idempotently), but none that the snapshot lacks can be before it.
        seq = db.execute(select(func.max(t.events.c.seq))).scalar() or 0
        run = db.execute(select(t.runs, t.workspaces.c.name.label("workspace"))
                         .join(t.workspaces, t.workspaces.c.id == t.runs.c.workspace_id)
                         .where(t.runs.c.id == run_id)).first()
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        steps = db.execute(select(s.id, s.number, s.module, s.target, s.type, s.parent_execution_id, s.created_at,
                                  arguments, options, s.cache_key, s.memo_key)
                           .where(s.run_id == run_id).order_by(s.number)).all()
        executions = db.execute(
            select(e.id, e.step_id, e.attempt, e.cause, e.created_at, e.execute_after, e.assigned_at,
                   e.started_at, e.session_id, t.sessions.c.name, r.kind, value_column, error_column,
                   r.successor_id, r.created_at, e.code_hash)
            .outerjoin(t.results, r.execution_id == e.id)
            .outerjoin(t.sessions, t.sessions.c.id == e.session_id)
            .where(e.run_id == run_id)
            .order_by(e.step_id, e.attempt)).all()
        outcome = run_outcome(db, run_id) or _outcome(run.created_at, None, None, None)
        actions = db.execute(select(t.actions.c.action, t.actions.c.subject, t.actions.c.by)
                             .where(t.actions.c.run_id == run_id)).all()
        rerun_by = {subject: by for action, subject, by in actions if action == "rerun"}
        cancelled_by = {subject: by for action, subject, by in actions if action == "cancel"}
        children = dependencies = groups = child_runs = []
        if executions:
            c, d, g = t.children.c, t.dependencies.c, t.groups.c
            children = db.execute(select(c.parent_id, c.child_id, c.group_id, c.memo)
                                  .where(c.parent_id.in_(run_executions))).all()
            dependencies = db.execute(select(d.execution_id, d.dependency_id)
                                      .where(d.execution_id.in_(run_executions))).all()
            if full:
                groups = db.execute(select(g.execution_id, g.group_id, g.name)
                                    .where(g.execution_id.in_(run_executions))).all()
            child_runs = db.execute(select(t.runs.c.id, t.runs.c.parent_execution_id, t.runs.c.module,
                                           t.runs.c.target)
                                    .where(t.runs.c.parent_execution_id.in_(run_executions))).all()
        i = t.inputs.c  # prompts the run raised, and who answered them (indexed by run through its key)
        inputs = [{"id": row.id, "step": row.step_id, "execution": row.execution_id, "state": row.state,
                   "title": row.title, "requires": row.requires, "created_at": row.created_at, "by": row.by,
                   "responded_at": row.responded_at}
                  for row in db.execute(select(i.id, i.step_id, i.execution_id, i.state, i.title, i.requires,
                                               i.created_at, i.by, i.responded_at)
                                        .where(i.run_id == run_id).order_by(i.created_at))]
    by_step: dict[str, list[dict]] = {}
    reused = _reused_from(steps, executions) if full else {}
    for (eid, step_id, attempt, cause, created_at, execute_after, assigned_at, started_at, session_id, worker,
         kind, value, error, successor, result_at, code_hash) in executions:
        if raw:
            value = RawJSON(value) if value.__class__ is str else value
            error = RawJSON(error) if error.__class__ is str else error
        attempts = by_step.get(step_id)
        if attempts is None:
            attempts = by_step[step_id] = []
        result = None if kind is None else {"kind": kind, "value": value, "error": error, "successor": successor,
                                            "at": result_at, "by": cancelled_by.get(eid)}
        if full:
            attempts.append({
                "id": eid, "attempt": attempt, "cause": cause, "created_at": created_at,
                "execute_after": execute_after, "assigned_at": assigned_at, "started_at": started_at,
                "session": session_id, "worker": worker,
                "state": execution_state(kind, started_at, assigned_at),
                "by": rerun_by.get(eid), "result": result, "code_hash": code_hash, "reused_from": reused.get(eid)})
        else:
            attempts.append({
                "id": eid, "attempt": attempt, "created_at": created_at, "assigned_at": assigned_at,
                "started_at": started_at, "session": session_id, "worker": worker, "by": rerun_by.get(eid),
                "result": result})
    stale = _stale_steps(executions, dependencies)
    if not full:
        return {
            "id": run.id, "workspace": run.workspace, "module": run.module, "target": run.target,
            "parent": run.parent_execution_id, "created_at": run.created_at, "requires": run.requires,
            "memo": run.memo, "by": run.created_by, "seq": seq, **outcome,  # status, state, ...: run_outcomes
            "steps": [{"id": sid, "module": module, "target": target, "type": kind, "parent": parent,
                       "options": RawJSON(options) if raw and options.__class__ is str else options,
                       "stale": sid in stale, "executions": by_step.get(sid, [])}
                      for sid, _number, module, target, kind, parent, _created, _arguments, options, *_ in steps],
            "children": [{"parent": p, "child": ch, "group": gid, "memo": memo}
                         for p, ch, gid, memo in children if memo],
            "child_runs": [{"id": rid, "parent": p, "module": m, "target": tg} for rid, p, m, tg in child_runs],
            "inputs": inputs,
        }
    return {
        "id": run.id, "workspace": run.workspace, "module": run.module, "target": run.target,
        "parent": run.parent_execution_id, "created_at": run.created_at, "requires": run.requires,
        "memo": run.memo, "by": run.created_by, "seq": seq, **outcome,  # status, state, ...: run_outcomes
        "steps": [{
            "id": sid, "number": number, "module": module, "target": target, "type": kind, "parent": parent,
            "created_at": created_at,
            "arguments": RawJSON(arguments) if raw and arguments.__class__ is str else arguments,
            "options": RawJSON(options) if raw and options.__class__ is str else options,
            "cache_key": cache_key, "memo_key": memo_key, "stale": sid in stale,
            "executions": by_step.get(sid, [])}
            for sid, number, module, target, kind, parent, created_at, arguments, options, cache_key, memo_key
            in steps],
        "children": [{"parent": p, "child": ch, "group": gid, "memo": memo} for p, ch, gid, memo in children],
        "dependencies": [{"execution": x, "dependency": dep} for x, dep in dependencies],
        "groups": [{"execution": x, "group": gid, "name": name} for x, gid, name in groups],
        "child_runs": [{"id": rid, "parent": p, "module": m, "target": tg} for rid, p, m, tg in child_runs],
        "inputs": inputs,
    }


def _reused_from(steps: list, executions: list) -> dict[str, int]:
    """Executions that a resumed attempt took from an earlier one (resume from failure): a
    `cached` result whose successor is a child of an earlier attempt of the same parent step.
    Execution id -> that earlier attempt's number ("reused from attempt 1")."""
    parent_of = {row[0]: row[5] for row in steps}  # step -> the execution that submitted it
    out: dict[str, int] = {}
    for row in executions:
        if row[10] != "cached" or row[13] is None:
            continue
        own_parent = parent_of.get(row[1])
        other_parent = parent_of.get(row[13].rpartition(":")[0])
        if own_parent and other_parent and own_parent != other_parent \
                and own_parent.rpartition(":")[0] == other_parent.rpartition(":")[0]:
            out[row[0]] = int(other_parent.rpartition(":")[2])
    return out


def _stale_steps(executions: list, dependencies: list) -> set[str]:
    """Steps that consumed a result which a re-run has since replaced: along the dependency's
    chain, a step was left at an attempt older than its newest (the chain's end, or a step whose
    result was `cached` from another step of the run, as a resumed attempt's reused calls are).
    `executions` are get_run's rows (id, step, attempt, ..., successor at index 13);
    `dependencies` (execution, dependency)."""
    if not dependencies:
        return set()
    by_id = {row[0]: row for row in executions}
    latest: dict[str, int] = {}
    for row in executions:
        latest[row[1]] = max(latest.get(row[1], 0), row[2])
    stale: set[str] = set()
    for consumer_id, dependency_id in dependencies:
        current = by_id.get(dependency_id)
        reached: dict[str, int] = {}  # step -> the newest attempt of it the chain passed
        for _ in range(10000):  # along retries and suspensions; a successor in another run ends it
            if current is None:
                break
            reached[current[1]] = max(reached.get(current[1], 0), current[2])
            if current[13] not in by_id:
                break
            current = by_id[current[13]]
        if any(attempt < latest.get(step, 0) for step, attempt in reached.items()):
            consumer = by_id.get(consumer_id)
            if consumer is not None:
                stale.add(consumer[1])
    return stale


def list_runs(engine: Engine, module: str | None = None, target: str | None = None,
              limit: int = 50) -> list[dict]:
    """The newest runs, each with its outcome (`run_outcomes`): a few queries for the whole page."""
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
        outcomes = run_outcomes(db, [r.id for r in rows])
    return [{"id": r.id, "module": r.module, "target": r.target, "created_at": r.created_at,
             "parent": r.parent_execution_id, "workspace": r.workspace,
             **(outcomes.get(r.id) or _outcome(r.created_at, None, None, None))} for r in rows]


# ------------------------------------------------------------------ a run's outcome (the one definition)

RUNNING = "running"  # the status of a run whose outcome is not known yet (`run_state` says running)


def run_outcomes(db: Any, run_ids: list[str]) -> dict[str, dict]:
    """Each run's outcome, as every surface shows it: the runs list and run page of Studio, the
    notebook views and the JupyterLab panel (through the run payloads and the feed's `run_result`
    events, which the orchestrator publishes from here), `coflux runs list|inspect|result` and
    `Run.result()` (which wait on the `execution` given here).

    A run's outcome is the latest attempt of its root step (`R:1`), followed along successors
    (retries, suspensions, cached and deferred links, ...) to the execution that holds it: that
    execution's result kind once it has one (`value`, `error`, `abandoned`, ...), else `running`.
    So a re-run of the root step that succeeds makes the run succeed, and one in flight makes it
    running again, whatever earlier attempts ended with. `state` is the status as users filter by
    it (coflux.protocol.run_state). The run spans `started_at` (its creation) to `finished_at`
    (when its outcome was recorded: the latest result along the chain); `duration` is the span,
    None while it runs. `execution` is the root step's latest attempt.

    One query for any number of runs, plus one per link of the longest chain that leaves a
    root step's latest attempt (a cached or deferred root); none per step."""
    if not run_ids:
        return {}
    e, r = t.executions.c, t.results.c
    roots = [f"{run_id}:1" for run_id in run_ids]
    latest: dict[str, Any] = {}
    for row in db.execute(select(e.run_id, t.runs.c.created_at, e.id, e.attempt, r.kind, r.successor_id,
                                 r.created_at.label("at"))
                          .join(t.runs, t.runs.c.id == e.run_id)
                          .outerjoin(t.results, r.execution_id == e.id)
                          .where(e.step_id.in_(roots) if len(roots) > 1 else e.step_id == roots[0])):
        current = latest.get(row.run_id)
        if current is None or row.attempt > current.attempt:
            latest[row.run_id] = row
    out: dict[str, dict] = {}
    following: dict[str, str] = {}  # run id -> the successor its chain reached
    ended: dict[str, float] = {}  # run id -> the latest result time along its chain
    for run_id, row in latest.items():
        if row.kind is None:
            out[run_id] = _outcome(row.created_at, RUNNING, None, row.id)
        elif row.successor_id is None:
            out[run_id] = _outcome(row.created_at, row.kind, row.at, row.id)
        else:
            following[run_id], ended[run_id] = row.successor_id, row.at
    seen: dict[str, set[str]] = {run_id: set() for run_id in following}
    while following:
        found = {x.execution_id: x for x in db.execute(
            select(r.execution_id, r.kind, r.successor_id, r.created_at)
            .where(r.execution_id.in_(set(following.values()))))}
        step: dict[str, str] = {}
        for run_id, current in following.items():
            row, root = found.get(current), latest[run_id]
            if row is None or current in seen[run_id]:  # no result yet (or a loop, which no chain has)
                out[run_id] = _outcome(root.created_at, RUNNING, None, root.id)
                continue
            seen[run_id].add(current)
            ended[run_id] = max(ended[run_id], row.created_at)
            if row.successor_id is None:
                out[run_id] = _outcome(root.created_at, row.kind, ended[run_id], root.id)
            else:
                step[run_id] = row.successor_id
        following = step
    return out


def run_outcome(db: Any, run_id: str) -> dict | None:
    """`run_outcomes` of one run; None when there is no such run."""
    return run_outcomes(db, [run_id]).get(run_id)


def _outcome(created_at: float, status: str | None, finished_at: float | None, execution: str | None) -> dict:
    status = status or RUNNING
    if status == RUNNING:
        finished_at = None
    return {"status": status, "state": run_state(status), "started_at": created_at, "finished_at": finished_at,
            "duration": None if finished_at is None else max(0.0, finished_at - created_at),
            "execution": execution}


def list_workflows(engine: Engine, workspace: str = "default") -> list[dict]:
    with engine.connect() as db:
        rows = db.execute(select(t.workflows).join(t.workspaces, t.workspaces.c.id == t.workflows.c.workspace_id)
                          .where(t.workspaces.c.name == workspace)
                          .order_by(t.workflows.c.module, t.workflows.c.name)).all()
    return [{"module": r.module, "name": r.name, "parameters": r.parameters, "options": r.options,
             "instruction": r.instruction, "updated_at": r.updated_at} for r in rows]


def run_workspace(engine: Engine, run_id: str) -> str:
    """The name of the workspace a run belongs to (a scoped token's check)."""
    with engine.connect() as db:
        name = db.execute(select(t.workspaces.c.name).join(t.runs, t.runs.c.workspace_id == t.workspaces.c.id)
                          .where(t.runs.c.id == run_id)).scalar()
    if name is None:
        raise NotFound(f"no run {run_id!r}")
    return name


def hosts_left(engine: Engine, workspace: str = "default") -> dict[tuple[str, str], float]:
    """(module, name) -> when the last ended worker session of the workspace that hosted it ended."""
    left: dict[tuple[str, str], float] = {}
    with engine.connect() as db:
        rows = db.execute(select(t.sessions.c.targets, t.sessions.c.ended_at)
                          .join(t.workspaces, t.workspaces.c.id == t.sessions.c.workspace_id)
                          .where(t.workspaces.c.name == workspace, t.sessions.c.ended_at.is_not(None))).all()
    for targets, ended_at in rows:
        for module, name, _kind in targets or []:
            if ended_at > left.get((module, name), 0.0):
                left[(module, name)] = ended_at
    return left


def list_workspaces(engine: Engine, archived: bool = False) -> list[dict]:
    """The workspaces with their state (active, paused); archived ones only with `archived`."""
    with engine.connect() as db:
        rows = db.execute(select(t.workspaces).order_by(t.workspaces.c.id)).all()
    names = {r.id: r.name for r in rows}
    return [{"name": r.name, "base": names.get(r.base_id), "created_at": r.created_at,
             "state": "archived" if r.archived_at is not None else "paused" if r.paused_at is not None else "active"}
            for r in rows if archived or r.archived_at is None]


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


CODE_HISTORY_SCAN = 200  # earlier cached steps of the target looked at (newest first)


def code_history(engine: Engine, step_id: str) -> dict:
    """What a step panel says of a step's code: the hash its latest attempt ran with, its module
    and target (the handler adds the code a connected worker has for them now) and, for a
    step cached by code (`cf.Cache(version=cf.CODE)`) that ran, the newest earlier call of the
    same target with the same cached arguments that ran other code ("code changed since R:n").
    Only cached steps are scanned (the partial cache-key index), newest first, a bounded few."""
    s, e = t.steps.c, t.executions.c
    with engine.connect() as db:
        step = db.execute(select(s.id, s.module, s.target, s.arguments, s.options, s.created_at,
                                 t.runs.c.workspace_id, t.runs.c.origin_session_id)
                          .join(t.runs, t.runs.c.id == s.run_id).where(s.id == step_id)).first()
        if step is None:
            raise NotFound(f"no step {step_id!r}")
        code_hash = db.execute(select(e.code_hash).where(e.step_id == step_id)
                               .order_by(e.attempt.desc()).limit(1)).scalar()
        cache = (step.options or {}).get("cache") or {}
        out: dict = {"step": step_id, "module": step.module, "target": step.target, "code_hash": code_hash,
                     "by_code": cache.get("version") == CODE_VERSION, "changed_since": None,
                     # where to look for the code as it is now (the handler asks the orchestrator)
                     "_workspace_id": step.workspace_id, "_origin_session": step.origin_session_id}
        if not out["by_code"] or not code_hash:
            return out
        rows = db.execute(
            select(s.id, s.arguments, s.options, e.id.label("execution"), e.code_hash)
            .join(t.executions, e.step_id == s.id)
            .where(s.cache_key.isnot(None), s.module == step.module, s.target == step.target,
                   s.created_at < step.created_at, e.code_hash.isnot(None), e.code_hash != code_hash)
            .order_by(s.created_at.desc(), e.attempt.desc()).limit(CODE_HISTORY_SCAN)).all()
    params = cache.get("params")
    selected = _selected(step.arguments, params)
    for row in rows:
        if (row.options or {}).get("cache", {}).get("params") == params and \
                _selected(row.arguments, params) == selected:
            out["changed_since"] = {"step": row.id, "execution": row.execution, "code_hash": row.code_hash}
            break
    return out


def _selected(arguments: list, params: list | None) -> list:
    return arguments if params is None else [arguments[i] for i in params if 0 <= i < len(arguments)]

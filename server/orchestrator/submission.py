"""Submitting work: new runs, child steps (tasks and spawned workflows) and memo hits."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, select

from coflux.protocol import (
    MAX_IDEMPOTENCY_KEY,
    RUNS_TOPIC,
    AttemptEvent,
    ChildRunEvent,
    GroupEvent,
    MemoEvent,
    RunEvent,
    StepEvent,
    run_topic,
)

from ..errors import BadRequest, NotFound
from ..ids import random_id, run_of
from ..store import schema as t
from . import limits
from .arguments import check_arguments
from .binding import bind_arguments
from .component import Component
from .matching import merge_requires
from .model import Peer, Pending, RunInfo, Waiter
from .rows import pending_from_row, pending_query
from .rules import keys


class _Row:
    """Attribute access over a dict, to build a RunInfo from a row we just inserted."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


def _wire_values(values: Any, what: str) -> list:
    """Arguments travel as wire values ({"v": data, "refs"?: [...]}); anything else is refused
    here rather than failing later inside a worker."""
    if not isinstance(values, list):
        raise BadRequest(f"{what} must be a list of values")
    for i, value in enumerate(values):
        if not isinstance(value, dict) or "v" not in value or not isinstance(value.get("refs", []), list):
            raise BadRequest(f"{what}[{i}] is not a wire value (expected {{\"v\": ...}}): {str(value)[:100]}")
    return values


def _code_hash(params: dict) -> str | None:
    """The code hash a submitter sent (coflux/codehash.py: sha256 hex), if any; for code shipped
    by value without one, the hash the shipped code carries (the code the step runs)."""
    given = limits.text(params.get("code_hash"), "code_hash", maximum=64)
    return given if given is not None else limits.shipped_code_hash(params.get("options"))


def _effective_memo(options: dict, run: RunInfo, kind: str) -> Any:
    """The step's memo setting: its own, else the run's default (`@cf.workflow(memo=True)`)."""
    memo = options.get("memo")
    if memo is None and run.memo and kind == "task":
        return True
    return memo or None


class _Unregistered:
    parameters: list = []
    options: dict = {}


_UNREGISTERED = _Unregistered()


class Submission(Component):
    def on_submit(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        module, target = str(params["module"]), str(params["target"])
        kind = params.get("type", "task")
        if kind not in ("workflow", "task"):
            raise BadRequest(f"type must be 'workflow' or 'task', not {kind!r}")
        args = _wire_values(params.get("args", []), "args")
        options = limits.options(params.get("options"))
        parent_id = params.get("parent")
        if parent_id is None:
            result = self._submit_run(peer, params, module, target, args, options, _code_hash(params))
        else:
            result = self._submit_child(peer, params, str(parent_id), module, target, kind, args, options,
                                        code_hash=_code_hash(params))
        self.o.reply(peer, request_id, result)

    def on_call(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Submit a child and wait for its outcome in one round trip (what `target(...)` does)."""
        kind = params.get("type", "task")
        if kind not in ("workflow", "task"):
            raise BadRequest(f"type must be 'workflow' or 'task', not {kind!r}")
        submitted = self._submit_child(peer, params, str(params["parent"]), str(params["module"]),
                                       str(params["target"]), kind,
                                       _wire_values(params.get("args", []), "args"),
                                       limits.options(params.get("options")), watch=False,
                                       code_hash=_code_hash(params))
        self.o.waiters.wait(peer, request_id, submitted["execution"], str(params["parent"]), None,
                   extra={"execution": submitted["execution"]})

    def on_group(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        group_id = limits.integer(params.get("group"), "group")
        execution_id = str(params["execution"])[:70]
        name = None if params.get("name") is None else str(params["name"])[:300]
        self.w.insert_ignore(t.groups, dict(execution_id=execution_id, group_id=group_id, name=name))
        self.o.publish(run_topic(run_of(execution_id)),
                      GroupEvent(type="group", execution=execution_id, group=group_id, name=name))
        self.o.reply(peer, request_id, {"ok": True})

    # ----------------------------------------------------------------- runs

    def _submit_run(self, peer: Peer | None, params: dict, module: str, target: str, args: list,
                    options: dict, code_hash: str | None = None) -> dict:
        limits.run_options(options)  # before anything is looked up or recorded
        workspace_id = self.o.workspace_id(params.get("workspace") or "default")
        if workspace_id in self.ws.archived_workspaces:
            raise BadRequest(f"workspace {params.get('workspace') or 'default'!r} is archived: it takes no new runs")
        workflow = self.db.execute(select(t.workflows).where(and_(
            t.workflows.c.workspace_id.in_(self.o.workspace_lineage(workspace_id)), t.workflows.c.module == module,
            t.workflows.c.name == target))).first()
        if workflow is None and options.get("code") is not None:
            # Its code travels with it (shipped by value): no worker need have registered it; a
            # worker that accepts code runs it (positional arguments only: no parameters known).
            workflow = _UNREGISTERED
            if params.get("kwargs"):
                raise BadRequest(f"{module}/{target} is shipped code no worker registered: pass its arguments by position")
        if workflow is None and self.o.pools.hosts_module(workspace_id, module):
            # Not registered yet, but a pool launches workers for its module: the worker that
            # registers it runs it (positional arguments only: the parameters are not known yet).
            workflow = _UNREGISTERED
            if params.get("kwargs"):
                raise BadRequest(f"{module}/{target} is not registered yet (its pool has not launched a worker): "
                                 "pass its arguments by position")
        if workflow is None:
            known = self.db.execute(select(t.workflows.c.module, t.workflows.c.name).where(
                t.workflows.c.workspace_id == workspace_id).order_by(t.workflows.c.module,
                                                                     t.workflows.c.name)).all()
            listing = ", ".join(f"{m}/{n}" for m, n in known[:30]) or "none (start a worker for the module)"
            raise NotFound(f"unknown workflow {module}/{target}; registered workflows: {listing}")
        kwargs = params.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise BadRequest("kwargs must be an object")
        _wire_values(list(kwargs.values()), "kwargs")
        bound = list(args) if workflow is _UNREGISTERED else bind_arguments(target, workflow.parameters, args, kwargs)
        if workflow is not _UNREGISTERED:
            check_arguments(f"{module}/{target}", workflow.parameters, args, kwargs)  # before anything is recorded
        # The caller's options over the workflow's, key by key (null clears one): they are the
        # root step's, and its requires and memo the run's.
        merged = limits.options({name: value for name, value in {**(workflow.options or {}), **options}.items()
                                 if value is not None})
        key = limits.text(params.get("idempotency_key"), "idempotency_key", maximum=MAX_IDEMPOTENCY_KEY)
        if key:
            self.w.flush()
            existing = self.db.execute(select(t.runs.c.id).where(and_(
                t.runs.c.workspace_id == workspace_id, t.runs.c.idempotency_key == str(key)))).scalar()
            if existing:
                return {"run": existing, "execution": f"{existing}:1:1", "module": module, "target": target,
                        "existing": True}
        origin = self.ws.peer_sessions.get(peer) if peer is not None else None
        by = params.get("by")
        run_id, execution_id = self.create_run(workspace_id, module, target, bound, merged,
                                               parent_execution_id=None, idempotency_key=key,
                                               origin_session_id=origin, by=str(by)[:200] if by else None,
                                               code_hash=code_hash)
        return {"run": run_id, "execution": execution_id, "module": module, "target": target}

    def create_run(self, workspace_id: int, module: str, target: str, args: list, options: dict, *,
                   parent_execution_id: str | None, idempotency_key: str | None,
                   origin_session_id: str | None, by: str | None = None,
                   code_hash: str | None = None) -> tuple[str, str]:
        now = time.time()
        run_id = random_id("R")
        while run_id in self.ws.runs:
            run_id = random_id("R")
        requires = {k: v for k, v in (options.get("requires") or {}).items() if v} or None  # [] removes a key
        row = dict(id=run_id, workspace_id=workspace_id, module=module, target=target,
                   parent_execution_id=parent_execution_id, idempotency_key=idempotency_key,
                   requires=requires, memo=bool(options.get("memo")), origin_session_id=origin_session_id,
                   created_at=now, created_by=by)
        self.w.insert(t.runs, row)
        info = self.ws.runs[run_id] = RunInfo(_Row(row), 1)
        execution_id = self._create_step(info, parent_execution_id, module, target, "workflow", args, options,
                                         code_hash=code_hash)
        self.o.publish(RUNS_TOPIC, RunEvent(type="run", run=run_id, module=module, target=target,
                                           workspace_id=workspace_id, parent=parent_execution_id, created_at=now))
        if parent_execution_id is not None:  # the parent run's graph links to the child run
            self.o.publish(run_topic(run_of(parent_execution_id)), ChildRunEvent(
                type="child_run", run=run_id, parent=parent_execution_id, module=module, target=target))
        return run_id, execution_id

    # ----------------------------------------------------------------- child steps

    def _submit_child(self, peer: Peer | None, params: dict, parent_id: str, module: str, target: str,
                      kind: str, args: list, options: dict, *, watch: bool = True,
                      code_hash: str | None = None) -> dict:
        if parent_id not in self.ws.active:
            raise BadRequest(f"execution {parent_id} is not running; it cannot submit work")
        if peer is not None and self.ws.peer_sessions.get(peer) != self.ws.active[parent_id]:
            raise BadRequest(f"execution {parent_id} does not run on this connection; it cannot submit work")
        key = limits.text(params.get("key"), "key", maximum=limits.MAX_KEY)
        group_id = limits.integer(params.get("group"), "group", allow_none=True)
        if key and params.get("resent"):
            found = self._resubmitted(peer, parent_id, key, watch)
            if found is not None:
                return {**found, "module": module, "target": target}
        run = self.o.run_info(run_of(parent_id))
        parent_workspace = self.ws.assigned[parent_id].workspace_id if parent_id in self.ws.assigned else run.workspace_id
        memo = _effective_memo(options, run, kind)
        memo_key = keys.memo_key(module, target, memo, args) if memo else None
        if memo_key is not None:
            hit = self._memo_hit(run.id, memo_key, parent_workspace)
            if hit is not None:
                self.w.insert_ignore(t.children, dict(parent_id=parent_id, child_id=hit, group_id=group_id,
                                                      memo=True, created_at=time.time()))
                self.o.publish(run_topic(run.id), MemoEvent(type="memo", parent=parent_id, execution=hit))
                if watch and peer is not None:
                    self._watch(peer, parent_id, hit)
                return {"execution": hit, "module": module, "target": target, "memoised": True}
        if kind == "workflow":
            execution_id = self._create_step(run, parent_id, module, target, "workflow", args, options,
                                             group_id=group_id, request_key=key, memo_key=memo_key, pend=False,
                                             workspace_id=parent_workspace, code_hash=code_hash)
            _, child_execution = self.create_run(
                parent_workspace, module, target, args, options, parent_execution_id=parent_id,
                idempotency_key=None, origin_session_id=run.origin_session_id, code_hash=code_hash)
            self.o.outcomes.record_result(execution_id, "spawned", successor=child_execution)
        else:
            execution_id = self._create_step(run, parent_id, module, target, "task", args, options,
                                             group_id=group_id, request_key=key, memo_key=memo_key,
                                             workspace_id=parent_workspace, code_hash=code_hash)
        if watch and peer is not None:
            self._watch(peer, parent_id, execution_id)
        return {"execution": execution_id, "module": module, "target": target}

    def _resubmitted(self, peer: Peer | None, parent_id: str, key: str, watch: bool) -> dict | None:
        """A re-sent submit or call (after a reconnect, or a `retry` from a server that rolled
        back a batch) whose step exists: it is answered with the step's latest attempt (a retry
        or re-run may have followed the first), and nothing new is created. Only re-sent
        requests pay for this lookup."""
        self.w.flush()
        row = self.db.execute(
            select(t.executions.c.id, t.steps.c.parent_execution_id)
            .join(t.steps, t.steps.c.id == t.executions.c.step_id)
            .where(t.steps.c.request_key == key)
            .order_by(t.executions.c.attempt.desc()).limit(1)).first()
        if row is None:
            return None
        if row.parent_execution_id != parent_id:
            raise BadRequest(f"key {key!r} belongs to a step of another execution")
        if watch and peer is not None:
            self._watch(peer, parent_id, row.id)
        return {"execution": row.id}

    def _memo_hit(self, run_id: str, memo_key: str, workspace_id: int) -> str | None:
        """The latest execution in the run with this memo key that is pending or succeeded."""
        self.w.flush()
        rows = self.db.execute(
            select(t.executions.c.id, t.executions.c.workspace_id)
            .join(t.steps, t.steps.c.id == t.executions.c.step_id)
            .where(and_(t.steps.c.run_id == run_id, t.steps.c.memo_key == memo_key))
            .order_by(t.executions.c.created_at.desc(), t.executions.c.attempt.desc())).all()
        lineage = self.o.workspace_lineage(workspace_id)
        for row in rows:
            if row.workspace_id not in lineage:
                continue
            status, _, result = self.o.follow(row.id)
            if status == "pending" or result[0] == "value":
                return row.id
        return None

    def _watch(self, peer: Peer, parent_id: str, execution_id: str) -> None:
        """Push the child's outcome to its parent when it resolves, so `.result()` is local."""
        waiter = Waiter(peer=peer, request_id=None, push=(parent_id, execution_id))
        status, tail, result = self.o.follow(execution_id)
        if status == "final":
            self.o.waiters.answer(waiter, self.o.waiters.wire_outcome(tail, result))
            return
        self.ws.waiters.setdefault(tail, []).append(waiter)
        self.ws.peer_waiters.setdefault(peer, set()).add(waiter)

    def _create_step(self, run: RunInfo, parent_id: str | None, module: str, target: str, kind: str,
                     args: list, options: dict, *, group_id: int | None = None, request_key: str | None = None,
                     memo_key: str | None = None, pend: bool = True, workspace_id: int | None = None,
                     code_hash: str | None = None) -> str:
        now = time.time()
        number = run.next_number
        run.next_number += 1
        step_id = f"{run.id}:{number}"
        execution_id = f"{step_id}:1"
        cache = options.get("cache")
        cache_key = keys.cache_key(module, target, cache, args, code_hash) if cache else None
        defer = options.get("defer")
        defer_key = keys.defer_key(module, target, defer, args) if defer else None
        delay = limits.seconds(options.get("delay") or 0, "options.delay")
        execute_after = now + delay if delay > 0 else None
        workspace_id = run.workspace_id if workspace_id is None else workspace_id
        self.w.insert(t.steps, dict(
            id=step_id, run_id=run.id, number=number, parent_execution_id=parent_id, module=module,
            target=target, type=kind, arguments=args, options=options, cache_key=cache_key, memo_key=memo_key,
            defer_key=defer_key, request_key=request_key, created_at=now))
        self.w.insert(t.executions, dict(
            id=execution_id, step_id=step_id, run_id=run.id, attempt=1, cause=None, workspace_id=workspace_id,
            created_at=now, execute_after=execute_after, session_id=None, assigned_at=None, started_at=None,
            assignment=None, code_hash=code_hash))
        if parent_id is not None:
            self.w.insert_ignore(t.children, dict(parent_id=parent_id, child_id=execution_id, group_id=group_id,
                                                  memo=False, created_at=now))
        self.o.publish(run_topic(run.id), StepEvent(
            type="step", step=step_id, number=number, execution=execution_id, parent=parent_id, module=module,
            target=target, kind=kind, created_at=now, execute_after=execute_after, group=group_id))
        if pend:
            self.o.queue.enqueue(Pending(
                id=execution_id, step_id=step_id, run_id=run.id, module=module, target=target, type=kind,
                workspace_id=workspace_id, execute_after=execute_after or 0.0, arguments=args, options=options,
                requires=merge_requires(run.requires, options.get("requires")),
                origin_session_id=run.origin_session_id, cache_key=cache_key, defer_key=defer_key,
                parent_id=parent_id, code_hash=code_hash))
        return execution_id

    def new_attempt(self, previous: Pending, cause: str, *, execute_after: float | None, force: bool = False,
                     after: list[str] | None = None, workspace_id: int | None = None, pend: bool = True,
                     code_hash: str | None = None) -> str:
        """The next attempt of a step (retry, recurrence, suspension, re-run, resume); `previous`
        is its latest attempt (a step has at most one live attempt). `code_hash`: the code the
        new attempt runs, when a re-run says (else the previous attempt's)."""
        code_hash = previous.code_hash if code_hash is None else code_hash
        now = time.time()
        attempt = previous.attempt + 1
        execution_id = f"{previous.step_id}:{attempt}"
        workspace_id = previous.workspace_id if workspace_id is None else workspace_id
        self.w.insert(t.executions, dict(
            id=execution_id, step_id=previous.step_id, run_id=previous.run_id, attempt=attempt, cause=cause,
            workspace_id=workspace_id, created_at=now, execute_after=execute_after, session_id=None,
            assigned_at=None, started_at=None, assignment=None, code_hash=code_hash))
        self.o.publish(run_topic(previous.run_id), AttemptEvent(
            type="attempt", step=previous.step_id, execution=execution_id, attempt=attempt, cause=cause,
            created_at=now, execute_after=execute_after))
        if not pend:
            return execution_id
        self.o.queue.enqueue(Pending(
            id=execution_id, step_id=previous.step_id, run_id=previous.run_id, module=previous.module,
            target=previous.target, type=previous.type, workspace_id=workspace_id,
            execute_after=execute_after or 0.0, arguments=previous.arguments, options=previous.options,
            requires=previous.requires, origin_session_id=previous.origin_session_id, attempt=attempt,
            cause=cause, cache_key=previous.cache_key, defer_key=None, force=force, after=after,
            parent_id=previous.parent_id, code_hash=code_hash))
        return execution_id

    def pending_of(self, execution_id: str) -> Pending:
        """The Pending description of an execution (from memory, else rebuilt from the database)."""
        pending = self.ws.pending_by_id.get(execution_id) or self.ws.assigned.get(execution_id)
        if pending is not None:
            return pending
        self.w.flush()
        row = self.db.execute(pending_query().where(t.executions.c.id == execution_id)).first()
        if row is None:
            raise NotFound(f"no execution {execution_id!r}")
        return pending_from_row(row)

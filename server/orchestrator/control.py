"""Changing the course of a run: cancel, suspend, re-run a step; workspaces."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from sqlalchemy import and_, select, update

from coflux.protocol import RUNS_TOPIC, RerunEvent, WorkspaceEvent, run_topic

from ..errors import BadRequest, NotFound
from ..ids import is_input_id
from ..store import queries
from ..store import schema as t
from . import limits
from .component import Component
from .model import Peer


class Control(Component):
    # ----------------------------------------------------------------- cancel

    def on_cancel(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Cancel an execution or an input, or with `run` (and no `execution`) the run: its root
        step's latest attempt; or with `executions`, several executions and inputs in one transaction."""
        if isinstance(params.get("executions"), list):
            ids = [str(e) for e in params["executions"]]
            for handle_id in ids:  # all known, or nothing is cancelled
                if not self.o.execution_exists(handle_id):
                    raise NotFound(f"no execution or input {handle_id!r}")
            cancelled = [c for handle_id in ids for c in self._cancel_one(handle_id)]
            self.o.reply(peer, request_id, {"cancelled": cancelled})
            return
        if params.get("execution") is None and params.get("run") is not None:
            execution_id = self.o.outcomes.run_execution(str(params["run"]))
        else:
            execution_id = str(params["execution"])
        if not self.o.execution_exists(execution_id):
            raise NotFound(f"no execution {execution_id!r}")
        cancelled = self._cancel_one(execution_id)
        for ended in cancelled:
            self.record_action("cancel", ended, params.get("by"))
        self.o.reply(peer, request_id, {"cancelled": cancelled})

    def _cancel_one(self, handle_id: str) -> list[str]:
        if is_input_id(handle_id):
            return self.o.inputs.cancel(handle_id)
        return self.cancel(handle_id)

    def record_action(self, action: str, subject: str, by: Any) -> None:
        """Who did `action` to `subject` (an execution, an input), shown with the run: the
        principal's name the request came with (`by`, set by the server's handlers)."""
        if by:
            self.w.insert(t.actions, {"run_id": subject.split(":", 1)[0], "action": action, "subject": subject,
                                      "by": str(by)[:200], "at": time.time()})

    def cancel(self, execution_id: str) -> list[str]:
        """Cancel the execution (following its chain to the attempt that is live) and every
        unfinished descendant, child runs included. Returns what was cancelled."""
        cancelled: list[str] = []
        todo = [execution_id]
        seen: set[str] = set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            chain = self._chain(current)
            tail = chain[-1]
            if self.o.result_of(tail) is None:
                self._stop(tail, "cancelled")
                cancelled.append(tail)
            todo.extend(self._descendants(chain))
        if cancelled:  # their prompts go too: nobody waits for those answers any more
            self.o.inputs.cancel_of_steps({c.rsplit(":", 1)[0] for c in cancelled})
        return cancelled

    def _chain(self, execution_id: str) -> list[str]:
        """The attempts that followed this execution, and spawned child runs; not the executions a
        `cached` or `deferred` result points at, which belong to other steps."""
        chain = [execution_id]
        while True:
            result = self.o.result_of(chain[-1])
            if result is None or result[3] is None or result[0] in ("cached", "deferred") or len(chain) > 10000:
                return chain
            chain.append(result[3])

    def _descendants(self, chain: list[str]) -> list[str]:
        """Children (not memo links, which belong to another parent) and child runs' roots."""
        self.w.flush()
        children = self.db.execute(select(t.children.c.child_id).where(and_(
            t.children.c.parent_id.in_(chain), t.children.c.memo.is_(False)))).scalars().all()
        runs = self.db.execute(select(t.runs.c.id).where(t.runs.c.parent_execution_id.in_(chain))).scalars().all()
        # A child run's root is its root step's latest attempt (a re-run of it replaces the first).
        roots = queries.run_outcomes(self.db, list(runs)) if runs else {}
        return list(children) + [roots[run_id]["execution"] for run_id in runs
                                 if run_id in roots and roots[run_id]["execution"]]

    def cancel_descendants(self, execution_id: str) -> None:
        for child in self._descendants([execution_id]):
            self.cancel(child)

    def _stop(self, execution_id: str, kind: str, successor: str | None = None) -> None:
        """End an unfinished execution now: unqueue it, or abort it on its worker."""
        pending = self.ws.pending_by_id.get(execution_id)
        if pending is not None:
            self.o.queue.unqueue(pending)
        pending = pending or self.ws.assigned.get(execution_id)
        if pending is not None and pending.cache_key is not None:
            self.o.queue.track_cached_result(pending, False)
        session = self.o.workers.release_slot(execution_id)
        if session is not None and session.peer is not None:
            self.o.send(session.peer, {"op": "abort", "execution": execution_id, "reason": kind})
        self.o.outcomes.record_result(execution_id, kind, successor=successor)

    # ----------------------------------------------------------------- suspend

    def suspend(self, pending: Any, execute_after: float | None, after: list[str] | None) -> None:
        """The execution asked to stop and start again later (from the top), after a delay or once
        one of the executions it was waiting on resolves. Its worker slot is free meanwhile."""
        successor = self.o.submission.new_attempt(pending, "suspend", execute_after=execute_after, after=after)
        self.o.outcomes.record_result(pending.id, "suspended", successor=successor)

    # ----------------------------------------------------------------- re-run

    def on_rerun(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        step_id = str(params["step"])
        code_hash = limits.text(params.get("code_hash"), "code_hash", maximum=64)
        by = params.get("by")
        if params.get("from_failure"):
            if params.get("workspace") is not None:
                raise BadRequest("a resume runs in the step's own workspace (no workspace with from_failure)")
            rerun = self.o.resumption.resume(step_id, code_hash, by=by)
        else:
            code = params.get("code")
            if code is not None:
                limits.options({"code": code})
                code_hash = code_hash or limits.shipped_code_hash({"code": code})
            rerun = self.rerun(step_id, params.get("workspace"), code_hash=code_hash, code=code, by=by)
        self.record_action("rerun", rerun["execution"], by)
        self.o.reply(peer, request_id, rerun)

    def rerun(self, step_id: str, workspace: str | None = None, *, cause: str = "rerun",
              code_hash: str | None = None, code: dict | None = None, by: str | None = None) -> dict:
        """A new attempt of the step that ignores cache and memo; what still runs for the step is
        cancelled and its waiters move to the new attempt; the rest of the run stays as it was.
        `code_hash`: the code the new attempt runs, when the re-runner knows it (a notebook that
        re-runs a step with a cell's current definition)."""
        if cause != "resume":
            self.o.resumption.forget(step_id)  # a plain re-run computes its children afresh
        self.w.flush()
        rows = self.db.execute(select(t.executions.c.id, t.executions.c.workspace_id)
                               .where(t.executions.c.step_id == step_id)
                               .order_by(t.executions.c.attempt)).all()
        if not rows:
            raise NotFound(f"no step {step_id!r} (expected RUN:STEP)")
        base_workspace = rows[0].workspace_id
        workspace_id = base_workspace if workspace is None else self.o.workspace_id(workspace)
        if workspace_id in self.ws.archived_workspaces:
            raise BadRequest(f"workspace {workspace or 'of the run'!r} is archived: it takes no new runs")
        if base_workspace not in self.o.workspace_lineage(workspace_id):
            raise BadRequest(f"workspace {workspace!r} is not the step's workspace or one derived from it")
        latest = self.o.submission.pending_of(rows[-1].id)
        if code is not None and latest.options.get("code") is not None:
            # A shipped step re-run with the cell's current code: the step's options carry it
            # from now on (stored, so an attempt rebuilt after a restart runs it too).
            options = {**latest.options, "code": code}
            self.db.execute(update(t.steps).where(t.steps.c.id == step_id).values(options=options))
            latest = dataclasses.replace(latest, options=options)
        # What is still running for this step: its unfinished attempts, or the unfinished root
        # of a child run it spawned (followed along the chain).
        tails = [self._chain(r.id)[-1] for r in rows]
        live = [tail for tail in dict.fromkeys(tails) if self.o.result_of(tail) is None]
        spawned = latest.type == "workflow" and not step_id.endswith(":1")
        new_id = self.o.submission.new_attempt(latest, cause, execute_after=None, force=True, workspace_id=workspace_id,
                                               pend=not spawned, code_hash=code_hash)
        if spawned:  # a workflow called from a run: the re-run is a fresh child run
            parent = self.db.execute(select(t.steps.c.parent_execution_id).where(t.steps.c.id == step_id)).scalar()
            _, child = self.o.submission.create_run(workspace_id, latest.module, latest.target, latest.arguments, latest.options,
                                       parent_execution_id=parent, idempotency_key=None,
                                       origin_session_id=latest.origin_session_id)
            self.o.outcomes.record_result(new_id, "spawned", successor=child)
        for execution_id in live:
            if execution_id.rpartition(":")[0] == step_id:
                # An attempt of this step: it points at its replacement, so waiters follow.
                self._stop(execution_id, "cancelled", successor=new_id)
            else:
                # The root of a child run it spawned: that run ends cancelled, and whoever waited
                # on it (the calling workflow) now waits on the re-run instead.
                waiters = self.ws.waiters.pop(execution_id, [])
                self._stop(execution_id, "cancelled")
                self.ws.waiters.setdefault(self.o.follow(new_id)[1], []).extend(waiters)
            self.cancel_descendants(execution_id)
        event = RerunEvent(type="rerun", step=step_id, execution=new_id)
        if by:
            event["by"] = str(by)[:200]
        self.o.publish(run_topic(latest.run_id), event)
        if step_id == f"{latest.run_id}:1":  # the root step: the run is running again
            self.o.outcomes.publish_run_outcome(latest.run_id)
        return {"execution": new_id, "step": step_id}

    # ----------------------------------------------------------------- workspaces

    def new_workspace_name(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > 200:
            raise BadRequest("a workspace name must be 1 to 200 characters")
        if name in self.ws.workspace_ids or self.db.execute(
                select(t.workspaces.c.id).where(t.workspaces.c.name == name)).first() is not None:
            raise BadRequest(f"workspace {name!r} already exists")
        return name

    def create_workspace(self, name: str, base: str | None = None) -> dict:
        name = self.new_workspace_name(name)
        base_id = self.o.workspace_id(base) if base else None
        ws_id = self.db.execute(t.workspaces.insert().values(
            name=name, base_id=base_id, created_at=time.time())).inserted_primary_key[0]
        self.ws.workspace_ids[name] = ws_id
        self.ws.workspace_bases[ws_id] = base_id
        return {"name": name, "base": base}

    def update_workspace(self, name: str, *, new_name: str | None = None, base: str | None = None,
                         remove_base: bool = False) -> dict:
        """Rename a workspace or change its base (never into a cycle)."""
        ws_id = self.o.workspace_id(name)
        values: dict[str, Any] = {}
        if new_name is not None and new_name.strip() != name:
            values["name"] = self.new_workspace_name(new_name)
        if remove_base:
            values["base_id"] = None
        elif base is not None:
            base_id = self.o.workspace_id(base)
            if ws_id in self.o.workspace_lineage(base_id):
                raise BadRequest(f"{base!r} cannot be the base of {name!r}: that would make a cycle")
            values["base_id"] = base_id
        if values:
            self.db.execute(t.workspaces.update().where(t.workspaces.c.id == ws_id).values(**values))
            if "name" in values:
                del self.ws.workspace_ids[name]
                self.ws.workspace_ids[values["name"]] = ws_id
            if "base_id" in values:
                self.ws.workspace_bases[ws_id] = values["base_id"]
        base_id = self.ws.workspace_bases.get(ws_id)
        names = {v: k for k, v in self.ws.workspace_ids.items()}
        return {"name": values.get("name", name), "base": names.get(base_id) if base_id else None}


    def set_workspace_state(self, name: str, action: str) -> dict:
        """`pause` (nothing new is dispatched in it; running work finishes, submits wait),
        `resume`, or `archive` (no new runs or workers; hidden from lists; its history stays)."""
        ws_id = self.o.workspace_id(name)
        if ws_id in self.ws.archived_workspaces:
            raise BadRequest(f"workspace {name!r} is archived")
        now = time.time()
        if action == "pause":
            values: dict[str, Any] = {"paused_at": now}
            self.ws.paused_workspaces[ws_id] = name
        elif action == "resume":
            if ws_id not in self.ws.paused_workspaces:
                raise BadRequest(f"workspace {name!r} is not paused")
            values = {"paused_at": None}
            del self.ws.paused_workspaces[ws_id]
        elif action == "archive":
            if any(ws_id in self.o.workspace_lineage(other) for other in self.ws.workspace_bases
                   if other != ws_id and other not in self.ws.archived_workspaces):
                raise BadRequest(f"workspace {name!r} is the base of another workspace: archive or rebase that first")
            values = {"archived_at": now, "paused_at": None}
            self.ws.paused_workspaces.pop(ws_id, None)
            self.ws.archived_workspaces.add(ws_id)
        else:
            raise BadRequest(f"unknown workspace action {action!r}")
        self.db.execute(t.workspaces.update().where(t.workspaces.c.id == ws_id).values(**values))
        for session in self.ws.sessions.values():
            if session.workspace_id == ws_id:
                session.workspace_paused = self.ws.paused_workspaces.get(ws_id)
        self.o.needs_schedule = True  # a resume lets its queue go on
        state = {"pause": "paused", "resume": "active", "archive": "archived"}[action]
        self.o.publish(RUNS_TOPIC, WorkspaceEvent(type="workspace", name=name, state=state))
        return {"name": name, "state": state}

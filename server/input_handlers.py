"""Inputs (prompts raised by running code for a person): list, get, respond, dismiss.

Layer: a handler module, on the HTTP base (http_base.py); server/routes.py mounts these.
Answers go through the orchestrator's `inputs` component (validated against the prompt's JSON
Schema there, in the transaction that records them); who may answer is decided here, by the
principal's tags against the prompt's `requires` (others see it read-only: 403).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import tornado.web
from sqlalchemy import select
from sqlalchemy.engine import Engine

from coflux.protocol import InputState

from .errors import NotFound
from .http_base import RUN_ID_PATTERN, ApiHandler
from .state import ServerState
from .store import schema as t

INPUT_ID_PATTERN = rf"{RUN_ID_PATTERN}:i\d+"
MAX_LIST = 1000


def _describe(row: Any) -> dict:
    return {"id": row.id, "run": row.run_id, "workspace": row.workspace, "step": row.step_id,
            "execution": row.execution_id, "key": row.key,
            "template": row.template, "placeholders": row.placeholders, "schema": row.schema, "title": row.title,
            "actions": row.actions, "requires": row.requires, "initial": row.initial, "state": row.state,
            "value": row.value, "by": row.by, "created_at": row.created_at, "responded_at": row.responded_at}


def _with_workspace() -> Any:
    """Inputs with the name of their run's workspace (what scoped tokens are checked against)."""
    return (select(t.inputs, t.workspaces.c.name.label("workspace"))
            .join(t.runs, t.runs.c.id == t.inputs.c.run_id)
            .join(t.workspaces, t.workspaces.c.id == t.runs.c.workspace_id))


def list_inputs(engine: Engine, run_id: str | None, state: str | None, workspace: str | None = None,
                may_use: Callable[[str], bool] | None = None) -> list[dict]:
    """Oldest first, at most MAX_LIST; `may_use`: for a caller limited to some workspaces, which
    it may use (applied before the limit, so others' inputs never crowd out its own)."""
    query = _with_workspace().order_by(t.inputs.c.created_at)
    if run_id:
        query = query.where(t.inputs.c.run_id == run_id)
    if state:
        query = query.where(t.inputs.c.state == state)
    if workspace:
        query = query.where(t.workspaces.c.name == workspace)
    with engine.connect() as db:
        found: list[dict] = []
        for row in db.execute(query.limit(MAX_LIST) if may_use is None else query):
            if may_use is None or may_use(row.workspace):
                found.append(_describe(row))
                if len(found) == MAX_LIST:
                    break
    return found


def get_input(engine: Engine, input_id: str) -> dict | None:
    with engine.connect() as db:
        row = db.execute(_with_workspace().where(t.inputs.c.id == input_id)).first()
    return _describe(row) if row is not None else None


class InputsHandler(ApiHandler):
    """`GET api/inputs[?run=R][&state=pending|all][&workspace=W]`: pending inputs by default,
    oldest first; only those of the workspaces the caller may use."""

    async def get(self) -> None:
        run_id = self.get_query_argument("run", None)
        state = self.get_query_argument("state", InputState.PENDING)
        workspace = self.get_query_argument("workspace", None)
        if state not in (*InputState, "all"):
            raise tornado.web.HTTPError(400, f"state must be one of {', '.join(InputState)} or all")
        if workspace:
            self.require_workspace(workspace)
        principal = self.principal
        inputs = await self.state.read(list_inputs, run_id, None if state == "all" else state, workspace,
                                       principal.may_use if principal.workspaces is not None else None)
        for entry in inputs:
            entry["may_respond"] = principal.satisfies(entry["requires"])
        self.write_json({"inputs": inputs})


class InputHandler(ApiHandler):
    async def get(self, input_id: str) -> None:
        await self.require_run(input_id)  # an input id starts with its run's
        entry = await self.state.read(get_input, input_id)
        if entry is None:
            raise NotFound(f"no input {input_id!r}")
        entry["may_respond"] = self.principal.satisfies(entry["requires"])
        self.write_json(entry)


class _Answer(ApiHandler):
    async def _answer(self, input_id: str, act: Any) -> None:
        await self.require_run(input_id)
        entry = await self.state.read(get_input, input_id)
        if entry is None:
            raise NotFound(f"no input {input_id!r}")
        principal = self.principal
        if not principal.satisfies(entry["requires"]):
            raise tornado.web.HTTPError(403, f"{principal.name} may not answer {input_id}: it requires "
                                             f"{entry['requires']}")
        result = await asyncio.wrap_future(self.state.orchestrator.call(lambda o: act(o.inputs, principal.name)))
        self.write_json(result)


class RespondHandler(_Answer):
    """`POST api/inputs/<id>/respond` with `{"value": ...}` (an approval: null, or no value)."""

    async def post(self, input_id: str) -> None:
        value = self.body_json().get("value")
        await self._answer(input_id, lambda inputs, by: inputs.respond(input_id, value, by))


class DismissHandler(_Answer):
    async def post(self, input_id: str) -> None:
        await self._answer(input_id, lambda inputs, by: inputs.dismiss(input_id, by))


def input_routes(state: ServerState) -> list[tuple[str, type, dict]]:
    kw = {"state": state}
    return [
        ("api/inputs", InputsHandler, kw),
        (rf"api/inputs/({INPUT_ID_PATTERN})", InputHandler, kw),
        (rf"api/inputs/({INPUT_ID_PATTERN})/respond", RespondHandler, kw),
        (rf"api/inputs/({INPUT_ID_PATTERN})/dismiss", DismissHandler, kw),
    ]

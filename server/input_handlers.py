"""Inputs (prompts raised by running code for a person): list, get, respond, dismiss.

Layer: a handler module, on the HTTP base (http_base.py); server/routes.py mounts these.
Answers go through the orchestrator's `inputs` component (validated against the prompt's JSON
Schema there, in the transaction that records them); who may answer is decided here, by the
principal's tags against the prompt's `requires` (others see it read-only: 403).
"""

from __future__ import annotations

import asyncio
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
    return {"id": row.id, "run": row.run_id, "step": row.step_id, "execution": row.execution_id, "key": row.key,
            "template": row.template, "placeholders": row.placeholders, "schema": row.schema, "title": row.title,
            "actions": row.actions, "requires": row.requires, "initial": row.initial, "state": row.state,
            "value": row.value, "by": row.by, "created_at": row.created_at, "responded_at": row.responded_at}


def list_inputs(engine: Engine, run_id: str | None, state: str | None) -> list[dict]:
    query = select(t.inputs).order_by(t.inputs.c.created_at).limit(MAX_LIST)
    if run_id:
        query = query.where(t.inputs.c.run_id == run_id)
    if state:
        query = query.where(t.inputs.c.state == state)
    with engine.connect() as db:
        return [_describe(row) for row in db.execute(query)]


def get_input(engine: Engine, input_id: str) -> dict | None:
    with engine.connect() as db:
        row = db.execute(select(t.inputs).where(t.inputs.c.id == input_id)).first()
    return _describe(row) if row is not None else None


class InputsHandler(ApiHandler):
    """`GET api/inputs[?run=R][&state=pending|all]`: pending inputs by default, oldest first."""

    async def get(self) -> None:
        run_id = self.get_query_argument("run", None)
        state = self.get_query_argument("state", InputState.PENDING)
        if state not in (*InputState, "all"):
            raise tornado.web.HTTPError(400, f"state must be one of {', '.join(InputState)} or all")
        inputs = await self.state.read(list_inputs, run_id, None if state == "all" else state)
        principal = self.principal
        for entry in inputs:
            entry["may_respond"] = principal.satisfies(entry["requires"])
        self.write_json({"inputs": inputs})


class InputHandler(ApiHandler):
    async def get(self, input_id: str) -> None:
        entry = await self.state.read(get_input, input_id)
        if entry is None:
            raise NotFound(f"no input {input_id!r}")
        entry["may_respond"] = self.principal.satisfies(entry["requires"])
        self.write_json(entry)


class _Answer(ApiHandler):
    async def _answer(self, input_id: str, act: Any) -> None:
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

"""Reading what runs reported (logs, metrics) and listing runs: HTTP routes and WebSocket ops.

`GET api/runs/<id>/logs?step=&level=&search=&after=&limit=`, `GET api/runs/<id>/metrics`; over the
WebSocket the same as `get_logs`, `get_metrics` and `list_runs`.

Layer: a handler module, on the HTTP base (http_base.py) alone; the WebSocket handler
(handlers.py) takes its ops from here, and routes.py mounts its routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import BadRequest
from .http_base import RUN_ID_PATTERN, ApiHandler
from .state import ServerState
from .store import observe, queries

SOCKET_OPS = frozenset({"get_logs", "get_metrics", "list_runs"})
RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")


def _text(params: dict, name: str, maximum: int = 1000) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > maximum:
        raise BadRequest(f"'{name}' must be a string of at most {maximum} characters")
    return value


def _integer(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise BadRequest(f"'{name}' must be an integer from {low} to {high}, not {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}")
    return value


def _run_id(params: dict) -> str:
    import re

    run_id = params.get("run")
    if not isinstance(run_id, str) or not re.fullmatch(RUN_ID_PATTERN, run_id):
        raise BadRequest("'run' must be a run id")
    return run_id


async def read_logs(state: ServerState, params: dict) -> dict:
    if _text(params, "search") and state.engine.dialect.name == "sqlite":
        # The index takes lines a moment after they are written (orchestrator/telemetry.py):
        # what waits goes in first, so a search finds every line written before it.
        await asyncio.wrap_future(state.orchestrator.call(lambda orchestrator: orchestrator.telemetry.index_pending()))
    return await state.read(
        lambda engine: observe.get_logs(
            engine, _run_id(params), step=_text(params, "step", 100), level=_text(params, "level", 20),
            search_text=_text(params, "search"), after=_integer(params, "after", 0, 0, 2**62),
            limit=_integer(params, "limit", 1000, 1, observe.MAX_LINES)))


async def read_metrics(state: ServerState, params: dict) -> dict:
    run_id = _run_id(params)
    return await state.read(observe.get_metrics, run_id)


async def list_runs(state: ServerState, params: dict) -> dict:
    workflow = _text(params, "workflow", 400)
    module = target = None
    if workflow:
        if "/" not in workflow:
            raise BadRequest("'workflow' is MODULE/NAME")
        module, target = workflow.split("/", 1)
    status = _text(params, "status", 20)
    if status is not None and status not in RUN_STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(RUN_STATUSES)}")
    limit = _integer(params, "limit", 50, 1, 1000)
    runs = await state.read(queries.list_runs, module, target, 1000 if status else limit)  # all workspaces
    if status:
        runs = [r for r in runs if r["state"] == status][:limit]
    return {"runs": runs}


async def socket_op(state: ServerState, op: str, params: dict) -> Any:
    if op == "get_logs":
        return await read_logs(state, params)
    if op == "get_metrics":
        return await read_metrics(state, params)
    return await list_runs(state, params)


class RunLogsHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        params = {k: self.get_query_argument(k) for k in ("step", "level", "search", "after", "limit")
                  if self.get_query_argument(k, None) is not None}
        await self.require_run(run_id)
        self.write_json(await read_logs(self.state, {**params, "run": run_id}))


class RunMetricsHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        await self.require_run(run_id)
        self.write_json(await read_metrics(self.state, {"run": run_id}))


def observe_routes(state: ServerState) -> list[tuple[str, type, dict]]:
    kw = {"state": state}
    return [
        (rf"api/runs/({RUN_ID_PATTERN})/logs", RunLogsHandler, kw),
        (rf"api/runs/({RUN_ID_PATTERN})/metrics", RunMetricsHandler, kw),
    ]

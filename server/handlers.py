"""HTTP and WebSocket handlers, shared by the headless app and the Jupyter extension.

They hold no authentication logic of their own: `prepare` only requires `self.current_user`,
which the headless app provides with a token check and Jupyter with its own login.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import tornado.web
import tornado.websocket

from .errors import BadRequest, NotFound
from .state import MAX_MESSAGE_BYTES, ServerState, encode_frames
from .store import queries

log = logging.getLogger("coflux.server")

# Operations the orchestrator thread handles; the rest are answered on the loop.
ORCHESTRATOR_OPS = {"register", "declare", "release", "submit", "call", "group", "result", "wait", "depend",
                    "cancel", "rerun"}


class _AuthRequired:
    async def prepare(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        parent = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if asyncio.iscoroutine(parent) or isinstance(parent, asyncio.Future):
            await parent
        if not self.current_user:  # type: ignore[attr-defined]
            raise tornado.web.HTTPError(403, "authentication required")


class ApiHandler(_AuthRequired, tornado.web.RequestHandler):
    state: ServerState

    def initialize(self, state: ServerState) -> None:
        self.state = state

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def body_json(self) -> dict:
        if len(self.request.body) > MAX_MESSAGE_BYTES:
            raise BadRequest("request body too large")
        try:
            payload = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadRequest("request body must be a JSON object")
        return payload

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "http_error", "message": message}}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, BadRequest):
            status = 404 if e.code == "not_found" else 400
            self.write_json({"error": e.to_wire()}, status)
            return
        super()._handle_request_exception(e)


class _FuturePeer:
    """A one-shot peer: the orchestrator's reply resolves an asyncio future (HTTP long-polls)."""

    def __init__(self) -> None:
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()

    def send_many(self, messages: list[dict]) -> None:
        for message in messages:
            if "re" in message and not self.future.done():
                self.future.set_result(message)

    async def reply(self) -> Any:
        message = await self.future
        if "err" in message:
            error = message["err"]
            raise NotFound(error["message"]) if error.get("code") == "not_found" else BadRequest(error["message"])
        return message["ok"]


async def orchestrate(state: ServerState, op: str, params: dict) -> Any:
    peer = _FuturePeer()
    state.orchestrator.post(op, peer, 1, params)
    return await peer.reply()


class HealthHandler(ApiHandler):
    def get(self) -> None:
        self.write_json({"ok": True})


class RunsHandler(ApiHandler):
    async def get(self) -> None:
        runs = await self.state.read(queries.list_runs, self.get_query_argument("module", None),
                                     self.get_query_argument("target", None),
                                     int(self.get_query_argument("limit", "50")))
        self.write_json({"runs": runs})

    async def post(self) -> None:
        body = self.body_json()
        for field in ("module", "target"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise BadRequest(f"'{field}' is required")
        args = body.get("args", [])
        kwargs = body.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise BadRequest("'args' must be a list and 'kwargs' an object")
        if not body.get("wire"):  # plain JSON values from curl, Studio, ...
            args = [{"v": a} for a in args]
            kwargs = {k: {"v": v} for k, v in kwargs.items()}
        result = await orchestrate(self.state, "submit", {
            "module": body["module"], "target": body["target"], "type": "workflow", "args": args,
            "kwargs": kwargs, "workspace": body.get("workspace") or "default",
            "idempotency_key": body.get("idempotency_key"), "options": body.get("options") or {}})
        self.write_json(result, 201)


async def run_snapshot(state: ServerState, run_id: str) -> dict:
    """The run as stored, plus why each unstarted execution is still waiting."""
    snapshot = await state.read(queries.get_run, run_id)
    waiting = [e["id"] for step in snapshot["steps"] for e in step["executions"]
               if e["result"] is None and e["assigned_at"] is None]
    if waiting:
        def reasons(orchestrator: Any) -> dict[str, str]:
            return {eid: orchestrator.waiting_reason(orchestrator.pending_by_id[eid])
                    for eid in waiting if eid in orchestrator.pending_by_id}
        found = await asyncio.wrap_future(state.orchestrator.call(reasons))
        for step in snapshot["steps"]:
            for execution in step["executions"]:
                if execution["id"] in found:
                    execution["waiting"] = found[execution["id"]]
    return snapshot


class RunHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        self.write_json(await run_snapshot(self.state, run_id))


class CancelHandler(ApiHandler):
    async def post(self, execution_id: str) -> None:
        self.write_json(await orchestrate(self.state, "cancel", {"execution": execution_id}))


class RerunHandler(ApiHandler):
    async def post(self, step_id: str) -> None:
        body = self.body_json()
        self.write_json(await orchestrate(self.state, "rerun", {"step": step_id,
                                                                 "workspace": body.get("workspace")}), 201)


class RunResultHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        timeout = self.get_query_argument("timeout", None)
        outcome = await orchestrate(self.state, "wait", {
            "execution": f"{run_id}:1:1", "timeout": float(timeout) if timeout is not None else 0})
        self.write_json(outcome)


class WorkflowsHandler(ApiHandler):
    async def get(self) -> None:
        workspace = self.get_query_argument("workspace", "default")
        self.write_json({"workflows": await self.state.read(queries.list_workflows, workspace)})


class WorkspacesHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json({"workspaces": await self.state.read(queries.list_workspaces)})

    async def post(self) -> None:
        body = self.body_json()
        name, base = body.get("name"), body.get("base")
        if not isinstance(name, str) or (base is not None and not isinstance(base, str)):
            raise BadRequest("'name' (and optional 'base') must be strings")
        created = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.create_workspace(name, base)))
        self.write_json(created, 201)


def _sessions(orchestrator: Any) -> list[dict]:
    return [{"id": s.id, "name": s.name, "kind": s.kind, "connected": s.peer is not None,
             "concurrency": s.concurrency, "running": sorted(s.running), "provides": s.provides,
             "accepts": s.accepts, "targets": sorted(f"{m}/{n}" for m, n in s.targets)}
            for s in orchestrator.sessions.values()]


class WorkersHandler(ApiHandler):
    async def get(self) -> None:
        sessions = await asyncio.wrap_future(self.state.orchestrator.call(_sessions))
        self.write_json({"workers": sessions})


class SocketHandler(_AuthRequired, tornado.websocket.WebSocketHandler):
    """One protocol for workers, kernels, the CLI and live views: JSON requests with `id`,
    replies `{"re": id, "ok"|"err"}`, and pushes with `op`."""

    state: ServerState

    def initialize(self, state: ServerState) -> None:
        self.state = state
        self._open = False

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return MAX_MESSAGE_BYTES

    @property
    def ping_interval(self) -> float:  # type: ignore[override]
        return 15.0

    def check_origin(self, origin: str) -> bool:
        # Non-browser clients authenticate with a token; browsers must be same-origin.
        return super().check_origin(origin)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._open = True
        self.set_nodelay(True)

    def on_close(self) -> None:
        self._open = False
        self.state.hub.drop(self)
        self.state.orchestrator.post("__closed__", self)

    def send_many(self, messages: list[dict]) -> None:
        if not self._open:
            return
        try:
            for frame in encode_frames(messages):
                self.write_message(frame)
        except tornado.websocket.WebSocketClosedError:
            self._open = False

    def on_message(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            self.send_many([{"op": "error", "err": {"code": "bad_request", "message": "frame is not JSON"}}])
            return
        for request in frame if isinstance(frame, list) else [frame]:
            self._handle(request)

    def _handle(self, request: Any) -> None:
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self.send_many([{"op": "error", "err": {"code": "bad_request",
                                                    "message": "a request is an object with an 'op'"}}])
            return
        op, request_id = request["op"], request.get("id")
        params = request.get("params") or {}
        if not isinstance(params, dict):
            self._error(request_id, "bad_request", "'params' must be an object")
        elif op in ORCHESTRATOR_OPS:
            self.state.orchestrator.post(op, self, request_id, params)
        elif op == "subscribe":
            asyncio.ensure_future(self._subscribe(request_id, params))
        elif op == "unsubscribe":
            self.state.hub.unsubscribe(self, str(params.get("topic")))
            self._ok(request_id, {"ok": True})
        elif op == "get_run":
            asyncio.ensure_future(self._snapshot(request_id, str(params.get("run"))))
        elif op == "workspaces":
            asyncio.ensure_future(self._read(request_id, queries.list_workspaces))
        elif op == "create_workspace":
            asyncio.ensure_future(self._create_workspace(request_id, params))
        elif op == "update_workspace":
            asyncio.ensure_future(self._update_workspace(request_id, params))
        elif op == "ping":
            self._ok(request_id, {"pong": True})
        else:
            self._error(request_id, "bad_request", f"unknown operation {op!r}")

    async def _subscribe(self, request_id: Any, params: dict) -> None:
        topic = str(params.get("topic"))
        self.state.hub.subscribe(self, topic)
        snapshot = None
        if topic.startswith("run:"):
            await self._snapshot(request_id, topic[4:])
            return
        self._ok(request_id, {"snapshot": snapshot})

    async def _snapshot(self, request_id: Any, run_id: str) -> None:
        try:
            self._ok(request_id, await run_snapshot(self.state, run_id))
        except BadRequest as exc:
            self._error(request_id, exc.code, str(exc))

    async def _create_workspace(self, request_id: Any, params: dict) -> None:
        name, base = params.get("name"), params.get("base")
        if not isinstance(name, str) or (base is not None and not isinstance(base, str)):
            self._error(request_id, "bad_request", "'name' (and optional 'base') must be strings")
            return
        try:
            created = await asyncio.wrap_future(self.state.orchestrator.call(
                lambda orchestrator: orchestrator.create_workspace(name, base)))
            self._ok(request_id, created)
        except BadRequest as exc:
            self._error(request_id, exc.code, str(exc))

    async def _update_workspace(self, request_id: Any, params: dict) -> None:
        name = params.get("name")
        new_name, base = params.get("new_name"), params.get("base")
        if not all(isinstance(v, str) for v in (name,)) or any(
                v is not None and not isinstance(v, str) for v in (new_name, base)):
            self._error(request_id, "bad_request", "'name', 'new_name' and 'base' must be strings")
            return
        try:
            updated = await asyncio.wrap_future(self.state.orchestrator.call(
                lambda orchestrator: orchestrator.update_workspace(
                    name, new_name=new_name, base=base, remove_base=bool(params.get("remove_base")))))
            self._ok(request_id, updated)
        except BadRequest as exc:
            self._error(request_id, exc.code, str(exc))

    async def _read(self, request_id: Any, fn: Any, *args: Any) -> None:
        try:
            self._ok(request_id, await self.state.read(fn, *args))
        except BadRequest as exc:
            self._error(request_id, exc.code, str(exc))

    def _ok(self, request_id: Any, result: Any) -> None:
        if request_id is not None:
            self.send_many([{"re": request_id, "ok": result}])

    def _error(self, request_id: Any, code: str, message: str) -> None:
        self.send_many([{"re": request_id, "err": {"code": code, "message": message}}])


def route_table(state: ServerState) -> list[tuple[str, type, dict]]:
    """Routes relative to the server's base (`/` headless, `{base_url}coflux/` in Jupyter)."""
    kw = {"state": state}
    return [
        ("api/health", HealthHandler, kw),
        ("api/ws", SocketHandler, kw),
        ("api/runs", RunsHandler, kw),
        (r"api/runs/(R[A-Za-z0-9]+)", RunHandler, kw),
        (r"api/runs/(R[A-Za-z0-9]+)/result", RunResultHandler, kw),
        (r"api/executions/(R[A-Za-z0-9]+:\d+:\d+)/cancel", CancelHandler, kw),
        (r"api/steps/(R[A-Za-z0-9]+:\d+)/rerun", RerunHandler, kw),
        ("api/workflows", WorkflowsHandler, kw),
        ("api/workspaces", WorkspacesHandler, kw),
        ("api/workers", WorkersHandler, kw),
    ]

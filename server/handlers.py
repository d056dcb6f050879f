"""The API's own handlers (runs, steps, workspaces, workers, health) and the WebSocket
(`api/ws`): one protocol for workers, kernels, the CLI and live views.

Layer: a handler module, on the HTTP base (http_base.py); the WebSocket answers the observe ops
(`get_logs`, `get_metrics`, `list_runs`) with observe_handlers' code, the one import between
handler modules, in that direction. server/routes.py mounts these handlers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any

import tornado.web
import tornado.websocket

from coflux.protocol import Op

from .errors import INTERNAL_MESSAGE, BadRequest, DatabaseUnavailable, Forbidden, NotFound
from .http_base import RUN_ID_PATTERN, ApiHandler, AuthRequired, parse_json
from .observe_handlers import SOCKET_OPS, socket_op
from .state import MAX_MESSAGE_BYTES, ServerState, encode_frames
from .store import queries
from .store.availability import describe_outage

log = logging.getLogger("coflux.server")

# Operations the orchestrator thread handles; the rest are answered on the loop.
ORCHESTRATOR_OPS = frozenset(Op)
# The health check: how long it waits for the database's answer, and how long the orchestrator
# may work on one batch (milliseconds, as a rule) before it counts as stuck.
HEALTH_PROBE_TIMEOUT = 3.0
STUCK_AFTER = 10.0
# `GET api/runs/<id>/result?timeout=` waits at most this long.
MAX_RESULT_TIMEOUT = 3600.0


class _Retry(Exception):
    """The orchestrator recovered from a failed batch; the request is to be sent again."""


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
        if "err" not in message:
            return message["ok"]
        error = message["err"] if isinstance(message["err"], dict) else {}
        code = error.get("code")
        if code == "retry":
            raise _Retry()
        if code in ("internal", None):  # logged by the orchestrator; the details stay there
            raise tornado.web.HTTPError(500, INTERNAL_MESSAGE)
        exc = NotFound(error.get("message")) if code == "not_found" else BadRequest(error.get("message"))
        exc.code = str(code)
        raise exc


async def orchestrate(state: ServerState, op: str, params: dict) -> Any:
    for _ in range(3):
        peer = _FuturePeer()
        state.orchestrator.post(op, peer, 1, params)
        try:
            return await peer.reply()
        except _Retry:
            continue
    raise tornado.web.HTTPError(503, "the server is recovering; try again")


class HealthHandler(ApiHandler):
    """200 `{"ok": true}` while the orchestrator's loop thread runs and is not stuck on one batch,
    and the database answers; otherwise 503 (what a load balancer acts on) with `problems`, one
    sentence each: the database unreachable since when, the orchestrator busy on one batch for
    how long, its thread not running. `orchestrator` and `database` give the figures."""

    async def get(self) -> None:
        health = getattr(self.state.orchestrator, "health", None)
        state = dict(health()) if health is not None else {"alive": True}
        if state.get("last_error"):  # the kind of error only: its text (SQL, driver messages) stays in the log
            state["last_error"] = str(state["last_error"]).split("(", 1)[0]
        database = await self.state.probe_database(HEALTH_PROBE_TIMEOUT)
        problems = health_problems(state, database)
        body = {"ok": not problems, "orchestrator": state, "database": database}  # restarts, last_error, queued
        if problems:
            body["problems"] = problems
        self.write_json(body, 503 if problems else 200)


def health_problems(orchestrator: dict, database: dict) -> list[str]:
    """What keeps the server from serving, one sentence each (none: healthy)."""
    problems = []
    if not database["reachable"]:
        problems.append(describe_outage(database))
    if not orchestrator.get("alive"):
        problems.append("the orchestrator's thread is not running (it is being restarted)")
    busy = orchestrator.get("busy_for") or 0.0
    if busy >= STUCK_AFTER:
        problems.append(f"orchestrator busy on one batch for {busy:.0f} s: writes wait until it is done")
    return problems


def _optional(body: dict, name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise BadRequest(f"'{name}' must be {what}")
    return value


def _check_may_ship_code(principal: Any, options: Any) -> None:
    """Shipped code (`options.code`: a cell's task sent by value to a worker that runs it) only
    from principals allowed to ship it (the super token, Jupyter users, tokens given the right)."""
    if isinstance(options, dict) and options.get("code") is not None and not principal.may_ship_code:
        raise Forbidden("this token may not ship code")


class RunsHandler(ApiHandler):
    async def get(self) -> None:
        limit = int(self.query_number("limit", 50, 1, 1000, integer=True))  # type: ignore[arg-type]
        runs = await self.state.read(queries.list_runs, self.get_query_argument("module", None),
                                     self.get_query_argument("target", None), limit)
        self.write_json({"runs": self.in_scope(runs)})

    async def post(self) -> None:
        body = self.body_json()
        for field in ("module", "target"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise BadRequest(f"'{field}' is required")
        args = body.get("args", [])
        kwargs = body.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise BadRequest("'args' must be a list and 'kwargs' an object")
        workspace = _optional(body, "workspace", str, "a string")
        self.require_workspace(workspace)
        idempotency_key = _optional(body, "idempotency_key", str, "a string")
        options = _optional(body, "options", dict, "an object")
        _check_may_ship_code(self.principal, options)
        if not body.get("wire"):  # plain JSON values from curl, Studio, ...
            args = [{"v": a} for a in args]
            kwargs = {k: {"v": v} for k, v in kwargs.items()}
        result = await orchestrate(self.state, "submit", {
            "module": body["module"], "target": body["target"], "type": "workflow", "args": args,
            "kwargs": kwargs, "workspace": workspace or "default",
            "idempotency_key": idempotency_key, "options": options or {}, "by": self.principal.name})
        self.write_json(result, 201)


async def run_snapshot(state: ServerState, run_id: str, raw_json: bool = False, view: str = "full") -> dict:
    """The run as stored, plus why each unstarted execution is still waiting. With `raw_json`,
    its JSON columns may be `queries.RawJSON` texts: for a reply encoded by `encode_json`;
    `view` is get_run's (all of the run, or what `coflux runs inspect` prints)."""
    snapshot = await state.read(lambda engine, rid: queries.get_run(engine, rid, raw_json=raw_json, view=view),
                                run_id)
    waiting = [e["id"] for step in snapshot["steps"] for e in step["executions"] if e["result"] is None]
    targets = {(step["module"], step["target"]) for step in snapshot["steps"]}

    def in_memory(orchestrator: Any) -> tuple[dict, dict[str, str]]:
        """What only the orchestrator knows, in one call: the declared parameter names of the
        run's targets, and why each unfinished execution still waits."""
        known = {key: orchestrator.ws.signatures[key] for key in targets if key in orchestrator.ws.signatures}
        found = {}
        for eid in waiting:
            if eid in orchestrator.ws.pending_by_id:
                found[eid] = orchestrator.queue.waiting_reason(orchestrator.ws.pending_by_id[eid])
            elif (stuck := orchestrator.worker_state.stuck_reason(eid)) is not None:
                found[eid] = stuck
        return known, found

    known, found = await asyncio.wrap_future(state.orchestrator.call(in_memory))
    for step in snapshot["steps"]:
        if (step["module"], step["target"]) in known:  # the arguments' names, when a worker declared them
            step["parameters"] = known[(step["module"], step["target"])]
        for execution in step["executions"]:
            if execution["id"] in found:
                execution["waiting"] = found[execution["id"]]
    return snapshot


class RunHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        """The run's snapshot; `?view=inspect` for only what `coflux runs inspect` prints (the
        same shape, fewer keys: an older server ignores the argument and sends everything)."""
        view = self.get_query_argument("view", "full")
        if view not in queries.RUN_VIEWS:
            raise BadRequest(f"'view' must be one of {', '.join(queries.RUN_VIEWS)}, not {view[:40]!r}")
        await self.require_run(run_id)
        # The stored JSON texts go into the reply as they are (encode_json): most of a large
        # run's snapshot would otherwise be decoded only to be encoded again.
        self.write_json(await run_snapshot(self.state, run_id, raw_json=True, view=view))


class CancelHandler(ApiHandler):
    async def post(self, execution_id: str) -> None:
        await self.require_run(execution_id)
        self.write_json(await orchestrate(self.state, "cancel", {"execution": execution_id,
                                                                 "by": self.principal.name}))


class RerunHandler(ApiHandler):
    async def post(self, step_id: str) -> None:
        body = self.body_json()
        workspace = _optional(body, "workspace", str, "a string")
        await self.require_run(step_id)
        if workspace is not None:
            self.require_workspace(workspace)
        from_failure = _optional(body, "from_failure", bool, "true or false")
        params: dict[str, Any] = {"step": step_id, "workspace": workspace, "from_failure": bool(from_failure),
                                  "by": self.principal.name}
        self.write_json(await orchestrate(self.state, "rerun", params), 201)


class StepCodeHandler(ApiHandler):
    """GET api/steps/<id>/code: the code hash the step ran; `current`, the code a connected
    worker has for its target now (for a cell's task: the cell as it is now, from the kernel
    that submitted the run) and `matches`, whether the step ran that code; and, cached by code,
    the earlier call whose code differed (the step panel's "code changed since R:n")."""

    async def get(self, step_id: str) -> None:
        await self.require_run(step_id)
        history = await self.state.read(queries.code_history, step_id)
        workspace_id, origin = history.pop("_workspace_id"), history.pop("_origin_session")
        current = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda o: o.workers.current_code(workspace_id, history["module"], history["target"], origin)))
        history["current"] = current
        history["matches"] = None if current is None or history["code_hash"] is None else \
            current["code_hash"] == history["code_hash"]
        self.write_json(history)


class RunResultHandler(ApiHandler):
    async def get(self, run_id: str) -> None:
        timeout = self.query_number("timeout", 0, 0, MAX_RESULT_TIMEOUT)
        await self.require_run(run_id)
        # The run's outcome: its root step's latest attempt, followed (queries.run_outcomes).
        outcome = await orchestrate(self.state, "wait", {"run": run_id, "timeout": timeout})
        self.write_json(outcome)


class ExecutionResultHandler(ApiHandler):
    async def get(self, execution_id: str) -> None:
        timeout = self.query_number("timeout", 0, 0, MAX_RESULT_TIMEOUT)
        await self.require_run(execution_id)
        # The execution's outcome, followed along its successors (retries, cache hits, ...).
        outcome = await orchestrate(self.state, "wait", {"execution": execution_id, "timeout": timeout})
        self.write_json(outcome)


class WorkflowsHandler(ApiHandler):
    async def get(self) -> None:
        """The registered workflows, each with whether a connected worker hosts it now (`hosted`)
        and, when none does, when the last one left (`host_left_at`, epoch seconds, or None)."""
        workspace = self.get_query_argument("workspace", "default")
        self.require_workspace(workspace)
        workflows = await self.state.read(queries.list_workflows, workspace)
        ended = await self.state.read(queries.hosts_left, workspace)
        live = await asyncio.wrap_future(self.state.orchestrator.call(lambda o: live_hosts(o, workspace)))
        for workflow in workflows:
            key = (workflow["module"], workflow["name"])
            workflow["hosted"] = live.get(key) is None and key in live
            workflow["host_left_at"] = None if workflow["hosted"] else (live.get(key) or ended.get(key))
        self.write_json({"workflows": workflows})


def live_hosts(orchestrator: Any, workspace: str) -> dict[tuple[str, str], float | None]:
    """(module, name) -> None when a connected session of the workspace hosts it, else when the
    last of its sessions still within their reconnect grace lost its connection."""
    workspace_id = orchestrator.ws.workspace_ids.get(workspace)
    hosts: dict[tuple[str, str], float | None] = {}
    for session in orchestrator.ws.sessions.values():
        if session.workspace_id != workspace_id:
            continue
        lost = None if session.peer is not None else (session.expires_at or 0) - orchestrator.reconnect_grace
        for key in session.targets:
            if key in hosts and hosts[key] is None:
                continue
            hosts[key] = lost if lost is None or key not in hosts else max(lost, hosts[key] or 0)
    return hosts


class WorkspacesHandler(ApiHandler):
    async def get(self) -> None:
        archived = self.get_query_argument("archived", "") in ("1", "true")
        self.write_json({"workspaces": await self.state.read(queries.list_workspaces, archived)})

    async def post(self) -> None:
        body = self.body_json()
        name, base = body.get("name"), body.get("base")
        if not isinstance(name, str) or (base is not None and not isinstance(base, str)):
            raise BadRequest("'name' (and optional 'base') must be strings")
        self.require_workspace(name)
        created = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.control.create_workspace(name, base)))
        self.write_json(created, 201)


class WorkspaceStateHandler(ApiHandler):
    """`POST api/workspaces/pause|resume|archive` with `{"name": W}`."""

    async def post(self, action: str) -> None:
        name = self.body_json().get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("'name' (the workspace) is required")
        self.require_workspace(name)
        self.write_json(await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.control.set_workspace_state(name, action))))


class ManifestsHandler(ApiHandler):
    """`GET api/manifests?workspace=W`: the registered modules and their workflows, with the
    connected workers hosting each (none: nothing would run a submit of it)."""

    async def get(self) -> None:
        workspace = self.get_query_argument("workspace", "default")
        self.require_workspace(workspace)
        workflows = await self.state.read(queries.list_workflows, workspace)
        sessions = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda o: [s for s in _sessions(o) if s["connected"] and s["workspace"] == workspace]))
        modules: dict[str, dict] = {}
        for wf in workflows:
            hosts = sorted(s["name"] for s in sessions if f"{wf['module']}/{wf['name']}" in s["targets"])
            module = modules.setdefault(wf["module"], {"module": wf["module"], "workflows": [], "hosts": set()})
            module["workflows"].append({"name": wf["name"], "hosts": hosts, "updated_at": wf["updated_at"]})
            module["hosts"].update(hosts)
        self.write_json({"workspace": workspace, "modules": [
            {**m, "hosts": sorted(m["hosts"]), "hosted": bool(m["hosts"])} for m in modules.values()]})


class ArchiveModuleHandler(ApiHandler):
    """`POST api/manifests/archive` with `{"module": M, "workspace": W}`."""

    async def post(self) -> None:
        body = self.body_json()
        module, workspace = body.get("module"), body.get("workspace") or "default"
        if not isinstance(module, str) or not module or not isinstance(workspace, str):
            raise BadRequest("'module' (and optional 'workspace') must be strings")
        self.require_workspace(workspace)
        self.write_json(await asyncio.wrap_future(self.state.orchestrator.call(
            lambda o: o.manifests.archive(workspace, module))))


def _sessions(orchestrator: Any) -> list[dict]:
    names = {ws_id: name for name, ws_id in orchestrator.ws.workspace_ids.items()}
    return [{"id": s.id, "name": s.name, "kind": s.kind, "connected": s.peer is not None,
             "workspace": names.get(s.workspace_id),
             "concurrency": s.concurrency, "running": sorted(s.running), "provides": s.provides,
             "accepts": s.accepts, "accepts_code": s.accepts_code,
             "targets": sorted(f"{m}/{n}" for m, n in s.targets)}
            for s in orchestrator.ws.sessions.values()]


class WhoAmIHandler(ApiHandler):
    """Who the caller is to this server: name, kind, workspace scope, tags and rights (the
    front-ends use it to tell what the user may do, such as answering a prompt)."""

    async def get(self) -> None:
        self.write_json(self.principal.describe())


class WorkersHandler(ApiHandler):
    async def get(self) -> None:
        sessions = await asyncio.wrap_future(self.state.orchestrator.call(_sessions))
        self.write_json({"workers": sessions})


TOPIC_PATTERN = re.compile(rf"(runs|workers|run:{RUN_ID_PATTERN})")
# What a client (not a worker about its own executions) asks of a run: a scoped token's
# connection may ask it only of runs in its workspaces.
# Operations recorded with who did them (`by`).
RECORDED_OPS = frozenset({"submit", "rerun", "cancel"})
RUN_READING_OPS = frozenset({"cancel", "rerun", "wait", "get_run", "subscribe", "get_logs", "get_metrics"})


def _run_named(op: str, params: dict) -> str | None:
    """The run a request of RUN_READING_OPS is about, if it names one."""
    if op not in RUN_READING_OPS:
        return None
    topic = params.get("topic")
    if op == "subscribe":
        return topic[4:] if isinstance(topic, str) and topic.startswith("run:") else None
    for key in ("run", "execution", "step"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value.split(":", 1)[0]
    return None


class SocketHandler(AuthRequired, tornado.websocket.WebSocketHandler):
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
        # A frozen peer (SIGSTOP, a hung host) keeps its socket open: only a missing pong (within
        # one interval) shows it is gone, and its reconnect grace starts then. With a short grace
        # the user wants lost workers noticed soon, so ping more often (at most every 15 s).
        return min(15.0, max(2.0, self.state.orchestrator.reconnect_grace / 2))

    def check_origin(self, origin: str) -> bool:
        # Non-browser clients authenticate with a token; browsers must be same-origin.
        return super().check_origin(origin)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._open = True
        self.set_nodelay(True)
        # Who this connection acts for is settled once, at the handshake (never per message).
        self._principal = self.principal
        self._token_id = getattr(self, "token_id", None)
        if self._token_id is not None:  # a service token: closed at once should it be revoked
            self.state.tokens.track(self._token_id, self)

    def on_close(self) -> None:
        self._open = False
        if getattr(self, "_token_id", None) is not None:
            self.state.tokens.untrack(self._token_id, self)
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
            frame = parse_json(message, "frame")
        except BadRequest as exc:
            self.send_many([{"op": "error", "err": exc.to_wire()}])
            return
        for request in frame if isinstance(frame, list) else [frame]:
            self._handle(request)

    def _handle(self, request: Any) -> None:
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self.send_many([{"op": "error", "err": {"code": "bad_request",
                                                    "message": "a request is an object with an 'op'"}}])
            return
        op, request_id = request["op"], request.get("id")
        params = request.get("params")
        params = {} if params is None else params
        if not isinstance(params, dict):
            self._error(request_id, "bad_request", "'params' must be an object")
            return
        if self._principal.workspaces is not None:  # a token limited to some workspaces
            refusal = self._workspace_refusal(op, params)
            if refusal is not None:
                self._error(request_id, "forbidden", refusal)
                return
            run_id = _run_named(op, params)
            if run_id is not None:  # which workspace is a read: the op goes on once it is known
                asyncio.ensure_future(self._dispatch_in_scope(run_id, op, request_id, params))
                return
        self._dispatch(op, request_id, params)

    async def _scoped_listing(self, listing: Awaitable[Any]) -> Any:
        found = await listing
        return {**found, "runs": [run for run in found["runs"] if self._principal.may_use(run["workspace"])]}

    def _acting_for(self, claimed: Any) -> str:
        """Who a submit, re-run or cancel is recorded as done by: the connection's principal. A
        connection with the super token may say whom it acts for (a kernel inside Jupyter, for
        the user who runs it); any other cannot claim to be someone else."""
        if self._principal.kind == "super" and isinstance(claimed, str) and claimed.strip():
            return claimed.strip()[:200]
        return self._principal.name

    def _workspace_refusal(self, op: str, params: dict) -> str | None:
        """Why a scoped token may not do `op` in the workspace(s) it names, if it may not."""
        if op == "submit" and params.get("parent") is not None:
            return None  # a child runs in its parent's workspace, where its worker registered (checked then)
        if op in ("submit", "register"):
            named = [params.get("workspace") or "default"]
        elif op in ("rerun", "create_workspace", "update_workspace"):
            named = [params.get(key) for key in ("workspace", "name", "new_name")]
        else:
            return None
        for workspace in named:
            if isinstance(workspace, str) and not self._principal.may_use(workspace):
                return (f"{self._principal.name!r} may not use workspace {workspace!r} "
                        f"(it is limited to {', '.join(self._principal.workspaces or ())})")
        return None

    async def _dispatch_in_scope(self, run_id: str, op: str, request_id: Any, params: dict) -> None:
        try:
            workspace = await self.state.read(queries.run_workspace, run_id)
        except (BadRequest, DatabaseUnavailable) as exc:
            self._error(request_id, exc.code, str(exc))
            return
        if not self._principal.may_use(workspace):
            self._error(request_id, "forbidden", f"{self._principal.name!r} may not use workspace {workspace!r}, "
                                                 f"the workspace of run {run_id}")
            return
        self._dispatch(op, request_id, params)

    def _dispatch(self, op: str, request_id: Any, params: dict) -> None:
        if op in ORCHESTRATOR_OPS:
            try:
                if op in ("submit", "call"):
                    _check_may_ship_code(self._principal, params.get("options"))
                elif op == "rerun":
                    _check_may_ship_code(self._principal, {"code": params.get("code")})
            except Forbidden as exc:
                self._error(request_id, exc.code, str(exc))
                return
            if op in RECORDED_OPS:
                params["by"] = self._acting_for(params.get("by"))
            self.state.orchestrator.post(op, self, request_id, params)
        elif op == "subscribe":
            self._answer(request_id, self._subscribe(params))
        elif op in SOCKET_OPS:
            self._answer(request_id, self._scoped_listing(socket_op(self.state, op, params))
                         if op == "list_runs" and self._principal.workspaces is not None
                         else socket_op(self.state, op, params))
        elif op == "unsubscribe":
            self.state.hub.unsubscribe(self, str(params.get("topic")))
            self._ok(request_id, {"ok": True})
        elif op == "get_run":
            run_id = params.get("run")
            if not isinstance(run_id, str):
                self._error(request_id, "bad_request", "'run' must be a run id")
            else:
                self._answer(request_id, run_snapshot(self.state, run_id))
        elif op == "workspaces":
            self._answer(request_id, self.state.read(queries.list_workspaces))
        elif op == "create_workspace":
            self._answer(request_id, self._create_workspace(params))
        elif op == "update_workspace":
            self._answer(request_id, self._update_workspace(params))
        elif op == "ping":
            self._ok(request_id, {"pong": True})
        else:
            self._error(request_id, "bad_request", f"unknown operation {op[:100]!r}")

    def _answer(self, request_id: Any, work: Awaitable[Any]) -> None:
        """Reply with the result of `work` (run on the loop), or with its error."""
        async def answer() -> None:
            try:
                result = await work
            except (BadRequest, DatabaseUnavailable) as exc:
                self._error(request_id, exc.code, str(exc))
            except Exception:
                log.exception("request %r failed", request_id)
                self._error(request_id, "internal", INTERNAL_MESSAGE)
            else:
                self._ok(request_id, result)
        asyncio.ensure_future(answer())

    async def _subscribe(self, params: dict) -> Any:
        topic = params.get("topic")
        if not isinstance(topic, str) or not TOPIC_PATTERN.fullmatch(topic):
            raise BadRequest("'topic' must be 'runs', 'workers' or 'run:<run id>'")
        if self._principal.workspaces is not None and not topic.startswith("run:"):
            # These carry every workspace's runs, prompts and workers; a run's own topic is
            # checked against the token's workspaces before it gets here.
            raise Forbidden(f"{self._principal.name!r} is limited to {', '.join(self._principal.workspaces)}: "
                            f"it may follow single runs ('run:<id>'), not the '{topic}' topic")
        after = params.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise BadRequest("'after' must be an event sequence number")
        self.state.hub.subscribe(self, topic)
        if after is not None:  # a viewer resuming: what it missed (live events follow; it drops repeats)
            from .store.observe import get_events

            return {"events": await self.state.read(get_events, topic, after)}
        if not topic.startswith("run:"):
            from .store.observe import latest_seq

            return {"snapshot": None, "seq": await self.state.read(latest_seq)}
        try:
            return await run_snapshot(self.state, topic[4:])
        except Exception:
            self.state.hub.unsubscribe(self, topic)
            raise

    async def _create_workspace(self, params: dict) -> Any:
        name, base = params.get("name"), params.get("base")
        if not isinstance(name, str) or (base is not None and not isinstance(base, str)):
            raise BadRequest("'name' (and optional 'base') must be strings")
        return await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.control.create_workspace(name, base)))

    async def _update_workspace(self, params: dict) -> Any:
        name = params.get("name")
        new_name, base = params.get("new_name"), params.get("base")
        if not isinstance(name, str) or any(v is not None and not isinstance(v, str) for v in (new_name, base)):
            raise BadRequest("'name', 'new_name' and 'base' must be strings")
        return await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.control.update_workspace(
                name, new_name=new_name, base=base, remove_base=bool(params.get("remove_base")))))

    def _ok(self, request_id: Any, result: Any) -> None:
        if request_id is not None:
            self.send_many([{"re": request_id, "ok": result}])

    def _error(self, request_id: Any, code: str, message: str) -> None:
        self.send_many([{"re": request_id, "err": {"code": code, "message": message}}])

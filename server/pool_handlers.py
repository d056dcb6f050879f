"""Pools over HTTP (`coflux pools ...`, `Client`, Studio): `api/pools` and one pool's routes.

Layer: a handler module, on the HTTP base. Every change goes through the orchestrator's thread
(`orchestrator.call`), which owns the pools' rows and decides launches. The workspace is the
`workspace` query argument (default "default"); a launched worker's credential may not manage
pools, and a principal limited to some workspaces only its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import tornado.web

from .errors import BadRequest
from .http_base import ApiHandler
from .state import ServerState

POOL = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


class _PoolHandler(ApiHandler):
    def workspace(self) -> str:
        workspace = self.get_query_argument("workspace", None) or "default"
        principal = self.principal
        if principal.kind == "launch":
            raise tornado.web.HTTPError(403, "a launched worker's credential cannot manage pools")
        if not principal.may_use(workspace):
            raise tornado.web.HTTPError(403, f"this token may not use workspace {workspace!r}")
        return workspace

    async def orchestrate(self, fn: Callable[[Any], Any]) -> Any:
        return await asyncio.wrap_future(self.state.orchestrator.call(fn))


def _tags(body: dict, name: str) -> Any:
    """`...` when the body leaves `name` out (unchanged), else its value (None clears it)."""
    return body[name] if name in body else ...


class PoolsHandler(_PoolHandler):
    async def get(self) -> None:
        workspace = self.workspace()
        self.write_json({"pools": await self.orchestrate(lambda o: o.pools.list_pools(workspace))})

    async def post(self) -> None:
        workspace = self.workspace()
        body = self.body_json()
        settings = body.get("set") or {}
        if not isinstance(settings, dict):
            raise BadRequest("'set' must be an object of field -> value")
        pool = await self.orchestrate(lambda o: o.pools.create_pool(
            workspace, body.get("name"), body.get("type"), settings, body.get("modules"),
            body.get("provides"), body.get("accepts")))
        self.write_json(pool, 201)


class PoolHandler(_PoolHandler):
    async def get(self, name: str) -> None:
        workspace = self.workspace()
        self.write_json(await self.orchestrate(lambda o: o.pools.get_pool(workspace, name)))

    async def patch(self, name: str) -> None:
        workspace = self.workspace()
        body = self.body_json()
        settings, unset = body.get("set") or {}, body.get("unset") or []
        if not isinstance(settings, dict) or not isinstance(unset, list):
            raise BadRequest("'set' must be an object and 'unset' a list of field names")
        modules = body.get("modules")
        provides, accepts = _tags(body, "provides"), _tags(body, "accepts")
        self.write_json(await self.orchestrate(lambda o: o.pools.update_pool(
            workspace, name, settings, unset, modules, provides, accepts)))

    async def delete(self, name: str) -> None:
        workspace = self.workspace()
        await self.orchestrate(lambda o: o.pools.delete_pool(workspace, name))
        self.write_json({"deleted": name})


class PoolStateHandler(_PoolHandler):
    """POST api/pools/<name>/enable | disable."""

    async def post(self, name: str, action: str) -> None:
        workspace = self.workspace()
        self.write_json(await self.orchestrate(lambda o: o.pools.set_enabled(workspace, name, action == "enable")))


class LaunchesHandler(_PoolHandler):
    async def get(self, name: str) -> None:
        workspace = self.workspace()
        limit = int(self.query_number("limit", 50, 1, 1000, integer=True))  # type: ignore[arg-type]
        self.write_json({"launches": await self.orchestrate(lambda o: o.pools.launches(workspace, name, limit))})


class PoolsExportHandler(_PoolHandler):
    """GET: the workspace's pools as `pools import` takes them; POST {pools: [...]}: import them."""

    async def get(self) -> None:
        workspace = self.workspace()
        self.write_json({"pools": await self.orchestrate(lambda o: o.pools.export_pools(workspace))})

    async def post(self) -> None:
        workspace = self.workspace()
        pools = self.body_json().get("pools")
        self.write_json({"imported": await self.orchestrate(lambda o: o.pools.import_pools(workspace, pools))})


def pool_routes(state: ServerState) -> list[tuple[str, type, dict]]:
    kw = {"state": state}
    return [
        ("api/pools", PoolsHandler, kw),
        ("api/pools-export", PoolsExportHandler, kw),
        (rf"api/pools/({POOL})", PoolHandler, kw),
        (rf"api/pools/({POOL})/(enable|disable)", PoolStateHandler, kw),
        (rf"api/pools/({POOL})/launches", LaunchesHandler, kw),
    ]

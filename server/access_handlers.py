"""Service tokens over HTTP: `GET/POST api/tokens`, `POST api/tokens/<id>/revoke`.

Layer: a handler module, on the HTTP base (http_base.py); server/routes.py mounts it. Tokens are
written by the orchestrator's `tokens` component; the server's TokenBook (server/tokens.py) is
updated here, on the I/O loop, once the write has committed.
"""

from __future__ import annotations

import asyncio

from .errors import BadRequest, Forbidden
from .http_base import ApiHandler
from .state import ServerState
from .store.tokens import list_tokens
from .tokens import REVOKED_CLOSE_CODE


class _TokenAdmin(ApiHandler):
    def prepare_admin(self) -> None:
        # Only who owns the server (the super token, a Jupyter user) manages its tokens.
        if self.principal.kind not in ("super", "jupyter", "anonymous"):
            raise Forbidden("only the super token (or a Jupyter user) may manage tokens")


def _tags(value: object) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, list) and v and all(isinstance(x, str) and x for x in v)
            for k, v in value.items()):
        raise BadRequest("'tags' must be an object of non-empty lists of strings: {\"team\": [\"ml\"]}")
    return value


class TokensHandler(_TokenAdmin):
    async def get(self) -> None:
        self.prepare_admin()
        self.write_json({"tokens": await self.state.read(list_tokens)})

    async def post(self) -> None:
        self.prepare_admin()
        body = self.body_json()
        name, workspaces = body.get("name"), body.get("workspaces")
        if not isinstance(name, str):
            raise BadRequest("'name' is required")
        if workspaces is not None and not (isinstance(workspaces, list) and all(isinstance(p, str) for p in workspaces)):
            raise BadRequest("'workspaces' must be a list of workspace names or patterns")
        tags = _tags(body.get("tags"))
        may_ship_code = body.get("may_ship_code", False)
        if not isinstance(may_ship_code, bool):
            raise BadRequest("'may_ship_code' must be true or false")
        by = self.principal.name
        token, row = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda o: o.tokens.create(name, workspaces=workspaces, tags=tags, may_ship_code=may_ship_code, by=by)))
        self.state.tokens.add(row)
        shown = {key: value for key, value in row.items() if key != "token_hash"}
        self.write_json({**shown, "token": token}, 201)


class RevokeTokenHandler(_TokenAdmin):
    async def post(self, token_id: str) -> None:
        self.prepare_admin()
        revoked = await asyncio.wrap_future(self.state.orchestrator.call(lambda o: o.tokens.revoke(token_id)))
        for socket in self.state.tokens.revoke(revoked["token_hash"]):
            socket.close(REVOKED_CLOSE_CODE, "token revoked")
        self.write_json({"id": revoked["id"], "name": revoked["name"], "revoked": True})


def token_routes(state: ServerState) -> list[tuple[str, type, dict]]:
    kw = {"state": state}
    return [("api/tokens", TokensHandler, kw),
            (r"api/tokens/(T[A-Za-z0-9]+)/revoke", RevokeTokenHandler, kw)]

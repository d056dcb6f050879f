"""The server extension: routes under base_url, Jupyter auth, the internal token, WebSocket auth."""

from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect


async def _ws_roundtrip(ws, request: dict) -> dict:
    await ws.write_message(json.dumps(request))
    while True:
        frame = json.loads(await ws.read_message())
        for message in frame if isinstance(frame, list) else [frame]:
            if message.get("re") == request["id"]:
                return message


async def test_routes_under_base_url_with_jupyter_auth(coflux_ext, jp_fetch, jp_base_url, http_server_client):
    assert jp_base_url == "/a%40b/"
    r = await jp_fetch("coflux", "api", "health")
    health = json.loads(r.body)
    assert r.code == 200 and health["ok"] is True and health["orchestrator"]["alive"] is True
    r = await jp_fetch("coflux", "api", "workflows")
    assert json.loads(r.body) == {"workflows": []}

    # Not mounted outside base_url.
    with pytest.raises(HTTPClientError) as e:
        await http_server_client.fetch("/coflux/api/health", headers={"Authorization": "token x"})
    assert e.value.code == 404

    # POST with the Jupyter token (no XSRF needed for token auth) reaches the handler.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "runs", method="POST", body=json.dumps({"module": "m", "target": "w"}))
    assert e.value.code == 404
    assert json.loads(e.value.response.body)["error"]["code"] == "not_found"


@pytest.mark.parametrize("header", ["", "token wrong", "bearer nope"])
async def test_forbidden_without_valid_auth(coflux_ext, jp_fetch, header):
    for method, body in (("GET", None), ("POST", "{}")):
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("coflux", "api", "runs", method=method, body=body, headers={"Authorization": header})
        assert e.value.code == 403, (method, header)


async def test_whoami_is_the_jupyter_user_or_the_internal_token(coflux_ext, jp_fetch):
    me = json.loads((await jp_fetch("coflux", "api", "whoami")).body)
    assert me["kind"] == "jupyter" and me["name"] and me["workspaces"] is None
    internal = {"Authorization": f"token {coflux_ext.state.token}"}
    me = json.loads((await jp_fetch("coflux", "api", "whoami", headers=internal)).body)
    assert me["kind"] == "super"


async def test_internal_token_accepted(coflux_ext, jp_fetch):
    token = coflux_ext.state.token
    assert token and token != coflux_ext.serverapp.identity_provider.token
    for scheme in ("token", "Bearer"):
        r = await jp_fetch("coflux", "api", "health", headers={"Authorization": f"{scheme} {token}"})
        assert r.code == 200
    # A POST with the internal token needs no XSRF cookie either.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "runs", method="POST", body=json.dumps({"module": "m", "target": "w"}),
                       headers={"Authorization": f"token {token}"})
    assert e.value.code == 404
    # Only for the coflux routes: Jupyter's own API does not take it.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("api", "kernels", headers={"Authorization": f"token {token}"})
    assert e.value.code == 403


async def test_a_service_token_works_inside_jupyter_with_its_scope(coflux_ext, jp_fetch):
    """A Jupyter user makes a service token (as with `coflux tokens create`); a worker or CI job
    then uses it against the Jupyter-mounted routes, limited to its workspaces, until revoked."""
    made = json.loads((await jp_fetch("coflux", "api", "tokens", method="POST", body=json.dumps(
        {"name": "team-ci", "workspaces": ["team/*"]}))).body)
    scoped = {"Authorization": f"token {made['token']}"}
    me = json.loads((await jp_fetch("coflux", "api", "whoami", headers=scoped)).body)
    assert me["kind"] == "service" and me["name"] == "team-ci" and me["workspaces"] == ["team/*"]
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "runs", method="POST", headers=scoped,
                       body=json.dumps({"module": "m", "target": "w", "workspace": "default"}))
    assert e.value.code == 403 and "may not use workspace 'default'" in e.value.response.body.decode()
    # It manages no tokens, and once revoked it is refused.
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "tokens", headers=scoped)
    assert e.value.code == 403
    await jp_fetch("coflux", "api", "tokens", made["id"], "revoke", method="POST", body="{}")
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "whoami", headers=scoped)
    assert e.value.code == 403


async def test_websocket_requires_auth(coflux_ext, jp_ws_fetch):
    with pytest.raises(HTTPClientError) as e:
        await jp_ws_fetch("coflux", "api", "ws", headers={"Authorization": ""})
    assert e.value.code == 403
    with pytest.raises(HTTPClientError) as e:
        await jp_ws_fetch("coflux", "api", "ws", headers={"Authorization": "token wrong"})
    assert e.value.code == 403

    for headers in (None, {"Authorization": f"token {coflux_ext.state.token}"}):
        ws = await jp_ws_fetch("coflux", "api", "ws", headers=headers)
        assert (await _ws_roundtrip(ws, {"id": 1, "op": "ping"}))["ok"] == {"pong": True}
        reply = await _ws_roundtrip(ws, {"id": 2, "op": "subscribe", "params": {"topic": "run:Rnope"}})
        assert reply["err"]["code"] == "not_found"
        ws.close()


async def test_kernel_environment_and_database(coflux_ext, jp_serverapp, jp_root_dir, jp_http_port):
    # What kernels inherit: the coflux URL under base_url, and the internal token.
    assert os.environ["COFLUX_SERVER"] == f"http://localhost:{jp_http_port}/a%40b/coflux/"
    assert os.environ["COFLUX_TOKEN"] == coflux_ext.state.token
    # Default database: a SQLite file under the server's root directory.
    assert coflux_ext.state.db_url == f"sqlite:///{jp_root_dir}/.coflux/coflux.db"
    assert (jp_root_dir / ".coflux" / "coflux.db").exists()

    # The URL works as is for a client holding the token (what `%load_ext coflux` does).
    url = os.environ["COFLUX_SERVER"].replace("http", "ws", 1) + "api/ws"
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {os.environ['COFLUX_TOKEN']}"}))
    assert (await _ws_roundtrip(ws, {"id": 1, "op": "ping"}))["ok"] == {"pong": True}
    ws.close()
    with pytest.raises(HTTPClientError) as e:
        await websocket_connect(url)
    assert e.value.code == 403

    await coflux_ext.stop_extension()
    assert not coflux_ext.state.started
    assert "COFLUX_TOKEN" not in os.environ or os.environ["COFLUX_TOKEN"] != coflux_ext.state.token


def _password_config() -> dict:
    from jupyter_server.auth import passwd

    return {"ServerApp": {"jpserver_extensions": {"coflux_jupyter": True}, "token": ""},
            "PasswordIdentityProvider": {"hashed_password": passwd("secret")}}


@pytest.mark.parametrize("jp_server_config", [_password_config()])
async def test_password_server_still_gives_kernels_a_token(coflux_ext, jp_fetch, jp_ws_fetch):
    # Jupyter has no token here (password login only): the internal token is what kernels use.
    assert not coflux_ext.serverapp.identity_provider.token
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "health", headers={"Authorization": ""})
    assert e.value.code == 403
    auth = {"Authorization": f"token {os.environ['COFLUX_TOKEN']}"}
    assert (await jp_fetch("coflux", "api", "health", headers=auth)).code == 200
    ws = await jp_ws_fetch("coflux", "api", "ws", headers=auth)
    assert (await _ws_roundtrip(ws, {"id": 7, "op": "ping"}))["ok"] == {"pong": True}
    ws.close()


@pytest.mark.parametrize("jp_server_config", [{"ServerApp": {"jpserver_extensions": {"coflux_jupyter": True},
                                                             "authorizer_class": "jx_helpers.ReadOnlyAuthorizer"}}])
async def test_jupyter_authorizer_applies(coflux_ext, jp_fetch, jp_ws_fetch):
    # Users that may only read can look at runs but not submit (which runs code) or open the socket.
    assert (await jp_fetch("coflux", "api", "runs")).code == 200
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("coflux", "api", "runs", method="POST", body="{}")
    assert e.value.code == 403
    with pytest.raises(HTTPClientError) as e:
        await jp_ws_fetch("coflux", "api", "ws")
    assert e.value.code == 403
    # Kernels of this server hold the internal token and are not subject to it.
    ws = await jp_ws_fetch("coflux", "api", "ws", headers={"Authorization": f"token {coflux_ext.state.token}"})
    ws.close()

"""The coflux server inside Jupyter Server: same handlers, Jupyter's auth, orchestrator in-process.

The routes of `coflux_server.routes.route_table` are mounted under `{base_url}coflux/`, and Studio's
page at `{base_url}coflux/` (its files under `{base_url}coflux/static/`). Each handler is
re-based on Jupyter's handler classes, so the login cookie, Jupyter's token, XSRF and origin checks
apply. Kernels started by this server get `COFLUX_SERVER`/`COFLUX_TOKEN` (and `COFLUX_JUPYTER_MOUNT`,
the same URL, so their run views use the mount's path) in their environment; the token is an
internal one (Jupyter may use a password instead of a token), accepted only by these
routes.

Layer: the Jupyter extension, above the server's routes and state (coflux_server), which it
mounts inside Jupyter Server.
"""

from __future__ import annotations

import hmac
import inspect
import os
import secrets
import urllib.parse
from typing import Any

import tornado.web
import tornado.websocket
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler, AuthenticatedFileHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Float, List, TraitError, Unicode, validate

from coflux_server.pools.auth import authenticate_launch
from coflux_server.pools.runtime import launcher_types
from coflux_server.principal import attach
from coflux_server.routes import route_table
from coflux_server.state import ServerState
from coflux_server.studio_handlers import STATIC_DIR, studio_page

JUPYTER_MOUNT_ENV = "COFLUX_JUPYTER_MOUNT"  # read by coflux.widgets
KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
WILDCARD_IPS = ("", "0.0.0.0", "::", "*")
# What the authorizer is asked for: submitting runs (or serving as a worker) runs code.
AUTH_RESOURCE = "coflux"


class _CofluxAuthMixin:
    """Accepts coflux's own tokens before Jupyter's authentication: the extension's internal
    token, a service token (`coflux tokens create`, with its scope and rights) and a launched
    worker's credential (pools); any other token goes on to Jupyter's."""

    state: ServerState
    token_id: str | None = None  # the service token this request authenticated with

    def _internal_token_user(self) -> User | None:
        header = self.request.headers.get("Authorization", "")  # type: ignore[attr-defined]
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() not in ("token", "bearer") or not given:
            return None
        if hmac.compare_digest(given.encode(), self.state.token.encode()):
            return User(username="coflux-token", name="coflux-token")
        holder = self.state.tokens.lookup(given)
        if holder is not None:
            attach(self, holder.principal)
            self.token_id = holder.id
            return User(username=holder.principal.name, name=holder.principal.name)
        if authenticate_launch(self, self.state, given):  # a worker a pool launched
            return User(username="coflux-launch", name="coflux-launch")
        return None

    def _accept_internal_token(self) -> bool:
        user = self._internal_token_user()
        if user is None:
            return False
        # Header tokens cannot be sent cross-site by a browser, so no XSRF/origin checks are needed.
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        self.current_user = self._jupyter_current_user = user  # type: ignore[attr-defined]
        return True

    async def _check_authorized(self, action: str) -> None:
        # Jupyter's Authorizer (e.g. JupyterHub's read-only sharing) decides; the default allows all.
        handler: Any = self
        allowed = handler.authorizer.is_authorized(handler, handler.current_user, action, AUTH_RESOURCE)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            raise tornado.web.HTTPError(403, f"not authorized to {action} {AUTH_RESOURCE}")


def jupyterize(handler: type) -> type:
    """Return `handler` re-based on Jupyter's API or WebSocket handler classes."""
    if issubclass(handler, tornado.websocket.WebSocketHandler):
        return _jupyterize_websocket(handler)

    async def prepare(self: Any) -> None:
        if not self._accept_internal_token():
            # handler.prepare (AuthRequired) awaits APIHandler.prepare: Jupyter's auth (403, no
            # login redirect for API handlers), XSRF for cookie users, then requires current_user.
            await super(cls, self).prepare()
            await self._check_authorized("read" if self.request.method in ("GET", "HEAD") else "execute")
        authorized = getattr(self, "authorized", None)  # a handler's own setup once the caller may proceed
        if authorized is not None:
            authorized()

    cls = type("Jupyter" + handler.__name__, (_CofluxAuthMixin, handler, APIHandler), {"prepare": prepare})
    return cls


def _jupyterize_websocket(handler: type) -> type:
    # Same base order as Jupyter's kernel WebSocket: the mixin's ms ping settings and origin
    # check win over tornado's.
    class JupyterSocket(_CofluxAuthMixin, WebSocketMixin, handler, JupyterHandler):  # type: ignore[misc, valid-type]
        def set_default_headers(self) -> None:
            pass  # no CSP headers on a WebSocket upgrade

        async def prepare(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            if self._accept_internal_token():
                return
            # Called directly: WebSocketMixin.prepare would pass `_redirect_to_login` through
            # the shared handler's prepare, which does not take it.
            await JupyterHandler.prepare(self, _redirect_to_login=False)
            if not self.current_user:
                raise tornado.web.HTTPError(403, "authentication required")
            await self._check_authorized("execute")

        @ws_authenticated
        async def get(self, *args: Any, **kwargs: Any) -> None:
            return await super().get(*args, **kwargs)

    JupyterSocket.__name__ = JupyterSocket.__qualname__ = "Jupyter" + handler.__name__
    return JupyterSocket


class StudioPageHandler(_CofluxAuthMixin, JupyterHandler):
    """`{base_url}coflux/`: the Studio page, behind Jupyter's login (a visitor who is not logged
    in is redirected to it); the page then talks to the API with Jupyter's cookie and XSRF token."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self._check_authorized("read")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(studio_page(url_path_join(self.base_url, "coflux") + "/", "jupyter"))


class StudioRedirectHandler(JupyterHandler):
    """`{base_url}coflux` -> `{base_url}coflux/`: the page's relative URLs need the slash."""

    def get(self) -> None:
        self.redirect(url_path_join(self.base_url, "coflux") + "/")


class StudioStaticHandler(AuthenticatedFileHandler):
    """`{base_url}coflux/static/<file>`: the built front-end files (server/static), logged in only."""

    auth_resource = AUTH_RESOURCE

    def check_referer(self) -> bool:
        # Jupyter refuses Referer-less GETs against cross-site inclusion of user data; these are
        # the same built files for everyone, and `import()` from a widget's blob module sends none.
        return True

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")


def studio_handlers() -> list[tuple[str, type, dict]]:
    return [("/coflux", StudioRedirectHandler, {}),
            ("/coflux/", StudioPageHandler, {}),
            ("/coflux/static/(.*)", StudioStaticHandler, {"path": str(STATIC_DIR)})]


def kernel_server_url(serverapp: Any) -> str:
    """The URL kernels (and local workers) use: connection_url + `coflux/`, loopback for wildcards."""
    url = serverapp.connection_url
    if serverapp.ip in WILDCARD_IPS:
        parts = urllib.parse.urlsplit(url)
        url = parts._replace(netloc=f"127.0.0.1:{serverapp.port}").geturl()
    return url_path_join(url, "coflux") + "/"


class CofluxExtension(ExtensionApp):
    """Runs the coflux orchestrator in the Jupyter server and serves its API under `coflux/`."""

    name = "coflux_jupyter"
    description = "Coflux: durable workflows inside Jupyter"
    load_other_extensions = True

    data_dir = Unicode(  # overrides JupyterApp.data_dir, which extensions do not use
        "", config=True, help="Directory for coflux data (default: {root_dir}/.coflux).")
    db_url = Unicode(
        "", config=True,
        help="SQLAlchemy database URL (default: a SQLite file coflux.db in data_dir).")
    token = Unicode(
        "", config=True,
        help="Internal token accepted by the coflux routes besides Jupyter's auth and handed to "
             "kernels as COFLUX_TOKEN (default: random per server start).")
    reconnect_grace = Float(
        30.0, config=True,
        help="Seconds a disconnected worker or kernel may take to reconnect before its executions "
             "are abandoned.")

    launchers = List(
        Unicode(), config=True,
        help="Launcher types this server runs for pools (process, docker, kubernetes), as "
             "`coflux server --launcher`; default: COFLUX_LAUNCHER_TYPES, else none.")

    state: ServerState | None = None
    _saved_env: dict[str, str | None]

    @validate("launchers")
    def _valid_launchers(self, proposal: Any) -> list[str]:
        if not proposal["value"]:
            return []
        found = launcher_types(proposal["value"])
        if isinstance(found, str):
            raise TraitError(f"c.CofluxExtension.launchers {found}")
        return list(found)

    def initialize_settings(self) -> None:
        root = self.serverapp.root_dir
        data_dir = self.data_dir or os.path.join(root, ".coflux")
        db_url = self.db_url
        if not db_url:
            os.makedirs(data_dir, exist_ok=True)
            db_url = "sqlite:///" + os.path.abspath(os.path.join(data_dir, "coflux.db"))
        launchers = launcher_types(self.launchers)  # else COFLUX_LAUNCHER_TYPES
        if isinstance(launchers, str):
            raise TraitError(f"COFLUX_LAUNCHER_TYPES {launchers}")
        self.state = ServerState(db_url, token=self.token or secrets.token_urlsafe(32), auth=True,
                                 reconnect_grace=self.reconnect_grace, launchers=launchers, data_dir=data_dir)
        from coflux_server.blobs import LocalBlobStore

        self.state.blobs = LocalBlobStore(os.path.join(data_dir, "blobs"))
        self.settings["coflux_state"] = self.state
        self._saved_env = {key: os.environ.get(key) for key in ("COFLUX_SERVER", "COFLUX_TOKEN", JUPYTER_MOUNT_ENV)}
        self._export_env()  # refreshed once listening: the port may still change (port retries)

    def initialize_handlers(self) -> None:
        assert self.state is not None
        # ExtensionApp prefixes base_url.
        self.handlers.extend(("/coflux/" + path, jupyterize(handler), kwargs)
                             for path, handler, kwargs in route_table(self.state))
        self.handlers.extend(studio_handlers())

    def _export_env(self) -> None:
        # Kernels started by Jupyter inherit os.environ; `%load_ext coflux` reads these.
        assert self.state is not None
        os.environ["COFLUX_SERVER"] = kernel_server_url(self.serverapp)
        os.environ["COFLUX_TOKEN"] = self.state.token
        # A kernel whose client uses this URL shows runs through the mount's path: the browser's
        # own origin and Jupyter's login (coflux.widgets.endpoints), no token in the page.
        os.environ[JUPYTER_MOUNT_ENV] = os.environ["COFLUX_SERVER"]
        # Where workers that pools launch connect (with their launch credential, not Jupyter's login).
        self.state.orchestrator.pool_runtime.server_url = os.environ["COFLUX_SERVER"]

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        assert self.state is not None
        self.state.start()  # the IOLoop runs here, as ServerState.start requires
        self._export_env()
        try:
            serverapp.event_logger.add_listener(schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action)
        except Exception:  # older jupyter_server without the schema: restarts are then noticed by socket close
            self.log.debug("coflux: no kernel_actions events", exc_info=True)
        url = os.environ["COFLUX_SERVER"]
        self.log.info("coflux: orchestrator running at %s (database %s)", url, self.state.db_url)
        self.log.info("coflux: headless workers connect with `coflux worker --server %s --token <Jupyter's "
                      "token or c.CofluxExtension.token> MODULE...`", url)

    async def _on_kernel_action(self, logger: Any, schema_id: str, data: dict) -> None:
        if data.get("action") in ("restart", "shutdown") and data.get("status") == "success":
            # The kernel process is gone: what it was running is abandoned now (and retried where
            # the target allows) rather than after the reconnect grace period.
            kernel_id = data.get("kernel_id")
            self.log.info("coflux: kernel %s %s; its cell-defined targets are gone until the cell is re-run",
                          kernel_id, "restarted" if data["action"] == "restart" else "shut down")
            if kernel_id and self.state is not None and self.state.started:
                self.state.orchestrator.call(lambda orchestrator: orchestrator.workers.kernel_gone(str(kernel_id)))

    def current_activity(self) -> bool:
        # Running executions count as activity for Jupyter's idle shutdown
        # (`shutdown_no_activity_timeout`), so it does not stop the orchestrator mid-run.
        state = self.state
        return bool(state is not None and state.started and state.orchestrator.ws.active)

    async def stop_extension(self) -> None:
        # Never let a failure here stop the Jupyter server's own shutdown.
        try:
            if self.state is not None:
                self.log.info("coflux: stopping the orchestrator")
                await self.state.stop()
        except Exception:
            self.log.exception("coflux: error while stopping the orchestrator")
        finally:
            for key, value in getattr(self, "_saved_env", {}).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

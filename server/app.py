"""Headless server: the shared routes behind token authentication (`coflux server`).

Layer: the headless app, above the routes (routes.py) and the HTTP base; `coflux server` runs it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

import tornado.web
from tornado.log import access_log

from .http_base import Unauthorized, redact_uri
from .pools.auth import authenticate_launch
from .principal import attach
from .routes import route_table
from .state import ServerState
from .studio_handlers import cookie_matches, cookie_name, studio_routes

log = logging.getLogger("coflux.server")

# HTTP limits of the headless server (Jupyter's own server has its own settings).
IDLE_TIMEOUT = 60.0  # seconds to send a request's headers, on a new or a kept-alive connection
BODY_TIMEOUT = 300.0  # seconds to send a body (only an authenticated client gets to send one)
MAX_HEADER_BYTES = 32 * 1024
# What an unauthenticated or unrouted request may send: API handlers stream their bodies and
# raise this to MAX_MESSAGE_BYTES once the client has authenticated (http_base.ApiHandler.prepare).
MAX_UNAUTHENTICATED_BODY = 64 * 1024
CHALLENGE = 'Token realm="coflux", Bearer realm="coflux"'


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# What a browser page on an allowed origin may send with its token (a notebook using this server).
CORS_HEADERS = "Authorization, Content-Type, Range, X-Requested-With, X-XSRFToken"
CORS_EXPOSED = "Content-Length, Content-Range, Content-Disposition, ETag"


class TokenAuthMixin:
    """Accepts `Authorization: token|bearer <T>`, `?token=<T>`, or Studio's login cookie.

    The token is the super token (compared by its SHA-256, so `--super-token-hash` works the
    same) or a service token (looked up in the server's in-memory TokenBook: one hash and one
    dict lookup per request or WebSocket connection). A service token's principal, with its
    workspace scope, is attached to the handler.

    A request authenticated by the cookie that changes something (POST, PUT, ...) must also send
    `X-Requested-With: coflux`: a cross-site form cannot set that header (CSRF), and the cookie is
    SameSite=Strict besides. Browser pages on another origin get CORS only when their origin is
    one of `--allow-origin`, and then only with a token: the cookie is never accepted cross-origin
    (no `Access-Control-Allow-Credentials`, and a WebSocket from another origin needs `?token=`)."""

    state: ServerState
    _csrf_refused = False
    token_id: str | None = None  # the service token this request authenticated with

    def _given_token(self) -> str:
        header = self.request.headers.get("Authorization", "")  # type: ignore[attr-defined]
        scheme, _, given = header.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            given = self.get_query_argument("token", "")  # type: ignore[attr-defined]
        return given.strip()

    def get_current_user(self) -> str | None:
        if not self.state.auth:
            return "anonymous"
        given = self._given_token()
        if given:
            if self.state.is_super_token(given):
                return "token"
            holder = self.state.tokens.lookup(given)
            if holder is not None:
                attach(self, holder.principal)
                self.token_id = holder.id
                return "service"
            if authenticate_launch(self, self.state, given):  # a launched worker's credential
                return "launch"
        request = self.request  # type: ignore[attr-defined]
        if cookie_matches(self.get_cookie(cookie_name(request.host), ""), self.state.super_hash):  # type: ignore[attr-defined]
            if request.method in SAFE_METHODS or request.headers.get("X-Requested-With", "") == "coflux":
                return "cookie"
            self._csrf_refused = True
        return None

    def authentication_error(self) -> tornado.web.HTTPError:
        """401 with a `WWW-Authenticate` hint when no token came, 403 when a wrong one did."""
        if self._csrf_refused:
            return tornado.web.HTTPError(403, "a request authenticated by the login cookie that changes "
                                              "something needs the header 'X-Requested-With: coflux'")
        given = self._given_token()
        if given:
            return tornado.web.HTTPError(403, "this token was revoked" if self.state.tokens.is_revoked(given)
                                         else "wrong token")
        return Unauthorized("a token is required: send 'Authorization: token <T>'", CHALLENGE)

    def check_xsrf_cookie(self) -> None:
        return None

    def _origin_allowed(self, origin: str) -> bool:
        return origin.rstrip("/") in self.state.allow_origins

    def check_origin(self, origin: str) -> bool:
        # WebSockets: a browser page on an allowed origin may connect with `?token=` (it cannot
        # send headers); any other page only from the same origin (tornado's check).
        if self.current_user == "launch":  # type: ignore[attr-defined]  # a launched worker (no browser)
            return True
        if self._origin_allowed(origin) and self._given_token() and self.current_user in ("token", "service"):  # type: ignore[attr-defined]
            return True
        return super().check_origin(origin)  # type: ignore[misc]

    def set_default_headers(self) -> None:
        super().set_default_headers()  # type: ignore[misc]
        # Tornado sets the default headers before `initialize` (no state yet: `prepare` sets
        # them then) and again when an error reply clears the headers.
        if getattr(self, "state", None) is not None:
            self._cors_headers()

    def _cors_headers(self) -> None:
        request = self.request  # type: ignore[attr-defined]
        origin = request.headers.get("Origin")
        if origin and self.state.allow_origins and self._origin_allowed(origin) and self._given_token():
            self.set_header("Access-Control-Allow-Origin", origin)  # type: ignore[attr-defined]
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSED)  # type: ignore[attr-defined]
            self.add_header("Vary", "Origin")  # type: ignore[attr-defined]

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        request = self.request  # type: ignore[attr-defined]
        origin = request.headers.get("Origin")
        self._cors_headers()
        if (request.method == "OPTIONS" and origin and request.headers.get("Access-Control-Request-Method")
                and self._origin_allowed(origin)):
            self._preflight()  # browsers send no credentials with a preflight: answered for allowed origins
            return
        parent = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if parent is not None:
            await parent

    def _preflight(self) -> None:
        handler: Any = self
        handler.set_status(204)
        handler.set_header("Access-Control-Allow-Origin", handler.request.headers["Origin"])
        handler.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
        handler.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
        handler.set_header("Access-Control-Max-Age", "600")
        handler.add_header("Vary", "Origin")
        handler.finish()


def make_app(state: ServerState, base_url: str = "/") -> tornado.web.Application:
    prefix = "/" + base_url.strip("/")
    prefix = prefix.rstrip("/") + "/"
    table = route_table(state) + studio_routes(state, prefix)  # Studio: the page at the root
    routes = [(prefix + path, type("Token" + handler.__name__, (TokenAuthMixin, handler), {}), kwargs)
              for path, handler, kwargs in table]
    return tornado.web.Application(routes, log_function=log_request)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with `token` query values redacted (also for unrouted URIs)."""
    status = handler.get_status()
    method = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    request = handler.request
    method("%d %s %s (%s) %.2fms", status, request.method, redact_uri(request.uri or ""), request.remote_ip,
           1000.0 * request.request_time())


def _tune_gc() -> None:
    """The headless server is a process of its own, so it may tune the cyclic garbage collector:
    what is loaded at start (code, the working set) is exempt from it, and young objects are
    collected less often. A chatty fan-out spent about a tenth of the server's time in the
    collector, half with this (measured: benchmarks/bench_observe.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def serve(state: ServerState, host: str = "127.0.0.1", port: int = 7777,
                ready: Any = None, idle_timeout: float = IDLE_TIMEOUT) -> None:
    """Run until SIGINT/SIGTERM. `ready(url)` is called once the socket listens.

    A connection that has not sent complete request headers within `idle_timeout` seconds (a
    new one, or a kept-alive one between requests) is closed, so is one whose body takes longer
    than BODY_TIMEOUT; WebSockets keep themselves alive with pings instead."""
    state.start()
    _tune_gc()
    app = make_app(state)
    server = app.listen(port, address=host, xheaders=True, max_body_size=MAX_UNAUTHENTICATED_BODY,
                        idle_connection_timeout=idle_timeout, body_timeout=BODY_TIMEOUT,
                        max_header_size=MAX_HEADER_BYTES)
    actual_port = port
    if port == 0:
        actual_port = next(iter(server._sockets.values())).getsockname()[1]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{actual_port}/"
    if ready is not None:
        ready(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    server.stop()
    await state.stop()

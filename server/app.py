"""Headless server: the shared routes behind token authentication (`coflux server`)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from typing import Any

import tornado.web

from .handlers import route_table
from .state import MAX_MESSAGE_BYTES, ServerState

log = logging.getLogger("coflux.server")


class TokenAuthMixin:
    """Accepts `Authorization: token|bearer <T>` or `?token=<T>`; no cookies, so no XSRF."""

    state: ServerState

    def get_current_user(self) -> str | None:
        if not self.state.auth:
            return "anonymous"
        header = self.request.headers.get("Authorization", "")  # type: ignore[attr-defined]
        scheme, _, given = header.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            given = self.get_query_argument("token", "")  # type: ignore[attr-defined]
        if given and hmac.compare_digest(given.strip(), self.state.token):
            return "token"
        return None

    def check_xsrf_cookie(self) -> None:
        return None


def make_app(state: ServerState, base_url: str = "/") -> tornado.web.Application:
    prefix = "/" + base_url.strip("/")
    prefix = prefix.rstrip("/") + "/"
    routes = [(prefix + path, type("Token" + handler.__name__, (TokenAuthMixin, handler), {}), kwargs)
              for path, handler, kwargs in route_table(state)]
    return tornado.web.Application(routes)


async def serve(state: ServerState, host: str = "127.0.0.1", port: int = 7777,
                ready: Any = None) -> None:
    """Run until SIGINT/SIGTERM. `ready(url)` is called once the socket listens."""
    state.start()
    app = make_app(state)
    server = app.listen(port, address=host, xheaders=True, max_body_size=MAX_MESSAGE_BYTES)
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

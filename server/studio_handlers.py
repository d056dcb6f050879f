"""Studio, the web page: its HTML shell, its built files (server/static) and the headless login.

The page is a shell: a config script (`base`, `mode`), the built stylesheet and module script,
and a mount point; everything else happens in the browser against the API. The shell is the same
headless (at `/`) and inside Jupyter (at `{base_url}coflux/`, behind Jupyter's login, see
jupyter_ext/extension.py); only the authentication around it differs.

Headless login: `GET /?token=T` (the URL `coflux server` prints), or the form of the 401 page,
sets an HttpOnly SameSite=Strict cookie and redirects to the page. The cookie holds an HMAC of
the token, not the token, and authenticates every route (coflux_server.app.TokenAuthMixin).

Also here: `GET api/queue` for Studio's queue page (both modes mount it via `routes.route_table`).

Layer: a handler module, on the HTTP base (http_base.py) alone; the apps mount its routes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import tornado.web
from sqlalchemy import select
from sqlalchemy.engine import Engine

from .http_base import ApiHandler, AuthRequired
from .state import ServerState
from .store import schema as t

STATIC_DIR = Path(__file__).resolve().parent / "static"
BUILD_COMMAND = "npm --prefix jupyter_ext/frontend ci && npm --prefix jupyter_ext/frontend run build"
# esbuild's hashed chunk names (`chunk-ABCD1234.js`): their content never changes under one name.
_HASHED_NAME = re.compile(r"-[A-Z0-9]{8}\.(js|css|map)$")
# A Studio hash route kept across the login (`#/runs/R1/steps/R1:2`).
_HASH_ROUTE = re.compile(r"#/[A-Za-z0-9_\-/:.%]*")
_COOKIE_MESSAGE = b"coflux studio login v1"


def built() -> bool:
    """Whether the front-end build put Studio's files here."""
    return (STATIC_DIR / "studio.js").is_file()


def _config_json(base: str, mode: str) -> str:
    # `<` escaped: the JSON sits inside a <script> element.
    return json.dumps({"base": base, "mode": mode}).replace("<", "\\u003c")


_STYLE = ("body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}"
          "@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}"
          "code,input{background:#161b22;color:#e6edf3}}"
          ".cf-box{max-width:40em;margin:10vh auto;padding:0 1.5em}"
          "code{padding:.1em .3em;border-radius:3px;background:#f0f0f0}"
          "input{font:inherit;padding:.3em .5em;width:22em}button{font:inherit;padding:.3em .9em}")


def studio_page(base: str, mode: str) -> str:
    """The Studio shell for a page served at `base` (a path ending in `/`)."""
    head = [f'<script id="coflux-config" type="application/json">{_config_json(base, mode)}</script>']
    if built():
        head += ['<link rel="stylesheet" href="static/studio.css">',
                 '<script type="module" src="static/studio.js"></script>']
        body = '<div id="coflux-studio"></div>'
    else:
        body = ('<div id="coflux-studio"><div class="cf-box"><h1>Coflux Studio is not built</h1>'
                "<p>This server has no built front-end files (server/static/studio.js is missing). "
                "From the repository's root, build them with</p>"
                f"<p><code>{html.escape(BUILD_COMMAND)}</code></p>"
                "<p>then reload this page. The API and workers work without them.</p></div></div>")
        head.append(f"<style>{_STYLE}</style>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Coflux Studio</title>" + "".join(head) + "</head><body>" + body + "</body></html>\n")


def login_page(message: str) -> str:
    """The page a visitor without the token gets: a form asking for it, and no data."""
    note = f'<p role="alert"><strong>{html.escape(message)}</strong></p>' if message else ""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Coflux Studio: log in</title><style>{_STYLE}</style></head><body>"
            '<main class="cf-box"><h1>Coflux Studio</h1>' + note +
            "<p>This server needs its token. <code>coflux server</code> printed it, and a URL "
            "with it (<code>Studio: http://HOST:PORT/?token=...</code>) that logs you in.</p>"
            '<form method="post" action="">'
            '<label for="cf-token">Token</label> '
            '<input id="cf-token" name="token" type="password" autocomplete="current-password" autofocus required>'
            '<input id="cf-hash" name="hash" type="hidden" value=""> '
            '<button type="submit">Log in</button></form>'
            # Keep a deep link (`#/runs/<id>`) across the login: the fragment never reaches the server.
            "<script>document.getElementById('cf-hash').value=location.hash</script>"
            "</main></body></html>\n")


def cookie_name(host: str) -> str:
    """One cookie per port: browsers share cookies between ports of one host."""
    port = host.rsplit(":", 1)[1] if re.search(r":\d+$", host) else "default"
    return f"coflux-auth-{port}"


def cookie_value(token: str) -> str:
    """What the login cookie holds: derived from the token (a new token logs everyone out)."""
    return hmac.new(token.encode(), _COOKIE_MESSAGE, hashlib.sha256).hexdigest()


def cookie_matches(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), cookie_value(token).encode())


class StudioPageHandler(tornado.web.RequestHandler):
    """`GET {base}`: the Studio page (headless). Mounted with coflux_server.app.TokenAuthMixin, which
    provides `current_user` (token header/query or the login cookie) and `log_in`."""

    state: ServerState

    def initialize(self, state: ServerState, base: str) -> None:
        self.state = state
        self.base = base

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        if self.get_query_argument("token", ""):
            self._log_in(self.get_query_argument("token", ""), "")
            return
        if not self.current_user:
            self._refuse("")
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(studio_page(self.base, "headless"))

    def post(self) -> None:
        """The login form."""
        self.set_header("Cache-Control", "no-store")
        given, hash_route = self.get_body_argument("token", ""), self.get_body_argument("hash", "")
        if not given.strip():  # no token typed: the login page again (or the Studio, if logged in)
            if self.current_user:
                self.redirect(self.base + (hash_route if _HASH_ROUTE.fullmatch(hash_route) else ""))
            else:
                self._refuse("Enter the server's token.")
            return
        self._log_in(given, hash_route)

    def _log_in(self, given: str, hash_route: str) -> None:
        if not self.state.auth:
            self.redirect(self.base)
            return
        if not self.state.is_super_token(given.strip()):
            self._refuse("That token is not right.", 403)
            return
        self.set_cookie(cookie_name(self.request.host), cookie_value(self.state.super_hash), path=self.base,
                        httponly=True, samesite="Strict", secure=self.request.protocol == "https")
        target = self.base + (hash_route if _HASH_ROUTE.fullmatch(hash_route) else "")
        self.redirect(target)

    def _refuse(self, message: str, status: int = 401) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(login_page(message))

    def check_xsrf_cookie(self) -> None:
        return None  # the login form posts no cookie-authenticated change


class StudioStaticHandler(AuthRequired, tornado.web.StaticFileHandler):
    """`GET {base}static/<file>`: the built front-end files, to authenticated visitors only."""

    state: ServerState

    def initialize(self, state: ServerState, path: str = str(STATIC_DIR)) -> None:  # type: ignore[override]
        self.state = state
        super().initialize(path=path)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        # Tornado refuses paths outside the root (403) and missing files (404); hidden files too.
        if any(part.startswith(".") for part in os.path.relpath(absolute_path, root).split(os.sep)):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def set_extra_headers(self, path: str) -> None:
        if _HASHED_NAME.search(path):
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        else:  # studio.js keeps its name across builds: revalidate (a 304 when unchanged)
            self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._challenge(kwargs)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"{status_code} {self._reason}\n")


def studio_routes(state: ServerState, base: str) -> list[tuple[str, type, dict]]:
    """The headless Studio routes, relative to the server's base (like `routes.route_table`)."""
    return [
        ("", StudioPageHandler, {"state": state, "base": base}),
        ("static/(.*)", StudioStaticHandler, {"state": state}),
    ]


# ---------------------------------------------------------------------- the queue (Studio's queue page)

MAX_QUEUE_LISTING = 5000
_IN_CHUNK = 500  # ids per `IN (...)`: far below every database's limit of bound parameters


def _created_at(engine: Engine, ids: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    with engine.connect() as db:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            found.update((row.id, row.created_at) for row in db.execute(
                select(t.executions.c.id, t.executions.c.created_at).where(t.executions.c.id.in_(chunk))))
    return found


class QueueHandler(ApiHandler):
    """`GET api/queue?limit=N`: executions that have not started, oldest first, and why each waits.

    `{"queue": [{id, run, step, module, target, type, attempt, parent, created_at, execute_after,
    assigned, session, worker, waiting}], "total": n}`: `total` counts all of them, `queue` holds
    at most `limit` (default 500)."""

    async def get(self) -> None:
        limit = int(self.query_number("limit", 500, 1, MAX_QUEUE_LISTING, integer=True))  # type: ignore[arg-type]
        total, entries = await asyncio.wrap_future(self.state.orchestrator.call(
            lambda orchestrator: orchestrator.queue.queue_listing(limit)))
        created = await self.state.read(_created_at, [entry["id"] for entry in entries])
        for entry in entries:
            entry["created_at"] = created.get(entry["id"])
        entries.sort(key=lambda entry: (entry["created_at"] or 0.0, entry["id"]))
        self.write_json({"queue": entries, "total": total})


def studio_api_routes(state: ServerState) -> list[tuple[str, type, dict]]:
    """API routes for Studio's pages, mounted in both modes (by `routes.route_table`)."""
    return [("api/queue", QueueHandler, {"state": state})]

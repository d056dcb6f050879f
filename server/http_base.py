"""The base of every HTTP handler of the server: authentication, JSON in and out, the error
replies, and the patterns the routes share. Handler modules build on this module and never on
each other (server/routes.py puts their routes together).

Layer: the server's HTTP base, under every handler module (handlers.py, blob_handlers.py,
observe_handlers.py, studio_handlers.py) and under the apps that mount them (app.py, the
Jupyter extension).

It holds no authentication logic of its own: `AuthRequired.prepare` only requires
`self.current_user`, which the headless app provides with a token check and Jupyter with its
own login.

Hygiene at this boundary (the same in both modes):
- API handlers stream their bodies (`stream_request_body`), so `prepare`, and with it
  authentication, runs right after the headers: nothing of a body is read, let alone buffered,
  before the client has authenticated; an authenticated client may send up to MAX_MESSAGE_BYTES.
- Query values and JSON bodies are checked here, and a bad one is a 400 that says what is wrong;
  JSON nested deeper than MAX_JSON_DEPTH is refused (HTTP and WebSocket alike), so no JSON walker
  behind this boundary (json.dumps in the orchestrator thread) can run out of recursion.
- Replies never carry internal exception text: an unexpected failure is logged with its
  traceback and answered with a generic `internal` error.
- Logged request lines have the `token` query parameter redacted.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.parse
from types import TracebackType
from typing import Any

import tornado.web
from tornado.log import app_log

from .errors import BadRequest, DatabaseUnavailable
from .principal import Principal, principal_of
from .state import MAX_MESSAGE_BYTES, ServerState
from .store import queries

# Far below Python's recursion limit (1000), which json.dumps shares with the frames above it.
MAX_JSON_DEPTH = 500
RUN_ID_PATTERN = r"R[A-Za-z0-9]+"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 503: "unavailable"}


def redact_uri(uri: str) -> str:
    """`uri` with the value of every `token` query parameter replaced (also a percent-encoded
    name, which Tornado decodes too), for log lines."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = []
    for part in query.split("&"):
        name = urllib.parse.unquote_plus(part.split("=", 1)[0])
        parts.append("token=[redacted]" if name.strip().lower() == "token" else part)
    return path + "?" + "&".join(parts)


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in (node.values() if isinstance(node, dict) else node):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def parse_json(raw: str | bytes, what: str) -> Any:
    """Decode UTF-8 JSON from a client, or raise BadRequest saying why not."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")  # strictly: json.loads would take UTF-16 and lone surrogates
        except UnicodeDecodeError:
            raise BadRequest(f"{what} is not UTF-8 JSON") from None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not JSON: {exc}") from None
    # Only a text with that many brackets can be that deep: most frames skip the walk.
    if raw.count("[") + raw.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise BadRequest(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    # An escaped lone surrogate (\ud800) decodes to a str that no database driver can store.
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{what} has a string that is not valid Unicode (a lone surrogate)") from None
    return value


class Unauthorized(tornado.web.HTTPError):
    """401: no credentials were presented; `challenge` goes into `WWW-Authenticate`."""

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(401, message)
        self.challenge = challenge


class AuthRequired:
    @property
    def principal(self) -> Principal:
        """Who this authenticated request acts for (server/principal.py)."""
        return principal_of(self)

    async def prepare(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        parent = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if asyncio.iscoroutine(parent) or isinstance(parent, asyncio.Future):
            await parent
        if not self.current_user:  # type: ignore[attr-defined]
            raise self.authentication_error()

    def authentication_error(self) -> tornado.web.HTTPError:
        """403, as Jupyter's API answers; the headless app tells a missing token (401) apart."""
        return tornado.web.HTTPError(403, "authentication required")

    def _challenge(self, kwargs: dict) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Unauthorized):  # send_error cleared the headers: set it here
            self.set_header("WWW-Authenticate", exc.challenge)  # type: ignore[attr-defined]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._challenge(kwargs)
        super().write_error(status_code, **kwargs)  # type: ignore[misc]

    def _request_summary(self) -> str:
        request = self.request  # type: ignore[attr-defined]
        return f"{request.method} {redact_uri(request.uri or '')} ({request.remote_ip})"

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # type: ignore[misc]  # a warning line, via _request_summary
        else:  # tornado's own line would print repr(request), with the URI as sent
            app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))


def encode_json(payload: Any) -> str:
    """`payload` as a compact JSON reply, with each `queries.RawJSON` (stored JSON text) written
    in as it is. Each is first encoded as a placeholder string carrying a per-reply random
    marker, then replaced; should the marker turn up in any other string of the payload (more
    placeholders found than were made, or out of order), the texts are decoded and encoded the
    ordinary way instead."""
    from os import urandom

    raws: list[str] = []
    marker = urandom(6).hex()

    def placeholder(value: Any) -> str:
        if value.__class__ is not queries.RawJSON:
            raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
        raws.append(value.text)
        return f"\0{marker}{len(raws) - 1}\0"

    text = json.dumps(payload, separators=(",", ":"), check_circular=False, default=placeholder)
    if not raws:
        return text
    # The placeholders in the order they were encoded: "\u0000<marker><index>\u0000".
    parts = text.split(f'"\\u0000{marker}')
    if len(parts) == len(raws) + 1:
        out = [parts[0]]
        for index, part in enumerate(parts[1:]):
            number, found, rest = part.partition('\\u0000"')
            if not found or number != str(index):
                break
            out.append(raws[index])
            out.append(rest)
        else:
            return "".join(out)
    return json.dumps(payload, separators=(",", ":"), check_circular=False, default=_decoded)


def _decoded(value: Any) -> Any:
    if value.__class__ is not queries.RawJSON:
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
    return value.decode()


@tornado.web.stream_request_body
class ApiHandler(AuthRequired, tornado.web.RequestHandler):
    state: ServerState

    def initialize(self, state: ServerState) -> None:
        self.state = state
        self._body = bytearray()
        self._body_too_large = False

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()  # authentication: before any byte of the body is read
        length = self.request.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > MAX_MESSAGE_BYTES:
            raise tornado.web.HTTPError(413, f"request body too large (at most {MAX_MESSAGE_BYTES} bytes)")
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if set_max_body_size is not None:  # the server's own limit is for unauthenticated clients
            set_max_body_size(MAX_MESSAGE_BYTES)

    def data_received(self, chunk: bytes) -> None:
        if self._body_too_large or len(self._body) + len(chunk) > MAX_MESSAGE_BYTES:
            self._body_too_large = True  # a chunked body past the limit: dropped, refused in body_json
            self._body.clear()
            return
        self._body += chunk

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode_json(payload))

    def body_json(self) -> dict:
        if self._body_too_large:
            raise tornado.web.HTTPError(413, f"request body too large (at most {MAX_MESSAGE_BYTES} bytes)")
        payload = parse_json(bytes(self._body) or b"{}", "request body")
        if not isinstance(payload, dict):
            raise BadRequest("request body must be a JSON object")
        return payload

    def query_number(self, name: str, default: float | None, low: float, high: float,
                     integer: bool = False) -> float | None:
        """A numeric query argument within [low, high], or BadRequest naming it and the range."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        kind = "an integer" if integer else "a number"
        try:
            value: float = int(raw) if integer else float(raw)
        except ValueError:
            value = math.nan
        if not (low <= value <= high):  # also nan
            raise BadRequest(f"'{name}' must be {kind} from {low:g} to {high:g}, not {raw[:40]!r}")
        return value

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._challenge(kwargs)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        code = ERROR_CODES.get(status_code, "internal" if status_code >= 500 else "http_error")
        self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, DatabaseUnavailable):  # no traceback: the access log and the health check say it
            status = 503
            self.set_header("Retry-After", "1")
        elif isinstance(e, BadRequest):
            status = {"not_found": 404, "forbidden": 403}.get(e.code, 400)
        else:
            super()._handle_request_exception(e)
            return
        if not self._finished:
            self.write_json({"error": e.to_wire()}, status)

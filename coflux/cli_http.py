"""The command line's plain HTTP path to the server's JSON routes (`GET api/...`).

Read-only commands (`runs inspect`, `runs list`, `logs`, `metrics`, `queue`, `sessions list`,
`workspaces list`, the `runs result` of a finished run, step or attempt) need a request or two,
not a WebSocket session: this path starts without tornado or asyncio, so the command's time is
mostly the server's answer. Failures read
as the WebSocket client's do (same wording), so a user cannot tell which path answered.

For the same reason it does not import `socket` (plain http uses `_socket`, which `socket`
wraps) nor `urllib.parse` (its ipaddress import) unless a URL or a query needs the latter.

Layer: a leaf (the standard library only).
"""

from __future__ import annotations

import _socket  # the C module: `socket` itself (its enums, selectors) costs a fair part of a start
import io
import json
import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


def plain_http(command: F) -> F:
    """Mark a command that answers over this path: `main` then skips setting up logging (the
    WebSocket client sets it up if the command falls back to it)."""
    command.plain_http = True  # type: ignore[attr-defined]
    return command


class CommandError(Exception):
    """A failure the command reports in one line (exit status 2): no server, wrong token, or
    the server's own refusal (an unknown run, a bad filter)."""


RUN_ID = re.compile(r"R[A-Za-z0-9]+")  # the server's route pattern


def run_path(run_id: str, suffix: str = "") -> str:
    """`runs/<id><suffix>`; an id the routes cannot take is no run, as the server would say."""
    if not RUN_ID.fullmatch(run_id):
        raise CommandError(f"no run {run_id!r}")
    return f"runs/{run_id}{suffix}"


# RUN, RUN:STEP or RUN:STEP:ATTEMPT, as the server numbers them (`R7xk`, `R7xk:2`, `R7xk:2:1`).
TARGET = re.compile(r"(R[A-Za-z0-9]+)(?::([1-9][0-9]{0,8})(?::([1-9][0-9]{0,8}))?)?")


def parse_target(text: str, expected: str = "RUN, RUN:STEP or RUN:STEP:ATTEMPT") -> tuple[str, str | None, str | None]:
    """(run id, step id or None, attempt id or None) of `R`, `R:S` or `R:S:A`. Text without a
    colon that is no run id is "no run" (as the server says); one with a colon that is not of
    this form is a usage error."""
    match = TARGET.fullmatch(text)
    if match is None:
        if ":" not in text:
            raise CommandError(f"no run {text!r}")
        raise CommandError(f"malformed target {text!r}: expected {expected} (e.g. R7xk:2:1)")
    run_id, step, attempt = match.groups()
    step_id = None if step is None else f"{run_id}:{step}"
    return run_id, step_id, None if attempt is None else f"{step_id}:{attempt}"


def normalise_url(url: str) -> str:
    """`host:port`, `http://host:port/base` -> `http://host:port/base/` (as the WebSocket client)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/") else url + "/"


# http(s)://host[:port][/path] with a plain host name or address: split here; anything else
# (user info, IPv6, a query, odd characters) by urllib.parse.urlsplit.
_SIMPLE_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(/[A-Za-z0-9._~/%-]*)?", re.ASCII)
# Characters urllib.parse.quote (safe "/:") and quote_plus leave as they are.
_UNQUOTED_PATH = re.compile(r"[A-Za-z0-9_.~/:-]*", re.ASCII)
_UNQUOTED_VALUE = re.compile(r"[A-Za-z0-9_.~-]*", re.ASCII)


def _split_url(url: str) -> tuple[str, str | None, int | None, str, str]:
    """(scheme, hostname, port, path, netloc) as urllib.parse.urlsplit gives them."""
    match = _SIMPLE_URL.fullmatch(url)
    if match is not None and (match.group(3) is None or int(match.group(3)) <= 65535):
        scheme, host, port, path = match.groups()
        netloc = host if port is None else f"{host}:{port}"
        return scheme, host.lower(), None if port is None else int(port), path or "", netloc
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname, parts.port, parts.path, parts.netloc


def _quote_path(path: str) -> str:
    """urllib.parse.quote(path, safe="/:"): an execution id (`R7xk:2:1`) stays as it is, as
    the server's routes match it."""
    if _UNQUOTED_PATH.fullmatch(path):
        return path
    import urllib.parse

    return urllib.parse.quote(path, safe="/:")


def _encode_query(query: dict[str, Any]) -> str:
    """urllib.parse.urlencode(query)."""
    if all(isinstance(k, str) and isinstance(v, str | int | float) for k, v in query.items()):
        pairs = [(k, v if isinstance(v, str) else str(v)) for k, v in query.items()]
        if all(_UNQUOTED_VALUE.fullmatch(k) and _UNQUOTED_VALUE.fullmatch(v) for k, v in pairs):
            return "&".join(f"{k}={v}" for k, v in pairs)
    import urllib.parse

    return urllib.parse.urlencode(query)


class Api:
    """GETs of `{server}api/<path>` with the token, over one kept-alive connection.

    HTTP/1.1 over a socket by hand rather than `http.client`, whose import (the email package,
    ssl) costs more than the server takes to answer; replies of the coflux server carry a
    Content-Length, and chunked or close-delimited ones are read too."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 120.0) -> None:
        self.url = normalise_url(url)
        scheme, hostname, port, path, netloc = _split_url(self.url)
        if scheme not in ("http", "https") or not hostname:
            raise CommandError(f"not an http(s) server URL: {url!r}")
        self._https = scheme == "https"
        self._host = hostname
        self._port = port or (443 if self._https else 80)
        self._base = path
        self._head = (f"Host: {netloc}\r\n"
                      + (f"Authorization: token {token}\r\n" if token else "")
                      + "Accept: application/json\r\nUser-Agent: coflux-cli\r\n")
        self.timeout = timeout
        self._file: Any = None  # the connection's buffered reader; its socket is self._sock
        self._sock: Any = None  # a _socket.socket (an ssl.SSLSocket for https)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._file = self._sock = None

    def get(self, path: str, **query: Any) -> Any:
        """The JSON reply of `GET api/<path>?<query>` (None values left out)."""
        params = _encode_query({k: v for k, v in query.items() if v is not None})
        target = f"{self._base}api/{_quote_path(path)}" + (f"?{params}" if params else "")
        try:
            status, body = self._request(target)
        except (TimeoutError, OSError, ValueError) as exc:
            raise CommandError(f"cannot connect to the coflux server at {self.url} ({exc.__class__.__name__}: "
                               f"{exc}). Is `coflux server` running there?") from None
        if status in (401, 403):
            raise CommandError(f"the coflux server at {self.url} refused the token (HTTP {status}); "
                               "check --token / COFLUX_TOKEN")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if status != 200:
            error = payload.get("error") if isinstance(payload, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise CommandError(message or f"GET api/{path}: HTTP {status}")
        return payload

    def post(self, path: str, body: Any) -> Any:
        """The JSON reply of `POST api/<path>` with a JSON body; a refusal (4xx) as CommandError
        with the server's message."""
        data = json.dumps(body).encode()
        target = f"{self._base}api/{_quote_path(path)}"
        head = f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        try:
            status, reply = self._request(target, "POST", head, data)
        except (TimeoutError, OSError, ValueError) as exc:
            raise CommandError(f"cannot connect to the coflux server at {self.url} ({exc.__class__.__name__}: "
                               f"{exc}). Is `coflux server` running there?") from None
        try:
            payload = json.loads(reply)
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if status == 401:
            raise CommandError(f"the coflux server at {self.url} refused the token (HTTP 401); "
                               "check --token / COFLUX_TOKEN")
        if status not in (200, 201):
            raise CommandError(message or f"POST api/{path}: HTTP {status}")
        return payload

    def _connect(self) -> None:
        if self._https:
            import socket
            import ssl

            sock: Any = socket.create_connection((self._host, self._port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
            self._sock, self._file = sock, sock.makefile("rb")
            return
        sock = _create_connection(self._host, self._port, self.timeout)
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self._sock, self._file = sock, io.BufferedReader(_SocketReader(sock), 65536)

    def _request(self, target: str, method: str = "GET", head: str = "", body: bytes = b"") -> tuple[int, bytes]:
        request = f"{method} {target} HTTP/1.1\r\n{self._head}{head}\r\n".encode() + body
        for attempt in (1, 2):
            reused = self._sock is not None
            if not reused:
                self._connect()
            try:
                self._sock.sendall(request)  # type: ignore[union-attr]
                return self._response()
            except (ConnectionError, _Closed):
                self.close()
                if not reused or attempt == 2:  # only a kept-alive connection the server closed is retried
                    raise
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, bytes]:
        file = self._file
        status_line = file.readline(65537)
        if not status_line:
            raise _Closed("the server closed the connection")
        version, status, _ = status_line.decode("latin-1").split(" ", 2)
        if not version.startswith("HTTP/"):
            raise ValueError(f"not an HTTP reply: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while (line := file.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
        elif "content-length" in headers:
            body = file.read(int(headers["content-length"]))
        else:  # delimited by the end of the connection
            body = file.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status), body

    def _chunked(self) -> bytes:
        parts = []
        while size := int(self._file.readline(65537).split(b";", 1)[0].strip() or b"0", 16):
            parts.append(self._file.read(size))
            self._file.readline()
        while self._file.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(parts)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Closed(ConnectionError):
    """The server closed a kept-alive connection before answering."""


def _create_connection(host: str, port: int, timeout: float) -> Any:
    """`socket.create_connection((host, port), timeout)` with `_socket`: each address in turn,
    the last failure raised if none connects. An ASCII host name is passed as bytes, as the
    resolver takes it, which spares the idna codec's import."""
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")


class _SocketReader(io.RawIOBase):
    """A connected `_socket.socket` as a raw stream to buffer (what `socket.makefile("rb")`
    does with socket.SocketIO); closing it leaves the socket to its owner."""

    def __init__(self, sock: Any) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

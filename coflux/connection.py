"""A WebSocket connection to the coflux server, usable from any thread.

The socket lives in a daemon thread with its own asyncio loop, so it keeps working while a
notebook cell or user code blocks. Requests return concurrent futures; requests still waiting
for a reply when the socket drops are re-sent after reconnecting (the server de-duplicates), and
a `handshake` coroutine (a worker's `register`) runs first on every (re)connection.

Layer: under the client and the workers (protocol, errors).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - its exit hook must be registered before ours (below)
import itertools
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from . import protocol
from .errors import RemoteError

__all__ = ["Connection", "MessageTooLarge", "RemoteError", "ServerUnavailable"]

log = logging.getLogger("coflux.connection")

MAX_MESSAGE_BYTES = protocol.MAX_MESSAGE_BYTES  # what the server accepts in one message
MAX_INCOMING_BYTES = 2 * MAX_MESSAGE_BYTES  # a reply may wrap a value that was itself at the limit


class MessageTooLarge(ValueError):
    """A request is bigger than one protocol message may be."""


class ServerUnavailable(ConnectionError):
    """The server could not be reached (or refused our credentials)."""


def normalise_url(url: str) -> str:
    """`host:port`, `http://host:port/base` -> `http://host:port/base/`."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/") else url + "/"


def websocket_url(base_url: str) -> str:
    parts = urlsplit(normalise_url(base_url))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + "api/ws", "", ""))


class _Request:
    __slots__ = ("id", "op", "params", "future", "generation", "resend")

    def __init__(self, rid: int, op: str, params: dict, resend: bool) -> None:
        self.id, self.op, self.params = rid, op, params
        self.future: Future = Future()
        self.generation = -1
        self.resend = resend


Handshake = Callable[["Connection"], Awaitable[None]]

_open: weakref.WeakSet[Connection] = weakref.WeakSet()
_exiting = False


def _close_open_connections() -> None:
    """Close the connections a program left open when it ends (a script that never closed its
    `Client`). Their threads are daemons, so nothing would stop them; and once the thread pools
    shut down at exit, a reconnect in one of them (its DNS lookup runs in a pool) would die with
    `RuntimeError: cannot schedule new futures after shutdown` printed over the program's output.
    Runs among `threading`'s exit hooks, before `concurrent.futures`' own (hooks run in reverse)."""
    global _exiting
    _exiting = True
    for connection in list(_open):
        connection.close(timeout=2.0)


try:
    threading._register_atexit(_close_open_connections)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # not CPython, or imported while the interpreter exits
    import atexit

    atexit.register(_close_open_connections)


class Connection:
    def __init__(self, url: str, token: str | None, *, name: str = "coflux",
                 handshake: Handshake | None = None,
                 on_push: Callable[[dict], None] | None = None) -> None:
        self.url = normalise_url(url)
        self.token = token
        self.name = name
        self.handshake = handshake
        self.on_push = on_push
        self.on_disconnect: Callable[[], None] | None = None
        # Called on the loop thread after every connection is ready, with True on a reconnect
        # (viewers re-subscribe from where they were; see Client.subscribe).
        self.connect_hooks: list[Callable[[bool], None]] = []
        self.last_heard = 0.0  # monotonic time of the last frame from the server
        # Called on the loop thread once all messages of a frame from the server are dispatched
        # (a worker sends what they produced for its processes in one write each).
        self.frame_hooks: list[Callable[[], None]] = []
        self.dispatching = False  # (loop thread) a frame's messages are being dispatched
        self.disconnect_hooks: list[Callable[[], None]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"{name}-connection", daemon=True)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Request] = {}
        self._outbox: list[dict] = []
        self._ws: WebSocketClientConnection | None = None
        self._generation = 0
        self._ready = threading.Event()
        self._first_attempt = threading.Event()
        self._fatal: BaseException | None = None
        self._last_error: BaseException | None = None
        self._closing = False

    # ------------------------------------------------------------- public, any thread

    def start(self, wait: float | None = 10.0, fail_fast: bool = True) -> Connection:
        """Start the connection thread. With `fail_fast`, raise ServerUnavailable when the first
        attempt fails instead of retrying in the background."""
        self._fail_fast = fail_fast
        _open.add(self)
        self._thread.start()
        if wait is not None:
            self._first_attempt.wait(wait)
            if self._fatal is not None:
                raise self._fatal
            if fail_fast and not self._ready.wait(wait):
                raise ServerUnavailable(f"timed out connecting to the coflux server at {self.url}")
        return self

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def request(self, op: str, params: dict, *, resend: bool = True) -> Future:
        request = _Request(next(self._ids), op, params, resend)
        if self._closing:
            request.future.set_exception(ServerUnavailable("connection closed"))
            return request.future
        if self.on_loop_thread():
            self._submit(request)
        else:
            self._loop.call_soon_threadsafe(self._submit, request)
        return request.future

    def call(self, op: str, params: dict, timeout: float | None = None) -> Any:
        return self.request(op, params).result(timeout)

    def notify(self, op: str, params: dict) -> None:
        if self._closing:
            return
        if self.on_loop_thread():
            self._queue_frame({"op": op, "params": params})
        else:
            self._loop.call_soon_threadsafe(self._queue_frame, {"op": op, "params": params})

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """Schedule `fn(*args)` on the connection's loop (call on the loop thread)."""
        return self._loop.call_later(delay, fn, *args)

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Watch a file descriptor from the connection's loop (call on the loop thread)."""
        self._loop.add_reader(fd, callback)

    def remove_reader(self, fd: int) -> None:
        self._loop.remove_reader(fd)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the connection's loop thread."""
        if not self._closing:
            self._loop.call_soon_threadsafe(fn, *args)

    def call_soon_here(self, fn: Callable[..., Any], *args: Any) -> None:
        """(Loop thread) run `fn(*args)` after the callbacks already due and the I/O callbacks of
        the next loop iteration (a zero-delay timer): what they produce can go out with it."""
        self._loop.call_later(0, fn, *args)

    def close(self, timeout: float = 5.0) -> None:
        if self._closing:
            return
        self._closing = True
        _open.discard(self)
        try:
            self._loop.call_soon_threadsafe(self._shutdown)
        except RuntimeError:
            return
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout)

    # ------------------------------------------------------------- loop side

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            for request in self._pending.values():
                if not request.future.done():
                    request.future.set_exception(ServerUnavailable("connection closed"))
            self._pending.clear()
            self._loop.close()

    async def _main(self) -> None:
        delay = 0.2
        self._stop = asyncio.Event()
        while not self._closing:
            try:
                headers = {"Authorization": f"token {self.token}"} if self.token else {}
                ws = await websocket_connect(
                    HTTPRequest(websocket_url(self.url), headers=headers, connect_timeout=10,
                                request_timeout=10),
                    max_message_size=MAX_INCOMING_BYTES, ping_interval=20, ping_timeout=20)
                # Small request/reply frames: Nagle's algorithm would add ~40 ms per round trip.
                ws.protocol.set_nodelay(True)
            except HTTPClientError as exc:
                if exc.code in (401, 403):
                    self._fatal = ServerUnavailable(
                        f"the coflux server at {self.url} refused the token (HTTP {exc.code}); "
                        "check --token / COFLUX_TOKEN")
                else:
                    self._last_error = exc
                    if self._fail_fast_now():
                        self._fatal = ServerUnavailable(
                            f"cannot connect to the coflux server at {self.url}: HTTP {exc.code}")
                if self._fatal is not None:
                    self._first_attempt.set()
                    return
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except RuntimeError:
                if self._closing or _exiting:  # the program is ending: its thread pools are gone
                    return
                raise
            except (TimeoutError, OSError) as exc:
                self._last_error = exc
                if self._fail_fast_now():
                    self._fatal = ServerUnavailable(
                        f"cannot connect to the coflux server at {self.url} ({exc.__class__.__name__}: "
                        f"{exc}). Is `coflux server` running there?")
                    self._first_attempt.set()
                    return
                await self._sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            await self._session(ws)
            if self.on_disconnect is not None and not self._closing:
                try:
                    self.on_disconnect()
                except Exception:
                    log.exception("disconnect hook failed")
            if not self._closing:
                for hook in list(self.disconnect_hooks):
                    try:
                        hook()
                    except Exception:
                        log.exception("disconnect hook failed")

    def _fail_fast_now(self) -> bool:
        return getattr(self, "_fail_fast", True) and not self._first_attempt.is_set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _session(self, ws: WebSocketClientConnection) -> None:
        self._ws = ws
        self._generation += 1
        reader = asyncio.ensure_future(self._read(ws))
        try:
            if self.handshake is not None:
                try:
                    await self.handshake(self)
                except RemoteError as exc:
                    # The server understood and refused (e.g. an invalid registration): retrying
                    # the same handshake would be refused forever, so stop and say why.
                    self._fatal = ServerUnavailable(f"the coflux server at {self.url} refused this "
                                                    f"connection: {exc}")
                    self._closing = True
                    self._first_attempt.set()
                    return
            for request in sorted(self._pending.values(), key=lambda r: r.id):
                if request.generation != self._generation and request.resend:
                    if request.generation >= 0:  # the server may have done it: let it de-duplicate
                        request.params["resent"] = True
                    self._transmit(request)
                elif request.generation != self._generation:
                    request.future.set_exception(ServerUnavailable("connection to the server was lost"))
                    self._pending.pop(request.id, None)
            self._ready.set()
            reconnect = self._first_attempt.is_set()
            self._first_attempt.set()
            for hook in list(self.connect_hooks):
                try:
                    hook(reconnect)
                except Exception:
                    log.exception("connect hook failed")
            await reader
        except Exception:
            log.debug("connection session ended", exc_info=True)
        finally:
            self._ready.clear()
            self._ws = None
            reader.cancel()
            ws.close()

    async def request_async(self, op: str, params: dict) -> Any:
        """From the loop thread (handshakes): send now, even before the connection is ready."""
        request = _Request(next(self._ids), op, params, resend=False)
        self._pending[request.id] = request
        self._transmit(request)
        return await asyncio.wrap_future(request.future)

    def _submit(self, request: _Request) -> None:
        self._pending[request.id] = request
        if self._ws is not None and self._ready.is_set():
            self._transmit(request)

    def _transmit(self, request: _Request) -> None:
        request.generation = self._generation
        self._queue_frame({"id": request.id, "op": request.op, "params": request.params})

    def _queue_frame(self, message: dict) -> None:
        if self._ws is None:
            return  # notifications while disconnected are dropped; requests wait in _pending
        self._outbox.append(message)
        if len(self._outbox) == 1:
            # A zero-delay timer, not call_soon: it runs after the I/O callbacks of the next loop
            # iteration too, so what they send (another process's result, say) joins this frame
            # instead of costing the server a frame of its own. Nothing waits longer for it.
            self._loop.call_later(0, self._flush)

    def flush_now(self) -> None:
        """(Loop thread) write what is queued for the server now, not at the end of the iteration."""
        if self._outbox:
            self._flush()

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if not outbox or self._ws is None:
            return
        payload = json.dumps(outbox[0] if len(outbox) == 1 else outbox, separators=(",", ":"))
        if len(payload) > MAX_MESSAGE_BYTES:
            self._flush_one_by_one(outbox)
            return
        self._write(payload)

    def _flush_one_by_one(self, outbox: list[dict]) -> None:
        """Send a frame that would be too big message by message, refusing the ones that are too
        big on their own: the server would close the socket on them, and re-sending them after the
        reconnect would loop forever."""
        for message in outbox:
            payload = json.dumps(message, separators=(",", ":"))
            if len(payload) <= MAX_MESSAGE_BYTES:
                self._write(payload)
                continue
            request = self._pending.pop(message.get("id"), None) if "id" in message else None
            error = MessageTooLarge(
                f"{message.get('op')!r} is {len(payload) / 2**20:.1f} MiB, over the {MAX_MESSAGE_BYTES // 2**20} MiB "
                "limit of one message: pass large data as a file or a reference instead")
            if request is not None and not request.future.done():
                request.future.set_exception(error)
            else:
                log.error("dropped a notification: %s", error)

    def _write(self, payload: str) -> None:
        try:
            self._ws.write_message(payload)  # type: ignore[union-attr]
        except Exception:
            log.debug("write failed; will resend after reconnect", exc_info=True)

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while True:
            message = await ws.read_message()
            if message is None:
                return
            self.last_heard = time.monotonic()
            frame = json.loads(message)
            self.dispatching = True
            try:
                for item in frame if isinstance(frame, list) else [frame]:
                    self._dispatch(item)
            finally:
                self.dispatching = False
            for hook in self.frame_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("frame hook failed")

    def _dispatch(self, message: dict) -> None:
        if "re" in message:
            request = self._pending.get(message["re"])
            if request is None:
                return
            if "err" in message:
                error = message["err"] or {}
                if error.get("code") == "retry":
                    # The server rolled back or lost track of it: it may have done it (a `call`
                    # whose step was committed), so it must look for its earlier work.
                    request.params["resent"] = True
                    self._transmit(request)
                    return
                del self._pending[request.id]
                request.future.set_exception(RemoteError(error.get("code", "error"), error.get("message", "")))
            else:
                del self._pending[request.id]
                request.future.set_result(message.get("ok"))
            return
        if self.on_push is not None:
            try:
                self.on_push(message)
            except Exception:
                log.exception("push handler failed for %s", message.get("op"))

    def reconnect(self) -> None:
        """(Loop thread) drop the current socket: the connection comes back at once and runs its
        handshake again (a worker that was frozen re-registers before it trusts its queue)."""
        if self._ws is not None and not self._closing:
            self._ws.close()

    def _shutdown(self) -> None:
        self._closing = True
        self._flush()
        self._stop.set()
        if self._ws is not None:
            self._ws.close()

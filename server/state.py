"""Everything one server instance holds: store engine, orchestrator, live hub, read pool."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, text
from tornado.ioloop import IOLoop

from coflux import protocol

from .errors import INTERNAL_MESSAGE, DatabaseUnavailable
from .hub import Hub
from .orchestrator import Orchestrator
from .store import create_store_engine
from .store.availability import DatabaseStatus, is_unavailable
from .store.tokens import all_tokens
from .tokens import TokenBook, hash_token

MAX_MESSAGE_BYTES = protocol.MAX_MESSAGE_BYTES


class ServerState:
    def __init__(self, db_url: str, *, token: str | None = None, auth: bool = True,
                 reconnect_grace: float = 30.0, token_hash: str | None = None,
                 allow_origins: tuple[str, ...] = (), launchers: tuple[str, ...] = (),
                 data_dir: str | None = None) -> None:
        self.db_url = db_url
        # The super token: given, or known only by its SHA-256 (`--super-token-hash`: then the
        # server never sees it in plain), or generated.
        self.token: str | None = token or (None if token_hash else secrets.token_urlsafe(24))
        self.super_hash = (token_hash or hash_token(self.token or "")).lower()
        self.auth = auth
        self.tokens = TokenBook()  # service tokens, loaded at start
        # Origins whose pages may call this server from a browser (CORS); same-origin pages always may.
        self.allow_origins = frozenset(origin.rstrip("/") for origin in allow_origins)
        self.engine = create_store_engine(db_url)
        self.hub = Hub()
        self.orchestrator = Orchestrator(self.engine, self._deliver_from_thread,
                                         reconnect_grace=reconnect_grace)
        self.orchestrator.pool_runtime = _pool_runtime(launchers, data_dir)
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coflux-read")
        self._probe: asyncio.Future | None = None  # the health check's question to the database
        self._loop: IOLoop | None = None
        self.started = False
        self.blobs: Any = None  # a coflux_server.blobs.BlobStore; set by whoever knows the data directory

    @classmethod
    def for_data_dir(cls, data_dir: str, **kwargs: Any) -> ServerState:
        path = os.path.abspath(os.path.join(data_dir, "coflux.db"))
        kwargs.setdefault("data_dir", data_dir)
        return cls(f"sqlite:///{path}", **kwargs)

    def start(self) -> None:
        """Start the orchestrator; must be called on the I/O loop that serves the handlers."""
        self._loop = IOLoop.current()
        self.orchestrator.start()  # migrates the database first
        self.tokens.load(all_tokens(self.engine))
        self.started = True

    async def stop(self) -> None:
        if self.started:
            await asyncio.get_running_loop().run_in_executor(None, self.orchestrator.stop)
            self.started = False
        self._readers.shutdown(wait=False)
        self.engine.dispose()

    def is_super_token(self, given: str) -> bool:
        # Compared as hashes: the same check whether the server knows the token or only its hash.
        return bool(given) and hmac.compare_digest(hash_token(given).encode(), self.super_hash.encode())

    @property
    def database(self) -> DatabaseStatus:
        return self.orchestrator.database

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a read-only query function `fn(engine, *args)` off the I/O loop. A database out of
        reach raises DatabaseUnavailable (the client may ask again), and the health check hears
        of it."""
        try:
            value = await asyncio.get_running_loop().run_in_executor(self._readers, fn, self.engine, *args)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.database.failed(exc)
            raise DatabaseUnavailable() from exc
        self.database.reached()
        return value

    async def probe_database(self, timeout: float) -> dict:
        """Ask the database something trivial, waiting at most `timeout` seconds, and report since
        when it is out of reach (DatabaseStatus.report). One question at a time: while one stays
        unanswered (a host that does not answer at all), it is not asked again."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self.read(_select_one))
            self._probe.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, not logged
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), timeout)
        except DatabaseUnavailable:
            pass  # read() recorded it
        except TimeoutError:
            self.database.failed(f"no answer within {timeout:g} s")
        except Exception as exc:
            self.database.failed(exc)
        return self.database.report()

    # Called by the orchestrator thread after each committed batch.
    def _deliver_from_thread(self, out: list[tuple[Any, dict]], events: list[tuple[str, dict]]) -> None:
        loop = self._loop
        if loop is not None:
            loop.add_callback(self._deliver, out, events)

    def _deliver(self, out: list[tuple[Any, dict]], events: list[tuple[str, dict]]) -> None:
        per_peer: dict[Any, list[dict]] = {}
        for peer, message in out:
            per_peer.setdefault(peer, []).append(_public(message))
        if events:
            for peer, items in self.hub.route(events).items():
                per_peer.setdefault(peer, []).append({"op": "events", "events": items})
        for peer, messages in per_peer.items():
            peer.send_many(messages)


def _pool_runtime(launchers: tuple[str, ...], data_dir: str | None) -> Any:
    """Pools' launch runner (only for the launcher types allowed), credentials and secrets box."""
    import tempfile

    from .pools.runner import LaunchRunner
    from .pools.runtime import PoolRuntime
    from .pools.secrets import SecretBox

    base = os.path.abspath(data_dir) if data_dir else None
    runner = LaunchRunner(tuple(launchers), os.path.join(base or tempfile.gettempdir(), "launches")) \
        if launchers else None
    return PoolRuntime(runner=runner, secrets=SecretBox(os.path.join(base, "pool-secrets.key") if base else None))


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _public(message: dict) -> dict:
    """`message` as a client may see it: an `internal` error keeps its code, but its text (an
    exception from the database driver, with SQL) stays in the server's log."""
    error = message.get("err")
    if isinstance(error, dict) and error.get("code") == "internal" and error.get("message") != INTERNAL_MESSAGE:
        return {**message, "err": {"code": "internal", "message": INTERNAL_MESSAGE}}
    return message


def encode_frames(messages: list[dict]) -> list[str]:
    """One frame for all messages, or one per message when together they would exceed the
    limit (clients accept twice MAX_MESSAGE_BYTES, so any single reply fits)."""
    frame = json.dumps(messages[0] if len(messages) == 1 else messages, separators=(",", ":"))
    if len(frame) <= MAX_MESSAGE_BYTES or len(messages) == 1:
        return [frame]
    return [json.dumps(m, separators=(",", ":")) for m in messages]

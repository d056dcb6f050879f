"""The orchestrator: one thread, a working set, components and ordered rules.

Every state change goes through one thread that owns all database writes. Commands posted by
the I/O loop (submits, results, waits, worker changes) are drained in batches: each batch runs
in one transaction, then the replies and live events it produced are handed back to the loop.
Nothing is acknowledged before its transaction has committed. The thread sleeps on its queue,
or until the earliest timer (a delayed execution, a wait timeout, a worker's reconnect grace).

What it holds in memory is one object, the working set (working_set.py), rebuilt from the
database on recovery. Its behaviour is split into components with one job each (component.py),
which call each other through public methods: `workers` and `worker_state` (sessions and what
workers say of themselves), `submission` (runs, steps, attempts, memo), `queue` (admission,
ready queues, placement, assignment), `outcomes` (results and what follows them), `waiters`
(waits, pushes, callbacks, select), `telemetry`, `assets`, `feed` and `control` (cancel,
re-run, suspend, workspaces). The decisions are ordered rule lists in rules/ (admission,
placement, outcome): a newcomer finds where something is decided by reading one list.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from coflux.protocol import HOLDABLE_OPS, Event, Op

from ..errors import BadRequest, NotFound
from ..ids import is_input_id
from ..pools.runtime import PoolRuntime
from ..store import schema as t
from ..store.availability import DatabaseStatus, is_unavailable
from . import limits
from .assets import Assets
from .checkpoint import Checkpointer, tune_writer
from .control import Control
from .feed import Feed
from .inputs import Inputs
from .manifests import Manifests
from .model import Peer, RunInfo
from .outcomes import Outcomes
from .pools import Pools
from .resumption import Resumption
from .rows import pending_from_row, pending_query
from .scheduling import Queue
from .sessions import Workers
from .submission import Submission
from .telemetry import Telemetry
from .tokens import Tokens
from .waiters import Waiters
from .worker_state import WorkerState
from .working_set import WorkingSet
from .writes import WriteBuffer

log = logging.getLogger("coflux.orchestrator")

Deliver = Callable[[list[tuple[Peer, dict]], list[tuple[str, dict]]], None]

# Commands from one queue drain that share a transaction, at most.
MAX_BATCH = 5000
# Notifications that nobody waits on (no reply; scheduling does not depend on them): they wait
# up to HOLD seconds for other work to share its batch and commit (see `post`).
HOLDABLE = HOLDABLE_OPS
HOLD = 0.02

# The loop never sleeps longer than this, however far away the next timer is (a timer of years
# would overflow a thread wait, and a clock jump must not leave timers waiting forever).
MAX_SLEEP = 60.0


class _Stopped(Exception):
    """The orchestrator was stopped while it waited for the database to come back."""


def _replies(out: list, skip: set) -> list:
    """(peer, request id) of the replies in `out` to requests other than `skip`."""
    return [(peer, m["re"]) for peer, m in out if "re" in m and (peer, m["re"]) not in skip]


def _requests(batch: list) -> set:
    """(peer, request id) of the commands in a batch that expect a reply."""
    return {(c[1], c[2]) for c in batch if c and c[0] not in ("__call__", "__closed__") and c[2] is not None}


class Orchestrator:
    def __init__(self, engine: Engine, deliver: Deliver, *, reconnect_grace: float = 30.0) -> None:
        self.engine = engine
        self._deliver = deliver
        self.reconnect_grace = reconnect_grace
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held: deque[tuple] = deque()  # holdable notifications not handed to the loop yet
        self._held_lock = threading.Lock()
        self._hold_armed = False  # a wake-up of the loop is due within HOLD (or it was woken)
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0  # times the supervisor found the loop thread dead and started a new one
        self.transactions = 0  # batches committed (the benchmarks count them per step)
        self.last_error: str | None = None
        self._pending_peers: dict[str, Any] = {}  # session peers to re-attach after a failed recovery
        self._busy_since: float | None = None  # when the batch being processed began (health: a stuck loop)
        self.database = DatabaseStatus()  # since when the database is out of reach (health, read errors)
        self._seq = itertools.count()
        self._checkpointer: Checkpointer | None = None  # SQLite only (set by start)
        # One handler per operation of the protocol, `_on_<op>` (a missing one fails here, at start).
        # The components, one job each (component.py); they share the working set through this object.
        self.workers = Workers(self)  # worker sessions: register, declare, release, disconnect, expire
        self.worker_state = WorkerState(self)  # what workers say of their slots, starts and draining
        self.submission = Submission(self)  # runs, steps, attempts, memo
        self.queue = Queue(self)  # admission, ready queues, placement and assignment
        self.outcomes = Outcomes(self)  # results, what follows them (retry, recur, ...), a run's outcome
        self.waiters = Waiters(self)  # waits, pushes to running parents, callbacks, select
        self.telemetry = Telemetry(self)  # log lines and metric points, the search index
        self.feed = Feed(self)  # the durable event feed
        self.control = Control(self)  # cancel, re-run, suspend, workspaces
        self.resumption = Resumption(self)  # resume from failure: earlier attempts' children reused
        self.assets = Assets(self)
        self.manifests = Manifests(self)  # archiving registered modules
        self.tokens = Tokens(self)  # service tokens (created and revoked; the server's TokenBook authenticates)
        self.inputs = Inputs(self)  # prompts for a person, their answers
        self.pools = Pools(self)  # pools, launch decisions, launched workers' states
        self.pool_runtime = PoolRuntime()  # replaced by ServerState when the server runs launchers
        self._after: list[Callable[[], Any]] = []  # what runs once the batch has committed (launches)
        components = (self.workers, self.worker_state, self.submission, self.queue, self.outcomes,
                      self.waiters, self.telemetry, self.control, self.assets, self.inputs)
        # One handler per operation of the protocol, `on_<op>` of the component that owns it.
        self._handlers: dict[str, Callable[[Peer | None, Any, dict], None]] = {
            op: next(getattr(c, f"on_{op}") for c in components if hasattr(c, f"on_{op}")) for op in Op}
        self._reset_memory()

    # ----------------------------------------------------------------- lifecycle

    def _reset_memory(self) -> None:
        """A new, empty working set (start and recovery load it from the database)."""
        self.ws = WorkingSet()
        self._out: list[tuple[Peer, dict]] = []  # replies and pushes of this batch, sent after commit
        self._events: list[tuple[str, dict]] = []  # events of this batch, pushed after commit
        self.needs_schedule = True

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Run `fn` once the current batch has committed (never, if it rolls back)."""
        self._after.append(fn)

    def _run_after_commit(self) -> None:
        after, self._after = self._after, []
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("an after-commit action failed")

    def start(self) -> None:
        # One long-lived connection: the orchestrator is the only writer, and a pool checkout
        # per batch would cost more than the batch itself on the hot path.
        self._checkpointer = Checkpointer(self.engine) if self.engine.dialect.name == "sqlite" else None
        self._connection = self._connect()
        with self.engine.begin() as db:
            self.db = db
            self.w = WriteBuffer(db)
            self._load()
            self.w.flush()
        if self.pool_runtime.runner is not None:
            self.pool_runtime.runner.report = self.call
        self._run_after_commit()
        self._start_loop()
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._supervisor = threading.Thread(target=self._supervise, name="coflux-orchestrator-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def _start_loop(self) -> None:
        self._thread = threading.Thread(target=self._run, name="coflux-orchestrator", daemon=True)
        self._thread.start()

    def _supervise(self, interval: float = 0.5) -> None:
        """Restart the loop thread if it ever dies (the loop catches every Exception, so only a
        bug in its own error handling, or a BaseException, gets here). The dead thread held the
        working set: rebuild it from the database, tell waiters to ask again, and go on."""
        while not self._stopped.wait(interval):
            thread = self._thread
            if thread is None or thread.is_alive() or self._stopped.is_set():
                continue
            self.restarts += 1
            log.error("the orchestrator thread died (%s); restarting it (restart %d)",
                      self.last_error or "no error recorded", self.restarts)
            self._out, self._events = [], []
            try:
                self._recover_until_ok()
            except _Stopped:
                return
            self._deliver_out()
            self._start_loop()

    def health(self) -> dict:
        """Liveness of the loop thread, for `GET api/health`."""
        alive = self._thread is not None and self._thread.is_alive()
        busy_since = self._busy_since
        return {"alive": alive, "restarts": self.restarts, "last_error": self.last_error,
                "queued": self._queue.qsize(), "transactions": self.transactions,
                "busy_for": round(time.monotonic() - busy_since, 3) if busy_since is not None else 0.0}

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if getattr(self, "_checkpointer", None) is not None:
            self._checkpointer.stop()
        if getattr(self, "_connection", None) is not None:
            self._connection.close()

    def _connect(self) -> Any:
        connection = self.engine.connect()
        if self._checkpointer is not None:
            tune_writer(connection)
        return connection

    def post(self, op: str, peer: Peer | None = None, request_id: Any = None, params: dict | None = None) -> None:
        """Queue a command from any thread.

        A notification nobody waits on (a worker's `started`, most often, whose execution's result
        follows a moment later) does not wake the loop: it goes with the next command that does,
        in the same batch and commit, or at most HOLD seconds later (a timer on the calling
        thread's event loop; off an event loop, at once). That spares the loop a wake-up and a
        commit per step. The events it publishes go out after that commit."""
        command = (op, peer, request_id, params or {})
        if op not in HOLDABLE or request_id is not None:
            self._queue.put(command)
            return
        with self._held_lock:
            self._held.append(command)
            if self._hold_armed:
                return
            self._hold_armed = True
        try:
            asyncio.get_running_loop().call_later(HOLD, self._wake_for_held)
        except RuntimeError:  # not on an event loop: wake the loop now
            self._queue.put(())

    def _wake_for_held(self) -> None:
        # Most often a command has taken the held notifications along already: no wake-up then.
        if self._held:
            self._queue.put(())

    def _take_held(self) -> list:
        with self._held_lock:
            held = list(self._held)
            self._held.clear()
            self._hold_armed = False
        return held

    def call(self, fn: Callable[[Orchestrator], Any]) -> Future:
        """Run `fn(self)` inside the orchestrator's transaction; its return value resolves the future."""
        future: Future = Future()
        self._queue.put(("__call__", fn, future, None))
        return future

    # ----------------------------------------------------------------- the loop

    def _run(self) -> None:
        while not self._stopped.is_set():
            batch: list = []
            try:
                delay = self._next_timer_delay()
                try:
                    first = self._queue.get(timeout=delay) if delay is None or delay > 0 \
                        else self._queue.get_nowait()
                except queue.Empty:
                    first = ()
                if first is None:
                    break
                # Held notifications first: they were posted before what woke the loop, or
                # concern executions that were running then (their order relative to other
                # executions' commands does not matter).
                batch = self._take_held() + ([first] if first else [])
                self._drain_queue(batch)
                if batch or self.needs_schedule or (self.ws.timers and self.ws.timers[0][0] <= time.time()):
                    self._process(batch)  # else a wake-up for held work that went out already
            except _Stopped:
                break
            except Exception as exc:
                # _process isolates failing commands; getting here means its own recovery or
                # the delivery failed. Whatever was in flight is told to ask again.
                self.last_error = repr(exc)
                log.exception("orchestrator loop error; recovering")
                try:
                    self._out, self._events = [], []
                    self._recover_until_ok()
                    for command in batch:
                        self._fail_command(command, exc, retry=True)
                    self._deliver_out()
                except _Stopped:
                    break
                except Exception:
                    log.exception("orchestrator could not recover; trying again")
                    time.sleep(0.5)

    def _drain_queue(self, batch: list) -> None:
        """Add what is queued to the batch, up to its bound (a `None` in the queue means stop)."""
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._stopped.set()
                return
            batch.append(item)

    def _process(self, batch: list) -> None:
        self._busy_since = time.monotonic()
        try:
            self._process_batch(batch)
        finally:
            self._busy_since = None

    def _process_batch(self, batch: list) -> None:
        self._out, self._events = [], []
        try:
            self._transaction(batch)
        except Exception as exc:
            self.last_error = repr(exc)
            self._note_failure(exc)
            log.exception("batch of %d commands failed; retrying them one by one", len(batch))
            skip = _requests(batch)
            # None of it was committed. The batch's own commands run again below and answer then;
            # waiters of earlier, committed batches are told to ask again, those it had answered too.
            answered = _replies(self._out, skip)
            self._out, self._events = [], []
            self._recover_until_ok(skip=skip, answered=answered)
            for command in batch:
                self._process_alone(command)
        self._deliver_out()
        if self._checkpointer is not None and self._checkpointer.finish_due:
            self._checkpointer.finish(self._connection)

    def _process_alone(self, command: tuple) -> None:
        """Run one command of a failed batch in a transaction of its own. A database that is
        briefly unavailable (a lock, a restart) gets a second try after recovery, then the
        client is told to re-send; any other failure is this command's own: it alone fails."""
        for attempt in range(2):
            out_mark, events_mark = len(self._out), len(self._events)
            try:
                self._transaction([command])
                return
            except Exception as exc:
                transient = self._is_transient(exc)
                log.log(logging.WARNING if transient else logging.ERROR, "command %r failed%s",
                        command[0] if command else None, " (database unavailable)" if transient else "",
                        exc_info=True)
                self.last_error = repr(exc)
                skip = _requests([command])
                answered = _replies(self._out[out_mark:], skip)
                del self._out[out_mark:], self._events[events_mark:]
                self._recover_until_ok(skip=skip, answered=answered)
                if transient and attempt == 0:
                    continue
                self._fail_command(command, exc, retry=transient)
                return

    def _is_transient(self, exc: BaseException) -> bool:
        """A database error that says nothing about the command (the server went away, a lock)."""
        if isinstance(exc, DBAPIError):
            return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
        if isinstance(exc, DisconnectionError):
            return True
        dialect = self.engine.dialect
        dbapi = getattr(dialect, "loaded_dbapi", None) or getattr(dialect, "dbapi", None)
        kinds = tuple(k for k in (getattr(dbapi, "OperationalError", None), getattr(dbapi, "InterfaceError", None))
                      if isinstance(k, type))
        return bool(kinds) and isinstance(exc, kinds)

    def _deliver_out(self) -> None:
        out, events = self._out, self._events
        self._out, self._events = [], []
        if out or events:
            self._deliver(out, events)

    def _transaction(self, batch: list) -> None:
        calls: list[tuple[Future, Any]] = []
        db = self._connection
        self._after = []
        with db.begin():
            self.db = db
            self.w = WriteBuffer(db)
            for command in batch:
                if command:
                    self._dispatch(command, calls)
            self._fire_timers(time.time())
            if self.needs_schedule:
                now = time.time()
                self.queue.schedule(now)
                self.pools.after_schedule(now)
            self.w.flush()
        self.database.reached()
        self._run_after_commit()
        self.transactions += 1
        if self._checkpointer is not None:
            self._checkpointer.commits += 1
        for future, value in calls:
            future.set_result(value)

    def _dispatch(self, command: tuple, calls: list) -> None:
        op, peer, request_id, params = command
        if op == "__call__":
            fn, future = peer, request_id
            try:
                calls.append((future, fn(self)))
            except BadRequest as exc:
                future.set_exception(exc)
            return
        if op == "__closed__":
            self.workers.on_closed(peer)
            return
        handler = self._handlers.get(op)
        try:
            if handler is None:
                raise BadRequest(f"unknown operation {op!r}")
            if "parked" in params and isinstance(params, dict):
                self.worker_state.piggybacked_slots(peer, params)
            handler(peer, request_id, params)
        except BadRequest as exc:
            self.reply_error(peer, request_id, exc.to_wire())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Malformed parameters from a client: report, change nothing.
            self.reply_error(peer, request_id, {"code": "bad_request", "message": f"malformed {op!r}: {exc!r}"})

    def _fail_command(self, command: tuple, exc: BaseException, *, retry: bool = False) -> None:
        op, peer, request_id, _ = command if command else (None, None, None, None)
        if op == "__call__":
            if not request_id.done():
                request_id.set_exception(exc)
        elif peer is not None and request_id is not None:
            error = {"code": "retry", "message": "the database was unavailable; send the request again"} \
                if retry else {"code": "internal", "message": f"{op!r} failed on the server: "
                                                              f"{exc.__class__.__name__}: {exc}"[:2000]}
            self._out.append((peer, {"re": request_id, "err": error}))

    def _recover_until_ok(self, skip: set | None = None, answered: list | None = None) -> None:
        """Recover, waiting for the database to come back if it is what failed. `answered` are
        (peer, request id) of waiters the rolled-back work had answered: they must ask again."""
        delay = 0.05
        while True:
            try:
                self._recover(skip)
                self.database.reached()
                for peer, request_id in answered or ():
                    self._out.append((peer, {"re": request_id, "err": {"code": "retry",
                                                                       "message": "server recovered; retry"}}))
                return
            except Exception as exc:
                self.last_error = repr(exc)
                self._note_failure(exc)
                log.warning("recovery failed (%r); trying again in %.1f s", exc, delay)
                if self._stopped.wait(delay):
                    raise _Stopped() from exc
                delay = min(delay * 2, 5.0)

    def _note_failure(self, exc: BaseException) -> None:
        """A failure that says the database is out of reach starts (or continues) an outage."""
        if is_unavailable(exc):
            self.database.failed(exc)

    def _recover(self, skip: set | None = None) -> None:
        """Rebuild the in-memory working set from the database after a rolled-back batch.

        Replies and events already produced by committed work (earlier commands of a batch
        retried one by one) are kept. Waiters cannot be rebuilt: their clients are told to
        re-send (`retry`), except `skip`, the (peer, request id) of commands that run again."""
        try:
            self._connection.close()
        except Exception:
            pass
        peers = {**self._pending_peers, **{sid: s.peer for sid, s in self.ws.sessions.items() if s.peer is not None}}
        peer_waiters = self.ws.peer_waiters
        out, events = self._out, self._events
        try:
            self._connection = self._connect()
            self._reset_memory()
            self._after = []
            with self.engine.begin() as db:
                self.db = db
                self.w = WriteBuffer(db)
                self._load()
                self.w.flush()
            self._run_after_commit()
        except BaseException:
            # Keep what must still be told for the next attempt.
            self._pending_peers, self.ws.peer_waiters = peers, peer_waiters
            self._out, self._events = out, events
            raise
        self._pending_peers = {}
        for sid, peer in peers.items():
            if sid in self.ws.sessions:
                self.ws.sessions[sid].peer = peer
                self.ws.sessions[sid].expires_at = None
                self.ws.peer_sessions[peer] = sid
        self._out, self._events = out + self._out, events + self._events
        told = 0
        for peer, waiters in peer_waiters.items():
            for waiter in waiters:
                if not waiter.done and waiter.request_id is not None and (peer, waiter.request_id) not in (skip or ()):
                    waiter.done = True
                    told += 1
                    self._out.append((peer, {"re": waiter.request_id,
                                             "err": {"code": "retry", "message": "server recovered; retry"}}))
        log.warning("recovered the working set from the database; %d waiter(s) told to re-send", told)

    # ----------------------------------------------------------------- effects

    def reply(self, peer: Peer | None, request_id: Any, result: Any) -> None:
        if peer is not None and request_id is not None:
            self._out.append((peer, {"re": request_id, "ok": result}))

    def reply_error(self, peer: Peer | None, request_id: Any, error: dict) -> None:
        if peer is not None and request_id is not None:
            self._out.append((peer, {"re": request_id, "err": error}))

    def send(self, peer: Peer | None, message: dict) -> None:
        if peer is not None:
            self._out.append((peer, message))

    def publish(self, topic: str, event: Event, stored: dict | None = None) -> None:
        """Record a change for viewers (in this batch's transaction) and push it after commit
        (`stored`: a shorter form for the feed's row, see Feed.append_event)."""
        self._events.append((topic, self.feed.append_event(topic, event, stored)))

    # ----------------------------------------------------------------- timers

    def add_timer(self, due: float, kind: str, payload: Any) -> None:
        if not math.isfinite(due):  # never NaN in the heap: it would break its order
            due = time.time() if due != due else time.time() + limits.MAX_SECONDS
        heapq.heappush(self.ws.timers, (due, next(self._seq), kind, payload))

    def _next_timer_delay(self) -> float | None:
        if not self.ws.timers:
            return None
        return min(MAX_SLEEP, max(0.0, self.ws.timers[0][0] - time.time()))

    def _fire_timers(self, now: float) -> None:
        while self.ws.timers and self.ws.timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(self.ws.timers)
            if kind == "due":
                pending = self.ws.delayed.get(payload)
                if pending is not None and pending.execute_after <= now:
                    del self.ws.delayed[payload]
                    self.queue.due(pending)
            elif kind == "wait":
                if not payload.done:
                    payload.done = True
                    self.waiters.forget_waiter(payload)
                    self.reply(payload.peer, payload.request_id, {"status": "pending", **(payload.extra or {})})
            elif kind == "select":
                self.waiters.select_timed_out(payload)
            elif kind == "index":
                self.ws.index_timer = False
                self.telemetry.index_pending()
            elif kind in ("pools", "launch_timeout"):
                self.pools.on_timer(kind, payload, now)
            elif kind == "session":
                session = self.ws.sessions.get(payload)
                if session is not None and session.peer is None and session.expires_at is not None \
                        and session.expires_at <= now:
                    self.workers.expire_session(session)

    # ----------------------------------------------------------------- loading

    def _load(self) -> None:
        now = time.time()
        for row in self.db.execute(select(t.workspaces.c.name, t.workspaces.c.id, t.workspaces.c.base_id,
                                          t.workspaces.c.paused_at, t.workspaces.c.archived_at)):
            self.ws.workspace_ids[row.name] = row.id
            self.ws.workspace_bases[row.id] = row.base_id
            if row.paused_at is not None:
                self.ws.paused_workspaces[row.id] = row.name
            if row.archived_at is not None:
                self.ws.archived_workspaces.add(row.id)
        for row in self.db.execute(select(t.sessions).where(t.sessions.c.ended_at.is_(None))):
            session = self.workers.session_from_row(row)
            session.workspace_paused = self.ws.paused_workspaces.get(session.workspace_id)
            session.expires_at = now + self.reconnect_grace
            self.ws.sessions[session.id] = session
            self.ws.session_secrets[session.id] = row.secret_hash
            self.add_timer(session.expires_at, "session", session.id)
        query = (pending_query().outerjoin(t.results, t.results.c.execution_id == t.executions.c.id)
                 .where(t.results.c.execution_id.is_(None)).order_by(t.executions.c.created_at))
        orphans = []
        for row in self.db.execute(query).all():
            pending = pending_from_row(row)
            if row.session_id is not None:
                if row.started_at is not None:  # its worker said it began (the `started` notification)
                    pending.started_at = row.started_at
                session = self.ws.sessions.get(row.session_id)
                if session is not None:
                    session.running.add(row.id)
                    self.ws.active[row.id] = session.id
                    self.ws.assigned[row.id] = pending
                else:
                    orphans.append(pending)
                continue
            self.queue.enqueue(pending)
        for pending in orphans:  # assigned to a worker that is gone for good
            if getattr(pending, "started_at", None) is None:  # it never began: another worker takes it
                self.w.update_execution(pending.id, session_id=None, assigned_at=None)
                self.queue.enqueue(pending)
            else:
                self.outcomes.conclude(pending, "abandoned")
        self.telemetry.index_unindexed()
        self.pools.load()

    # ----------------------------------------------------------------- lookups

    def workspace_id(self, name: str, create: bool = False) -> int:
        ws_id = self.ws.workspace_ids.get(name)
        if ws_id is None:
            row = self.db.execute(select(t.workspaces.c.id, t.workspaces.c.base_id)
                                  .where(t.workspaces.c.name == name)).first()
            if row is None:
                if not create:
                    raise NotFound(f"no workspace named {name!r}")
                name = self.control.new_workspace_name(name)  # workers create theirs on demand
                ws_id = self.db.execute(t.workspaces.insert().values(
                    name=name, base_id=None, created_at=time.time())).inserted_primary_key[0]
                self.ws.workspace_bases[ws_id] = None
            else:
                ws_id = row.id
                self.ws.workspace_bases[ws_id] = row.base_id
            self.ws.workspace_ids[name] = ws_id
        return ws_id

    def workspace_lineage(self, workspace_id: int) -> list[int]:
        """The workspace and its bases, nearest first (whose cache and memo it may use)."""
        lineage = [workspace_id]
        current = self.ws.workspace_bases.get(workspace_id)
        while current is not None and current not in lineage:
            lineage.append(current)
            current = self.ws.workspace_bases.get(current)
        return lineage

    def run_info(self, run_id: str) -> RunInfo:
        info = self.ws.runs.get(run_id)
        if info is None:
            self.w.flush()
            row = self.db.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            top = self.db.execute(select(t.steps.c.number).where(t.steps.c.run_id == run_id)
                                  .order_by(t.steps.c.number.desc()).limit(1)).scalar() or 0
            info = self.ws.runs[run_id] = RunInfo(row, top + 1)  # the least recently used run goes
        return info

    def result_of(self, execution_id: str) -> tuple[str, Any, Any, str | None] | None:
        """(kind, value, error, successor) of an execution, or None while it has no result."""
        cached = self.ws.results.get(execution_id)
        if cached is not None:
            return cached
        if execution_id in self.ws.active or execution_id in self.ws.pending_by_id:
            return None
        if is_input_id(execution_id):  # an input's outcome is followed like an execution's
            return self.inputs.result_of(execution_id)
        # A result of this batch that was too big to keep (or was evicted) is still buffered.
        self.w.flush()
        row = self.db.execute(select(t.results.c.kind, t.results.c.value, t.results.c.error,
                                     t.results.c.successor_id)
                              .where(t.results.c.execution_id == execution_id)).first()
        if row is None:
            return None
        return self.cache_result(execution_id, (row.kind, row.value, row.error, row.successor_id))

    def cache_result(self, execution_id: str, result: tuple) -> tuple:
        """Remember a result, within the cache's byte budget (a large value is not kept: whoever
        needs it later reads it from the database)."""
        self.ws.results.put(execution_id, result)
        return result

    def execution_exists(self, execution_id: str) -> bool:
        if execution_id in self.ws.active or execution_id in self.ws.pending_by_id or execution_id in self.ws.results:
            return True
        if is_input_id(execution_id):
            return self.inputs.exists(execution_id)
        self.w.flush()
        return self.db.execute(select(t.executions.c.id).where(t.executions.c.id == execution_id)).first() \
            is not None

    def follow(self, execution_id: str) -> tuple[str, str, tuple | None]:
        """Follow successor links: ("final", id, result) or ("pending", id, None)."""
        current = execution_id
        for _ in range(100000):
            result = self.result_of(current)
            if result is None:
                return "pending", current, None
            if result[3] is None:
                return "final", current, result
            current = result[3]
        raise RuntimeError(f"successor chain of {execution_id} does not end")


"""`coflux worker`: connects to the server, declares the modules' targets, and runs executions
in a pool of warm processes (killed and replaced when an execution is aborted or the process dies).

All bookkeeping runs on the connection's event loop thread: the processes' pipes are watched
with `add_reader`, so relaying a request from user code to the server crosses no thread.

Nesting never deadlocks (see slots.py): an execution blocked on another's result is parked and
its slot goes to other work, which runs in another process. The pool therefore grows past
`concurrency` while executions are parked, up to `concurrency + max_parked` processes, and shrinks
back once the extra processes have been idle a while. We chose extra processes over running a
child inline in the blocked process: a child keeps its own process, so killing it on a timeout
or cancel never takes its parent down, and a warm process costs ~30 MB and ~0.2 s to spawn
(measured), which parking needs only as deep as the nesting goes.

Layer: the workers (on base.py; pool.py runs in the processes it starts).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from ..connection import Connection
from .base import WorkerBase
from .pool import (
    child_main,
    discover_targets,
    encode_reply,
    expand_packages,
    remove_workdirs,
    stop_signals_blocked,
)
from .slots import DEFAULT_MAX_PARKED, is_blocking

log = logging.getLogger("coflux.worker")

_spawn = multiprocessing.get_context("spawn")

RELEASE_AFTER = 0.25  # seconds a prefetched execution may wait for a slot before it is handed back
FINISHED_KEPT = 10_000  # finished executions remembered, so that a new hand-out never runs one again
SPARE_IDLE_FOR = 15.0  # seconds an extra (beyond `concurrency`) process may stay idle before it stops
DEFAULT_DRAIN_TIMEOUT = 60.0


def _recorded(future: Any) -> bool:
    """Whether the server recorded a result it was sent (not refused, not about an older hand-out)."""
    if future.exception() is not None:
        return False
    reply = future.result()
    return not (isinstance(reply, dict) and reply.get("stale"))


def _with_assignment(result: dict, assignment: Any) -> dict:
    """A copy of a result, about the given hand-out of its execution."""
    result = {k: v for k, v in result.items() if k != "assignment"}
    if assignment is not None:
        result["assignment"] = assignment
    return result


class WorkerProcess:
    """One warm process and the parent's end of its pipe."""

    def __init__(self, modules: list[str], generation: int) -> None:
        parent_end, child_end = _spawn.Pipe()
        self.pipe = parent_end
        self.process = _spawn.Process(target=child_main, args=(modules, child_end, list(sys.path)),
                                      daemon=True, name="coflux-worker-process")
        with stop_signals_blocked():  # a Ctrl-C while it starts up must not stop it either
            self.process.start()
        child_end.close()
        # Whether a message waits on the pipe: one poll(2), where `Connection.poll()` builds a
        # selector each time (two checks per message on the hot path).
        self._poller = select.poll()
        self._poller.register(parent_end.fileno(), select.POLLIN)
        self.generation = generation
        self.execution: str | None = None
        self.ready = False
        self.configured = False  # it has the server's URL and token (for blobs)
        self.idle_since = time.monotonic()
        self.outbox: list[tuple] = []  # replies and pushes not sent yet (HeadlessWorker._to_child)

    def send(self, message: tuple) -> bool:
        if self.outbox:
            self.flush()  # what was queued before goes first
        try:
            self.pipe.send(message)
            return True
        except (OSError, ValueError):
            return False

    def flush(self) -> None:
        messages, self.outbox = self.outbox, []
        if messages:
            self.send(messages[0] if len(messages) == 1 else ("many", messages))

    def readable(self) -> bool:
        return bool(self._poller.poll(0))

    def kill(self) -> None:
        try:
            self.process.kill()
        except Exception:
            pass


class HeadlessWorker(WorkerBase):
    kind = "headless"

    def __init__(self, modules: list[str], url: str, token: str | None, *, concurrency: int | None = None,
                 workspace: str = "default", provides: dict[str, list[str]] | None = None,
                 accepts: dict[str, list[str]] | None = None, name: str | None = None,
                 max_parked: int = DEFAULT_MAX_PARKED, dev: bool = False,
                 drain_timeout: float = DEFAULT_DRAIN_TIMEOUT, accept_code: bool = False) -> None:
        # Coflux's default: the CPU count + 4 running executions (most wait on I/O or on results).
        super().__init__(concurrency=concurrency or (os.cpu_count() or 1) + 4, max_parked=max_parked,
                         workspace=workspace)
        self.modules = modules
        # Hold one queued execution per slot, so the next one is here when a slot frees up.
        self.prefetch = self.concurrency
        self.max_processes = self.concurrency + max_parked
        self.provides = provides or {}
        self.accepts = accepts or {}
        # Opted in to code shipped by value (`--accept-code`); the server gives shipped code to
        # no other worker (placement rule "accepts shipped code").
        self.accept_code = accept_code
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.dev = dev
        self.drain_timeout = drain_timeout
        self._idle: deque[WorkerProcess] = deque()
        self._starting = 0  # processes spawned that have not said "ready" yet
        self._awaiting_process: deque[dict] = deque()  # admitted executions waiting for a process
        self._lease_held: list[dict] = []  # admitted, but not started until the server is heard from
        self._lease_timer: Any = None
        self._lease_ping: Any = None  # a ping in flight to renew the lease
        self._messages: dict[str, dict] = {}  # execute messages received and not finished
        self._release_timer: Any = None
        self._reap_timer: Any = None
        # execution id -> (when it was handed to a process, the timer that kills it at its timeout)
        self._deadlines: dict[str, tuple[float, Any]] = {}
        self._running: dict[str, WorkerProcess] = {}
        self._unacked: set[str] = set()
        self._results: dict[str, dict] = {}  # results sent and not answered yet, by execution
        # Executions finished here, oldest first (at most FINISHED_KEPT): never started again. The
        # result is kept when the server did not record it (it was about an older hand-out), to
        # answer a newer hand-out of the same execution with it; None when it was recorded.
        self._done: OrderedDict[str, dict | None] = OrderedDict()
        self._processes: list[WorkerProcess] = []
        self._to_flush: list[WorkerProcess] = []  # processes with replies or pushes queued
        self._flush_timer = False  # a timer will flush them (else the end of the frame does)
        self._stopping = threading.Event()
        self._draining = False
        self._signals = 0
        self.generation = 0
        self._reloaded_generation = 0  # the newest generation whose targets were declared
        self._watcher_stop = threading.Event()
        self.fatal: str | None = None
        self.targets = self._discover()
        self.connection = Connection(url, token, name="coflux-worker", handshake=self._register,
                                     on_push=self._on_push)
        self.connection.frame_hooks.append(self._flush_children)

    def _discover(self) -> dict:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        named = list(self.modules)
        self.modules = expand_packages(named)
        targets = discover_targets(self.modules)
        for module in named:  # a package: any module of it will do
            if not any(found == module or found.startswith(module + ".") for found in targets):
                log.warning("module %s defines no workflows or tasks", module)
        return targets

    async def _register(self, connection: Connection) -> None:
        # Everything received and not finished (queued, waiting for a process or held, running)
        # and results not acknowledged: what the server must not give to anyone else.
        running = sorted(set(self._messages) | set(self._running) | self._unacked)
        await self._register_session(connection, name=self.name, targets=self.targets, prefetch=self.prefetch,
                                     provides=self.provides, accepts=self.accepts, running=running,
                                     draining=self._draining, accepts_code=self.accept_code)
        if self._lease_held:  # confirmed (or aborted by the server, which it did before replying)
            self.connection.call_soon(self._retry_lease_held)
        log.info("registered as session %s with %d module(s)", self.session_id, len(self.targets))

    # ---------------------------------------------------------------- processes (loop thread)

    def _spawn(self) -> None:
        # Pool processes leave SIGINT and SIGTERM to us (a terminal's Ctrl-C reaches the whole
        # process group): see pool.leave_stop_signals_to_parent and stop_signals_blocked.
        process = WorkerProcess(self.modules, self.generation)
        self._processes.append(process)
        self._starting += 1
        self.connection.add_reader(process.pipe.fileno(), lambda: self._readable(process))

    def _readable(self, process: WorkerProcess) -> None:
        try:
            while process.readable():  # all that is there, so replies go out in one frame
                self._handle(process, process.pipe.recv())
        except (EOFError, OSError):
            self._exited(process)
        self._flush_children()

    def _handle(self, process: WorkerProcess, message: tuple) -> None:
        kind = message[0]
        if kind == "req":
            _, rid, op, params = message
            execution = process.execution
            blocking = execution is not None and is_blocking(op, params)
            if blocking:
                # The request itself tells the server of the slot it frees (no extra message).
                self.gate.block(execution)
                self._attach_slots(params)
            future = self.connection.request(op, params)
            if rid is not None:  # None: the process reads no answer (telemetry)
                future.add_done_callback(lambda f: self._replied(process, execution, rid, f, blocking))
        elif kind == "note":
            self.connection.notify(message[1], message[2])
        elif kind == "done":
            result = message[1]
            self._report(result)  # first: the next execution's `started` then goes in its frame
            self._finished(process, result["execution"])
        elif kind == "ready":
            process.ready = True
            self._starting -= 1
            if len(message) > 2 and process.generation == self.generation > self._reloaded_generation:
                self._reloaded_generation = self.generation
                self._reloaded(message[2])
            self._became_idle(process)
        elif kind == "import_error":
            self._starting -= 1
            if self.dev and self.generation > 0:
                # A broken edit: keep serving with the code that worked, say what is wrong.
                print(f"coflux worker: reload failed, still running the previous code:\n{message[1]}",
                      file=sys.stderr, flush=True)
                return
            self.fatal = message[1]
            self._stopping.set()

    def _replied(self, process: WorkerProcess, execution: str | None, rid: int, future: Any,
                 blocking: bool) -> None:
        reply = ("rep", rid, *encode_reply(future))
        if not blocking:
            self._to_child(process, reply)
            return

        def resume() -> None:
            if process.execution == execution:  # not killed or replaced meanwhile
                self._to_child(process, reply)
        self.gate.unblock(execution, resume)

    def _to_child(self, process: WorkerProcess, message: tuple) -> None:
        """Replies and pushes for a process go out together once the server's frame that brought
        them is dispatched (a frame hook; a timer for the few produced otherwise): one frame often
        carries several for one process (a fan-out's submit replies, results it waits for), and
        every pipe write wakes the process up."""
        if not process.outbox:
            self._to_flush.append(process)
        process.outbox.append(message)
        if not self.connection.dispatching and not self._flush_timer:
            self._flush_timer = True
            self.connection.call_soon_here(self._flush_children, True)

    def _flush_children(self, from_timer: bool = False) -> None:
        """Send what is queued for the processes, after what is queued for the server: an
        execution's `started` is on its way before its body can begin (a worker killed or
        frozen right then cannot leave the server thinking it never began, and run it twice)."""
        if from_timer:
            self._flush_timer = False
        if not self._to_flush:
            return
        self.connection.flush_now()
        processes, self._to_flush = self._to_flush, []
        # Checked after the `started` went: a worker frozen since its work was admitted (the
        # check in _run_on) wrote that `started` to a connection the server may have given up
        # on, and the work to someone else. It holds the work until the server confirms it.
        lease_valid = self._lease_valid()
        for process in processes:
            if not lease_valid:
                self._hold_unsent_executions(process)
            process.flush()

    def _hold_unsent_executions(self, process: WorkerProcess) -> None:
        """Take back the executions queued for `process` but not yet sent to it: they wait for
        the lease like work admitted while it was invalid (_retry_lease_held starts them)."""
        kept = []
        for message in process.outbox:
            if message[0] != "execute":
                kept.append(message)
                continue
            execution = message[1]["execution"]
            self._running.pop(execution, None)
            self._clear_deadline(execution)
            process.execution, process.configured = None, False  # it never got them
            self._lease_held.append(message[1])
        if len(kept) != len(process.outbox):
            process.outbox = kept
            process.idle_since = time.monotonic()
            self._idle.append(process)
            self._renew_lease()
            if self._lease_timer is None:
                self._lease_timer = self.connection.call_later(0.2, self._retry_lease_held)

    def _finished(self, process: WorkerProcess, execution: str) -> None:
        self._clear_deadline(execution)
        self._running.pop(execution, None)
        self._messages.pop(execution, None)
        process.execution = None
        self._became_idle(process)
        self.gate.finish(execution)
        self._check_drained()

    def _became_idle(self, process: WorkerProcess) -> None:
        if process.generation != self.generation:
            self._retire(process)  # code from before a reload: replaced, not reused
            self._ensure_processes()
            return
        process.idle_since = time.monotonic()
        self._idle.append(process)
        if self._awaiting_process:
            self._run_on(self._idle.popleft(), self._awaiting_process.popleft())
        self._schedule_reap()

    def _retire(self, process: WorkerProcess) -> None:
        if process in self._idle:
            self._idle.remove(process)
        process.send(("stop",))
        process.kill()

    def _exited(self, process: WorkerProcess) -> None:
        self.connection.remove_reader(process.pipe.fileno())
        process.process.join(timeout=0.5)  # reap it: a stopped process must not stay a zombie
        remove_workdirs(process.process.pid)  # a killed process leaves its working directory
        process.pipe.close()
        if not process.ready:
            self._starting = max(0, self._starting - 1)
        if process in self._idle:
            self._idle.remove(process)
        if process in self._processes:
            self._processes.remove(process)
        execution, process.execution = process.execution, None
        if execution is not None:  # died on its own while running (an abort clears `execution` first)
            self._running.pop(execution, None)
            self._messages.pop(execution, None)
            self._clear_deadline(execution)
            self.gate.finish(execution)
            self._report({"execution": execution, "kind": "crashed"})
        if not self._stopping.is_set():
            self._ensure_processes()

    def _ensure_processes(self) -> None:
        """Keep `concurrency` warm processes, one more for each admitted execution that waits for
        one, and a spare while executions are parked (the next park then finds one warm)."""
        if self._stopping.is_set():
            return
        wanted_idle = len(self._awaiting_process) + (1 if self.gate.parked else 0)
        busy = sum(1 for p in self._processes if p.execution is not None)
        floor = self.concurrency - busy
        want = max(wanted_idle, floor) - len(self._idle) - self._starting
        room = self.max_processes + 1 - len(self._processes)
        for _ in range(max(0, min(want, room))):
            self._spawn()

    def _schedule_reap(self) -> None:
        if self._reap_timer is None and len(self._processes) > self.concurrency:
            self._reap_timer = self.connection.call_later(SPARE_IDLE_FOR, self._reap)

    def _reap(self) -> None:
        """Stop extra processes that stayed idle: the pool shrinks back after deep nesting."""
        self._reap_timer = None
        cutoff = time.monotonic() - SPARE_IDLE_FOR
        spare = 1 if self.gate.parked else 0
        for process in list(self._idle):
            if len(self._processes) <= self.concurrency + spare:
                break
            if process.idle_since <= cutoff:
                self._retire(process)
        self._schedule_reap()

    def _report(self, result: dict) -> None:
        assignment = self._assignments.pop(result["execution"], None)
        if assignment is not None:
            result["assignment"] = assignment
        self._send_report(result)

    def _send_report(self, result: dict) -> None:
        execution = result["execution"]
        self._unacked.add(execution)
        self._results[execution] = result

        def answered(future: Any) -> None:
            if self._results.get(execution) is not result:
                return  # the answer to a newer hand-out is on its way (see _answer_again)
            del self._results[execution]
            self._unacked.discard(execution)
            self._remember_finished(execution, None if _recorded(future) else result)
            self._check_drained()
        self._send_result(result, answered)

    def _remember_finished(self, execution: str, unrecorded: dict | None) -> None:
        self._done[execution] = unrecorded
        self._done.move_to_end(execution)
        while len(self._done) > FINISHED_KEPT:
            self._done.popitem(last=False)

    def _answer_again(self, message: dict) -> bool:
        """An `execute` of an execution this worker holds or has finished (the server took it back
        and gave it out again, or a reconnect crossed): it is never started a second time; the new
        hand-out is answered with what is here. Returns whether it was one of those."""
        execution = message["execution"]
        if execution in self._messages:  # queued or running here
            older = self._assignments.get(execution)
            self._note_assignment(message)
            if execution in self._running and self._assignments.get(execution) != older:
                self._started(execution)  # it began under an older hand-out: it has begun under this one
            return True
        result = self._results.get(execution) or self._done.get(execution)
        if result is not None:  # its result, under this hand-out
            self._done.pop(execution, None)
            self._send_report(_with_assignment(result, message.get("assignment")))
            return True
        if execution in self._done:
            log.warning("execution %s was given to this worker again after its result was recorded; "
                        "it is not run again", execution)
            return True
        return False

    # ---------------------------------------------------------------- server pushes (loop thread)

    def _on_push(self, message: dict) -> None:
        op = message.get("op")
        if op == "execute":
            self._on_execute(message)
        elif op == "resolved":
            process = self._running.get(message["parent"])
            if process is not None:
                self._to_child(process, ("resolved", message))
        elif op == "abort":
            self._abort(message["execution"])
        elif op == "replaced":
            log.warning("another connection took over this worker's session")

    def _on_execute(self, message: dict) -> None:
        execution = message["execution"]
        if self._answer_again(message):
            return
        if self._draining and message.get("parent") not in self._running:
            # Sent before the server knew we are draining: give it back at once.
            self.connection.request("release", {"executions": [execution],
                                                "assignments": {execution: message.get("assignment")}})
            return
        self._messages[execution] = message
        self._note_assignment(message)
        self.gate.submit(execution, lambda: self._admitted(message), urgent=bool(message.get("urgent")))
        if self.gate.queued() and self._release_timer is None:
            self._release_timer = self.connection.call_later(RELEASE_AFTER, self._release_stale)

    def _admitted(self, message: dict) -> None:
        """The gate gave this execution a slot: run it on an idle process (or the next to start)."""
        if self._idle:
            self._run_on(self._idle.popleft(), message)
        else:
            self._awaiting_process.append(message)
            self._ensure_processes()

    def _run_on(self, process: WorkerProcess, message: dict) -> None:
        execution = message["execution"]
        if execution not in self._messages:  # aborted while it waited for a process
            self._became_idle(process)
            return
        if not self._lease_valid():  # frozen or cut off a while: this may not be ours any more
            self._lease_held.append(message)
            process.idle_since = time.monotonic()
            self._idle.append(process)
            self._renew_lease()
            if self._lease_timer is None:
                self._lease_timer = self.connection.call_later(0.2, self._retry_lease_held)
            return
        process.execution = execution
        self._running[execution] = process
        # The server's URL and token, once per process: it uploads large values and assets itself.
        if not process.configured:
            message = {**message, "server": self.connection.url, "token": self.connection.token}
            process.configured = True
        if message.get("code") is not None:  # shipped code: its errors name this worker
            message = {**message, "worker": self.name}
        # Told before the process gets it (see _flush_children). Should the process have died
        # meanwhile, its exit reports the execution as crashed (retries apply).
        self._started(execution)
        self._to_child(process, ("execute", message))
        if message.get("timeout"):
            self._deadlines[execution] = (time.time(), self.connection.call_later(
                float(message["timeout"]), self._timed_out, execution))

    def _retry_lease_held(self) -> None:
        """Start the work held for want of a lease once the server has been heard from again
        (and has not aborted it meanwhile)."""
        self._lease_timer = None
        if not self._lease_held:
            return
        if not self._lease_valid():
            self._renew_lease()
            self._lease_timer = self.connection.call_later(0.2, self._retry_lease_held)
            return
        held, self._lease_held = self._lease_held, []
        for message in held:
            if message["execution"] not in self._messages:
                continue  # aborted meanwhile
            if self._idle:
                self._run_on(self._idle.popleft(), message)
            else:
                self._awaiting_process.append(message)
        self._ensure_processes()

    def _renew_lease(self) -> None:
        """Work waits for the lease: ask the server something, so its answer renews the lease,
        rather than wait for a message that may never come (a worker whose processes took
        longer than the lease to start hears nothing more until its work starts). An answer on
        this connection means the session is still ours: the server ends a session only once
        its connection is gone (closed, or its pings unanswered)."""
        if self.connection.connected and (self._lease_ping is None or self._lease_ping.done()):
            self._lease_ping = self.connection.request("ping", {}, resend=False)

    def _release_stale(self) -> None:
        """Hand back prefetched executions that waited too long for a free slot, so an idle
        worker elsewhere can run them instead of them queueing behind long executions here."""
        self._release_timer = None
        stale = self.gate.withdraw(older_than=time.monotonic() - RELEASE_AFTER)
        if stale:
            self.connection.request("release", {"executions": stale, "assignments": self._hand_back(stale)})
        if self.gate.queued():
            self._release_timer = self.connection.call_later(RELEASE_AFTER, self._release_stale)

    def _hand_back(self, executions: list[str]) -> dict[str, Any]:
        """Forget executions given back unstarted; returns the hand-outs they were (id -> number),
        which the server needs to tell a hand-back that crossed a newer hand-out (it ignores it)."""
        assignments = {}
        for execution in executions:
            self._messages.pop(execution, None)
            assignments[execution] = self._assignments.pop(execution, None)
        return assignments

    def _clear_deadline(self, execution_id: str) -> None:
        deadline = self._deadlines.pop(execution_id, None)
        if deadline is not None:
            deadline[1].cancel()

    def _timed_out(self, execution_id: str) -> None:
        """Past its timeout: kill the process running it (a fresh one replaces it) and say so."""
        started_at, _ = self._deadlines.pop(execution_id, (None, None))
        process = self._running.pop(execution_id, None)
        if process is None:
            return
        self._messages.pop(execution_id, None)
        process.execution = None
        process.kill()
        self.gate.finish(execution_id)
        self._report({"execution": execution_id, "kind": "timeout", "started_at": started_at})

    def _abort(self, execution_id: str) -> None:
        self._clear_deadline(execution_id)
        self._messages.pop(execution_id, None)
        self._assignments.pop(execution_id, None)
        process = self._running.pop(execution_id, None)
        if process is None:
            self.gate.withdraw(executions={execution_id})
            self._awaiting_process = deque(m for m in self._awaiting_process if m["execution"] != execution_id)
            self._lease_held = [m for m in self._lease_held if m["execution"] != execution_id]
            self.gate.finish(execution_id)
            return
        process.execution = None
        process.kill()
        self.gate.finish(execution_id)
        self._check_drained()

    # ---------------------------------------------------------------- reload (--dev)

    def _watch_paths(self) -> list[str]:
        """The source to watch: a package's directory, or a plain module's file."""
        import importlib.util

        paths: set[str] = set()
        for name in self.modules:
            top = name.split(".")[0]
            spec = importlib.util.find_spec(top)
            if spec is None:
                continue
            if spec.submodule_search_locations:
                paths.update(spec.submodule_search_locations)
            elif spec.origin:
                paths.add(spec.origin)
        return sorted(paths)

    def _start_watching(self) -> None:
        import watchfiles

        paths = self._watch_paths()

        def watch() -> None:
            for _changes in watchfiles.watch(*paths, watch_filter=watchfiles.PythonFilter(),
                                             stop_event=self._watcher_stop, debounce=200,
                                             raise_interrupt=False):
                self.connection.call_soon(self._reload)

        threading.Thread(target=watch, name="coflux-watch", daemon=True).start()
        print(f"coflux worker: --dev: reloading when these change: {', '.join(paths)}", flush=True)

    def _reload(self) -> None:
        """Source changed: start a process on the new code; once it has imported the modules,
        declare its targets and replace idle processes (running ones finish on the old code)."""
        self.generation += 1
        self._spawn()

    def _reloaded(self, targets: dict) -> None:
        print("coflux worker: reloaded " + ", ".join(self.modules), flush=True)
        if targets != self.targets:
            self.targets = targets
            self.connection.request("declare", {"targets": targets})
        for process in list(self._idle):
            if process.generation != self.generation:
                self._retire(process)
        self._ensure_processes()

    # ---------------------------------------------------------------- drain (loop thread)

    def _begin_drain(self) -> None:
        """Take no new work, hand back what was prefetched, let running executions finish."""
        if self._draining:
            return
        self._draining = True
        released = self.gate.withdraw()
        for message in self._lease_held + list(self._awaiting_process):  # admitted, never started
            released.append(message["execution"])
            self.gate.finish(message["execution"])
        self._lease_held, self._awaiting_process = [], deque()
        assignments = self._hand_back(released)
        running = len(self._running) + len(self._awaiting_process)
        print(f"coflux worker: draining: waiting for {running} running execution(s) to finish "
              f"(up to {self.drain_timeout:g} s; Ctrl-C again to stop now)", flush=True)
        self.connection.request("drain", {"release": released, "assignments": assignments})
        self.connection.call_later(self.drain_timeout, self._drain_expired)
        self._check_drained()

    def _check_drained(self) -> None:
        if self._draining and not self._running and not self._awaiting_process and not self._unacked \
                and not self.gate.busy():
            self._stopping.set()

    def _drain_expired(self) -> None:
        """Out of patience: what still runs is reported as abandoned (retries apply), then we stop."""
        if self._stopping.is_set():
            return
        self._abandon_running()

    def _abandon_running(self) -> None:
        pending = []
        for execution, process in list(self._running.items()):
            process.execution = None
            process.kill()
            self._running.pop(execution, None)
            self.gate.finish(execution)
            self._unacked.add(execution)
            pending.append(self.connection.request("result", {"execution": execution, "kind": "abandoned"}))
        for message in self._awaiting_process:
            pending.append(self.connection.request("release", {"executions": [message["execution"]]}))
        self._awaiting_process.clear()
        if not pending:
            self._stopping.set()
            return
        remaining = [len(pending)]

        def acked(_future: Any) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self._stopping.set()
        for future in pending:
            future.add_done_callback(lambda f: self.connection.call_soon(acked, f))
        self.connection.call_later(5.0, self._stopping.set)  # the server may be gone: do not hang

    # ---------------------------------------------------------------- running (main thread)

    def start(self, wait: float | None = None) -> None:
        self.connection.start(wait=wait, fail_fast=False)
        started = threading.Event()

        def spawn_all() -> None:
            for _ in range(self.concurrency):
                self._spawn()
            self._tick()
            started.set()
        self.connection.call_soon(spawn_all)
        started.wait(60)
        if self.dev:
            self._start_watching()

    def _on_signal(self, *_: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            self.connection.call_soon(self._begin_drain)
        else:
            print("coflux worker: stopping now", flush=True)
            self._forced = True
            self.connection.call_soon(self._abandon_running)
            threading.Timer(2.0, self._stopping.set).start()

    def run_forever(self) -> int:
        self._forced = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.start(wait=None)
        was_connected, since = False, time.monotonic()
        while not self._stopping.wait(0.5):
            if self.connection._fatal is not None:
                self.fatal = str(self.connection._fatal)
                break
            connected = self.connection.connected
            if connected and not was_connected:
                print(f"coflux worker: connected (session {self.session_id})", flush=True)
            elif not connected and (was_connected or time.monotonic() - since > 2) and since >= 0:
                error = self.connection._last_error
                print(f"coflux worker: waiting for the server at {self.connection.url}"
                      + (f" ({error.__class__.__name__}: {error})" if error else "") + "; retrying", flush=True)
                since = -1.0  # said once per outage
            if connected:
                since = time.monotonic()
            was_connected = connected
        self.shutdown()
        if self.fatal:
            print(f"coflux worker: {self.fatal}", file=sys.stderr)
            return 1
        if self._draining or self._signals:
            print("coflux worker: stopped", flush=True)
        return 1 if self._forced else 0

    def shutdown(self) -> None:
        self._stopping.set()
        self._watcher_stop.set()
        for process in list(self._processes):
            process.kill()
        self.connection.close()  # its loop thread has ended: no process starts after this
        self._reap_processes()

    def _reap_processes(self) -> None:
        """Kill (again: one may have started meanwhile) and reap every pool process, so none
        outlives the worker: they ignore SIGTERM, which is all multiprocessing's exit handler
        would send one it finds (before waiting for it to end)."""
        for process in list(self._processes):
            process.kill()
            process.process.join(1.0)

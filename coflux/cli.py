"""The `coflux` command line: server, worker, submit, runs.

Start-up is kept light: the read-only commands (`runs inspect|list|result`, `logs`, `metrics`,
`queue`, `sessions list`, `assets inspect`, `blobs get`, `workspaces list`) answer over plain HTTP
(cli_http.py) and import neither tornado nor the SDK's execution side, and only what has to wait
(a run that has not finished, `runs rerun`) opens the WebSocket client; whatever else a command
needs is imported inside it.

Layer: the top, with the session glue: the command line, on cli_base.py; the one SDK module that
starts the server (coflux_server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import config
from .cli_base import arguments, configure_logging, connection_flags, make_api, make_client, parse_tags
from .cli_http import TARGET, Api, CommandError, parse_target, plain_http, run_path
from .protocol import STUCK_REASON

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from typing import Any


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 100000:
        raise argparse.ArgumentTypeError(f"must be from 0 to 100000, not {value}")
    return value


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400 * 365:
        raise argparse.ArgumentTypeError(f"must be from 0 to a year of seconds, not {text}")
    return value




# ------------------------------------------------------------------ server

def cmd_server(args: argparse.Namespace) -> int:
    import asyncio
    import re

    from coflux_server.app import serve
    from coflux_server.state import ServerState

    auth = not args.no_auth
    # The [server] section wins, then the top-level `token` that clients in this directory use too.
    token = (config.setting(args.token, "COFLUX_TOKEN", "token", None, section="server")
             or config.setting(None, "COFLUX_TOKEN", "token", None)) if auth else None
    token_hash = config.setting(args.super_token_hash, "COFLUX_SUPER_TOKEN_HASH", "super_token_hash", None,
                                section="server") if auth else None
    if token_hash is not None:
        if token and args.token:
            print("coflux server: give --super-token or --super-token-hash, not both", file=sys.stderr)
            return 2
        if not re.fullmatch(r"[0-9a-fA-F]{64}", token_hash.strip()):
            print("coflux server: --super-token-hash must be a SHA-256 in hex (64 characters), e.g. the output of "
                  "`printf %s TOKEN | sha256sum`", file=sys.stderr)
            return 2
        token_hash, token = token_hash.strip().lower(), None
    origins = args.allow_origin or [o for o in (config.setting(None, "COFLUX_ALLOW_ORIGINS", "allow_origins", "",
                                                               section="server") or "").split(",") if o.strip()]
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s]+/?", origin.strip()):
            print(f"coflux server: --allow-origin {origin!r}: expected an origin such as https://notebooks.example",
                  file=sys.stderr)
            return 2
    origins = [o.strip() for o in origins]
    generated = auth and not token and not token_hash
    data_dir = config.setting(args.data_dir, "COFLUX_DATA_DIR", "data_dir", ".coflux", section="server")
    db_url = config.setting(args.db_url, "COFLUX_DB_URL", "db_url", None, section="server")
    port = int(config.setting(args.port, "COFLUX_PORT", "port", 7777, section="server"))
    host = config.setting(args.host, "COFLUX_HOST", "host", "127.0.0.1", section="server")
    grace = float(config.setting(args.reconnect_grace, "COFLUX_RECONNECT_GRACE", "reconnect_grace", 30,
                                 section="server"))
    idle_timeout = float(config.setting(args.idle_timeout, "COFLUX_IDLE_TIMEOUT", "idle_timeout", 60,
                                        section="server"))
    if not 0 < idle_timeout < float("inf"):
        print(f"coflux server: --idle-timeout must be a positive number of seconds, not {idle_timeout}",
              file=sys.stderr)
        return 2
    launchers = _launcher_types(args.launcher)
    if isinstance(launchers, str):
        print(f"coflux server: {launchers}", file=sys.stderr)
        return 2
    try:
        if db_url:  # blobs, launch logs and the pool secrets key still go to the data directory (made on use)
            state = ServerState(db_url, token=token, auth=auth, reconnect_grace=grace, launchers=launchers,
                                data_dir=data_dir, token_hash=token_hash, allow_origins=tuple(origins))
        else:
            os.makedirs(data_dir, exist_ok=True)
            state = ServerState.for_data_dir(data_dir, token=token, auth=auth, reconnect_grace=grace,
                                             launchers=launchers, token_hash=token_hash,
                                             allow_origins=tuple(origins))
    except Exception as exc:
        print(f"coflux server: cannot open the database: {exc}", file=sys.stderr)
        return 1
    from coflux_server.blobs import DEFAULT_MAX_BLOB_BYTES, LocalBlobStore

    max_blob = int(config.setting(args.max_blob_bytes, "COFLUX_MAX_BLOB_BYTES", "max_blob_bytes",
                                  DEFAULT_MAX_BLOB_BYTES, section="server"))
    state.blobs = LocalBlobStore(os.path.join(data_dir, "blobs"), max_size=max_blob)  # beside the database

    def ready(url: str) -> None:
        state.orchestrator.pool_runtime.server_url = url  # where launched workers connect
        print(f"coflux server ready at {url}", flush=True)
        if launchers:
            print(f"launchers: {', '.join(launchers)}", flush=True)
        print(f"Studio: {url}?token={state.token}" if auth and state.token else f"Studio: {url}", flush=True)
        if generated:
            print(f"token: {state.token}  (set COFLUX_TOKEN={state.token} for workers and the CLI)", flush=True)
        elif not auth:
            print("authentication is disabled (--no-auth)", flush=True)

    try:
        asyncio.run(serve(state, host=host, port=port, ready=ready, idle_timeout=idle_timeout))
    except OSError as exc:
        print(f"coflux server: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _launcher_types(flags: list[str] | None) -> tuple[str, ...] | str:
    from coflux_server.pools.runtime import launcher_types

    found = launcher_types(flags)
    return f"--launcher {found}" if isinstance(found, str) else found


# ------------------------------------------------------------------ worker

def cmd_worker(args: argparse.Namespace) -> int:
    from .worker.headless import HeadlessWorker

    modules = args.modules or config.load_file().get("modules") or []
    if not modules and not args.accept_code:  # a worker for shipped code alone needs none
        print("coflux worker: name at least one module (or set `modules` in coflux.toml), "
              "or --accept-code", file=sys.stderr)
        return 2
    concurrency = args.concurrency or config.setting(None, "COFLUX_WORKER_CONCURRENCY", "concurrency", None,
                                                     section="worker")
    provides, accepts = parse_tags(args.provides, "--provides"), parse_tags(args.accepts, "--accepts")
    try:
        worker = HeadlessWorker(
            modules, config.server_url(args.server), config.token(args.token),
            concurrency=int(concurrency) if concurrency else None, workspace=config.workspace(args.workspace),
            provides=provides, accepts=accepts, max_parked=args.max_parked,
            dev=args.dev, drain_timeout=args.drain_timeout, accept_code=args.accept_code)
    except (Exception, SystemExit) as exc:  # whatever the user's module raised while importing
        from .worker.import_errors import ModuleImportError, describe_import_failure, failed_module

        module = exc.module if isinstance(exc, ModuleImportError) else failed_module(modules)
        if module is None:
            raise  # every module imported: a fault of the worker itself, keep the whole traceback
        print(f"coflux worker: {describe_import_failure(exc, module)}", file=sys.stderr)
        return 1
    hosted = ", ".join(worker.modules) or "shipped code only"
    print(f"coflux worker: {hosted} -> {worker.connection.url} "
          f"(concurrency {worker.concurrency})", flush=True)
    return worker.run_forever()


# ------------------------------------------------------------------ submit / runs

def _parse_target(value: str) -> tuple[str, str]:
    module, sep, name = value.rpartition("/")
    if not sep or not module or not name:
        raise SystemExit(f"coflux: target must be MODULE/WORKFLOW, got {value!r}")
    return module, name


def _parse_args(values: list[str]) -> list[Any]:
    parsed = []
    for i, text in enumerate(values, 1):
        try:
            parsed.append(json.loads(text))
        except ValueError as exc:
            raise SystemExit(f"coflux: argument {i} is not JSON ({exc}): {text!r}\n"
                             f"  hint: strings need JSON quotes, e.g. '\"hello\"'") from None
    return parsed


class _Progress:
    """Live step counts on stderr while a run is in progress."""

    def __init__(self, run_id: str) -> None:
        import threading

        from .runview import RunView

        self.run_id = run_id
        self.view = RunView(run_id)  # the fold every viewer shares
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._last = 0.0
        self._warned: set[str] = set()  # executions warned about

    def load(self, snapshot: dict) -> None:
        with self._lock:
            self.view.load(snapshot)
        # A warning published before this view subscribed is not replayed: the snapshot says
        # which executions are stuck (their `waiting` reason), and that is warned about instead.
        for step in snapshot.get("steps") or ():
            for execution in step.get("executions") or ():
                reason = execution.get("waiting") or ""
                if reason.startswith(STUCK_REASON):
                    self.warn(execution["id"], f"{execution['id']} is {reason}")
        self.draw()

    def warn(self, execution_id: str, message: str) -> None:
        """Say plainly why the run may not move (once per execution)."""
        if execution_id in self._warned:
            return
        self._warned.add(execution_id)
        sys.stderr.write(("\r\033[K" if self.tty else "") + f"warning: {message}\n")
        sys.stderr.flush()

    def event(self, event: dict) -> None:
        if event.get("type") == "warning":  # e.g. a worker that may park no more: say so plainly
            self.warn(str(event.get("execution")), str(event.get("message")))
            return
        if event.get("type") == "connection":
            sys.stderr.write(("\r\033[K" if self.tty else "") + ("reconnected\n" if event["connected"] else
                             "disconnected from the server; reconnecting...\n"))
            return
        with self._lock:
            changed = self.view.apply(event)
        if changed:
            self.draw()

    def summary(self) -> str:
        with self._lock:
            counts = self.view.counts()
        parts = [f"{n} {status}" for status, n in sorted(counts.items())]
        return f"{self.run_id}: {sum(counts.values())} step(s): " + ", ".join(parts)

    def draw(self, final: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not final and now - self._last < 0.1):
            return
        self._last = now
        sys.stderr.write("\r\033[K" + self.summary() + ("\n" if final else ""))
        sys.stderr.flush()


def _plain(data: Any, depth: int = 1) -> bool:
    """Whether wire data is plain JSON (no `{"$": ...}` object for a tuple, bytes, a reference, ...),
    shallow enough to show as it is."""
    if isinstance(data, list):
        return depth < 64 and all(_plain(v, depth + 1) for v in data)
    if isinstance(data, dict):
        return depth < 64 and "$" not in data and all(_plain(v, depth + 1) for v in data.values())
    return True


def _display(wire: dict) -> Any:
    """`serialization.to_display(wire)`; a plain JSON value (most results) is shown as it is,
    without importing the serialization module (pickle, uuid, decimal: a third of start-up)."""
    if not wire.get("refs") and _plain(wire.get("v")):
        return wire.get("v")
    from .serialization import to_display

    return to_display(wire)


def _print_value(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str) if not isinstance(value, str) else json.dumps(value))


def _outcome_exit(outcome: dict, label: str = "run") -> int:
    status = outcome.get("status")
    if status == "value":
        _print_value(_display(outcome["value"]))
        return 0
    if status == "error":
        error = outcome.get("error") or {}
        print(f"{error.get('type', 'Error')}: {error.get('message', '')}", file=sys.stderr)
        frames = error.get("frames") or []
        if frames:
            print("Traceback (remote, most recent call last):", file=sys.stderr)
            for file, line, name, code, *label in frames:  # label: "Cell In[8], line 3" (a notebook's)
                where = label[0] if label else f'File "{file}", line {line}'
                print(f"  {where}, in {name}" + (f"\n    {code}" if code else ""), file=sys.stderr)
        return 1
    if status == "pending":
        print(f"{label} has not finished", file=sys.stderr)
        return 3
    print(f"{label} ended: {status} ({outcome.get('execution')})", file=sys.stderr)
    return 1


MAX_RETRIES = 10000  # what the server accepts


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The wire options of `coflux submit`'s overrides (each over the workflow's own; null
    clears one): `--requires` (replaces the workflow's requires, as `with_requires` does),
    `--no-requires`, `--memo/--no-memo`, `--delay S`, `--retries N`."""
    options: dict[str, Any] = {}
    if args.no_requires and args.requires:
        raise CommandError("--requires and --no-requires cannot be combined (--requires already replaces "
                           "the workflow's requires)")
    if args.no_requires:
        options["requires"] = None
    elif args.requires:
        options["requires"] = parse_tags(args.requires, "--requires")
    if args.memo is not None:
        options["memo"] = args.memo
    if args.delay is not None:
        from .options import seconds

        try:
            delay = float(args.delay)
        except ValueError:
            raise CommandError(f"--delay {args.delay!r}: expected a number of seconds") from None
        try:
            options["delay"] = seconds(delay, "--delay") or None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if args.retries is not None:
        try:
            limit = int(args.retries)
        except ValueError:
            raise CommandError(f"--retries {args.retries!r}: expected a whole number of retries") from None
        if not 0 <= limit <= MAX_RETRIES:
            raise CommandError(f"--retries {limit}: must be from 0 to {MAX_RETRIES}")
        options["retries"] = {"limit": limit, "backoff": [0, 0]} if limit else None  # as `retries=N`
    return options


def cmd_submit(args: argparse.Namespace) -> int:
    module, workflow = _parse_target(args.target)
    values = _parse_args(args.arguments)
    options = _run_overrides(args)  # refused here, before anything is sent
    with make_client(args) as client:
        run = client.submit_json(module, workflow, values, idempotency_key=args.idempotency_key, options=options)
        if args.no_wait:
            print(run.id)
            return 0
        progress = _Progress(run.id)
        print(f"run {run.id} submitted", file=sys.stderr)
        snapshot = client.subscribe(f"run:{run.id}", progress.event)
        progress.load(snapshot)
        outcome = client.run_result(run.id)
        progress.load(client.get_run(run.id))  # the summary as of the result, not as events arrived
        progress.draw(final=True)
        if not progress.tty:
            print(progress.summary(), file=sys.stderr)
        return _outcome_exit(outcome)


def _finished_outcome(api: Api, run_id: str) -> dict | None:
    """The run's outcome if it is final and needs nothing more (no execution its value refers
    to, which only the WebSocket client follows); None otherwise."""
    return _complete(api.get(run_path(run_id, "/result"), timeout=0))


def _complete(outcome: dict) -> dict | None:
    """`outcome` if it is final and its value refers to no execution (only the WebSocket client
    follows those); None otherwise."""
    if outcome.get("status") == "pending":
        return None
    refs = (outcome.get("value") or {}).get("refs") or [] if outcome.get("status") == "value" else []
    return None if any(ref.get("type") == "execution" for ref in refs) else outcome


# Result kinds that are an attempt's own outcome (a failure stays the attempt's result even when
# a retry followed it); the others (cached, deferred, spawned, suspended, recurred) point at
# the execution that holds it. coflux.protocol.FINAL_KINDS, without importing the protocol here.
_OWN_OUTCOME_KINDS = frozenset({"value", "error", "cancelled", "abandoned", "crashed", "timeout"})


class _Target:
    """What `coflux runs result` was asked for: a run (its outcome), a step (its latest attempt,
    followed to its outcome) or an attempt (its own result; followed when it only points at
    another execution's)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.run_id, self.step_id, self.attempt_id = parse_target(text)
        self.execution: str | None = None  # the step's latest attempt, or the attempt

    @property
    def label(self) -> str:
        return "run" if self.step_id is None else ("step " if self.attempt_id is None else "attempt ") + self.text

    def locate(self, snapshot: dict) -> dict | None:
        """Find the step's latest attempt or the attempt in the run's snapshot (CommandError if
        there is none): that execution, as the snapshot has it."""
        step = next((s for s in snapshot["steps"] if s["id"] == self.step_id), None)
        if step is None or not step["executions"]:
            raise CommandError(f"no step {self.step_id!r}")
        if self.attempt_id is None:
            execution = max(step["executions"], key=lambda e: e["attempt"])
        else:
            execution = next((e for e in step["executions"] if e["id"] == self.attempt_id), None)
            if execution is None:
                raise CommandError(f"no execution {self.attempt_id!r}")
        self.execution = execution["id"]
        return execution

    def own_outcome(self, execution: dict) -> dict | None:
        """The attempt's own outcome from the snapshot, if it has one of its own."""
        result = execution.get("result")
        if self.attempt_id is None or result is None or result["kind"] not in _OWN_OUTCOME_KINDS:
            return None
        outcome: dict = {"status": result["kind"], "execution": execution["id"]}
        if result["kind"] == "value":
            outcome["value"] = result["value"]
        elif result["kind"] == "error":
            outcome["error"] = result["error"]
        return outcome


def _finished_target_outcome(api: Api, target: _Target, snapshots: dict[str, dict]) -> dict | None:
    """The target's outcome over plain HTTP if it is final and needs nothing more; None when it
    takes waiting (or following the executions a value refers to)."""
    if target.step_id is None:
        return _finished_outcome(api, target.run_id)
    snapshot = snapshots.get(target.run_id)
    if snapshot is None:
        snapshot = snapshots[target.run_id] = api.get(run_path(target.run_id), view="inspect")
    execution = target.locate(snapshot)
    own = target.own_outcome(execution)
    if own is not None:
        return _complete(own)
    if execution.get("result") is None and target.attempt_id is not None:
        return None  # the attempt's own result is yet to come
    return _complete(api.get(f"executions/{execution['id']}/result", timeout=0))


def _wait_attempt(client: Any, target: _Target, timeout: float | None) -> dict:
    """Wait for the attempt's own result (a failure that a retry follows is the attempt's
    outcome), then its outcome: the result, or the one it points at, followed."""
    import threading

    from .client import follow_refs

    deadline = None if timeout is None else time.monotonic() + timeout
    arrived = threading.Event()

    def listener(event: dict) -> None:
        if event.get("type") in ("result", "connection"):
            arrived.set()
    snapshot = client.subscribe(f"run:{target.run_id}", listener)
    while True:
        execution = target.locate(snapshot)
        if execution.get("result") is not None:
            break
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return {"status": "pending", "execution": execution["id"]}
        arrived.wait(5.0 if remaining is None else min(5.0, remaining))  # re-read now and then regardless
        arrived.clear()
        snapshot = client.get_run(target.run_id)
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    own = target.own_outcome(execution)
    if own is None:
        return client.result(execution["id"], remaining)
    return follow_refs(client._wait_async, own, deadline)


def _wait_target(client: Any, target: _Target, timeout: float | None) -> dict:
    if target.step_id is None:
        return client.run_result(target.run_id, timeout)
    if target.attempt_id is not None:
        return _wait_attempt(client, target, timeout)
    return client.result(target.execution, timeout)


@plain_http
def cmd_runs_result(args: argparse.Namespace) -> int:
    targets = [_Target(text) for text in args.targets]  # a malformed one before any request
    snapshots: dict[str, dict] = {}
    with make_api(args) as api:  # what has finished: plain requests
        outcomes = [_finished_target_outcome(api, target, snapshots) for target in targets]
    if all(outcomes):
        return max(_outcome_exit(outcome, target.label)  # type: ignore[arg-type]
                   for target, outcome in zip(targets, outcomes, strict=True))
    code = 0
    with make_client(args) as client:  # waiting, or following returned executions: the WebSocket client
        for target, outcome in zip(targets, outcomes, strict=True):
            if outcome is None:
                outcome = _wait_target(client, target, args.timeout)
            code = max(code, _outcome_exit(outcome, target.label))
    return code


_ENCODE_SHOWN = json.JSONEncoder(default=str).encode  # json.dumps(value, default=str), one encoder for all


def _json_text(value: Any) -> str:
    """`json.dumps(value, default=str)`: a whole number or a string (most results) directly."""
    kind = value.__class__
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return json.encoder.encode_basestring_ascii(value)
    return _ENCODE_SHOWN(value)


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _describe_execution(execution: dict) -> str:
    """An attempt's outcome, or where it is when it has none: running, assigned, pending."""
    result = execution.get("result")
    if result is None:
        worker = execution.get("worker") or execution.get("session") or "a worker"
        if execution.get("started_at"):
            return f"running since {_clock(execution['started_at'])} on {worker}"
        if execution.get("assigned_at"):
            return f"assigned to {worker} at {_clock(execution['assigned_at'])}"
        return "pending"
    kind = result["kind"]
    if kind == "value":
        return "value " + _json_text(_display(result["value"]))[:120]
    if kind == "error":
        return f"error {result['error']['type']}: {result['error']['message'][:120]}"
    by = f" by {result['by']}" if result.get("by") else ""  # who cancelled it
    if result.get("successor"):
        return f"{kind}{by} -> {result['successor']}"
    return kind + by


def _requires_text(requires: dict) -> str:
    """`gpu:A100|H100, region` (a key alone: any value), as `--requires` spells them."""
    return ", ".join(key if values == ["true"] else f"{key}:{'|'.join(values)}"
                     for key, values in requires.items() if values)


def _options_text(options: dict | None) -> str:
    """A step's options as `runs inspect` shows them: `requires gpu:A100, retries 2, delay 5 s`."""
    if not options:
        return ""
    parts = []
    if options.get("requires") is not None:
        parts.append(f"requires {_requires_text(options['requires']) or 'none'}")
    memo = options.get("memo")
    if memo is not None:
        parts.append("memo" if memo is True else "memo off" if memo is False else
                     "memo on arguments " + ",".join(str(i + 1) for i in memo))
    retries = options.get("retries")
    if retries:
        limit = "unlimited" if retries.get("limit") is None else retries["limit"]
        low, high = retries.get("backoff") or (0, 0)
        parts.append(f"retries {limit}" + (f" (backoff {low:g}-{high:g} s)" if high else ""))
    for name in ("delay", "timeout"):
        if options.get(name):
            parts.append(f"{name} {options[name]:g} s")
    cache = options.get("cache")
    if cache:
        parts.append("cache" + (f" {cache['max_age']:g} s" if cache.get("max_age") is not None else ""))
    for name in ("defer", "recurrent", "wait"):
        if options.get(name):
            parts.append(name)
    return ", ".join(parts)


@plain_http
def _step_of(snapshot: dict, step_id: str) -> dict:
    step = next((s for s in snapshot["steps"] if s["id"] == step_id), None)
    if step is None:
        raise CommandError(f"no step {step_id!r}")
    return step


def _step_open(step: dict) -> bool:
    """Whether the step's latest attempt has yet to reach its outcome (no result, or one that
    hands over to another execution, such as a retry or a spawned child run)."""
    latest = max(step["executions"], key=lambda e: e["attempt"], default=None)
    return latest is not None and (latest.get("result") is None or bool(latest["result"].get("successor")))


def cmd_runs_inspect(args: argparse.Namespace) -> int:
    # RUN (the whole run) or RUN:STEP (that step of it), every one checked before anything is read.
    targets = []
    for text in args.runs:
        run_id, step_id, attempt_id = parse_target(text, "RUN or RUN:STEP")
        if attempt_id is not None:
            raise CommandError(f"malformed target {text!r}: expected RUN or RUN:STEP (e.g. R7xk:2)")
        targets.append((run_id, step_id))
    # The text needs only part of each snapshot: `view=inspect` asks for that part (a server
    # that predates it sends the whole snapshot, which prints the same).
    query = {} if args.output == "json" else {"view": "inspect"}
    with make_api(args) as api:
        def read() -> dict[str, dict]:
            return {run_id: api.get(run_path(run_id), **query) for run_id in dict.fromkeys(r for r, _ in targets)}

        snapshots = read()
        running = [r for r, step_id in targets if step_id is None and snapshots[r].get("state", "running") == "running"]
        steps = [_step_of(snapshots[r], step_id) for r, step_id in targets if step_id is not None]
        open_steps = [max(step["executions"], key=lambda e: e["attempt"])["id"] for step in steps if _step_open(step)]
        if (running or open_steps) and not args.no_wait:  # follow them until they finish, then show them as they ended
            if running:
                _wait_for_runs(args, list(dict.fromkeys(running)))
            if open_steps:
                with make_client(args) as client:
                    for execution_id in open_steps:
                        client.result(execution_id, None)
            snapshots = read()
    if args.output == "json":
        shown = [snapshots[r] if step_id is None else _step_of(snapshots[r], step_id) for r, step_id in targets]
        print(json.dumps(shown if len(shown) > 1 else shown[0], indent=2, default=str))
        return 0
    from .cli_observe import run_outcome_text

    for run_id, only in targets:  # each run's lines written at once: a 1,000-step run has 2,000 of them
        run = snapshots[run_id]
        lines = [f"run {run['id']}  {run['module']}/{run['target']}  workspace {run['workspace']}  "
                 f"created {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run['created_at']))}"
                 + (f" by {run['by']}" if run.get("by") else "")
                 + f"  {run_outcome_text(run)}"
                 + (f"  requires {_requires_text(run['requires'])}" if run.get("requires") else "")
                 + ("  memo" if run.get("memo") else "")]
        if only is None:
            for child in run["child_runs"]:
                lines.append(f"  child run {child['id']} ({child['module']}/{child['target']}) from {child['parent']}")
        parent_of = {step["id"]: step["parent"] for step in run["steps"]}
        for step in run["steps"] if only is None else [_step_of(run, only)]:
            lines.append(f"  step {step['id']}  {step['module']}/{step['target']} ({step['type']})"
                         + (f"  parent {step['parent']}" if step["parent"] else "")
                         + ("  [stale: a step it used was re-run]" if step.get("stale") else ""))
            shown = _options_text(step.get("options"))
            if shown:
                lines.append(f"    options: {shown}")
            for e in step["executions"]:
                result = e.get("result")
                timing = ""
                if e.get("started_at") and result:
                    timing = f"  ran {1000 * (result['at'] - e['started_at']):.1f} ms"
                elif result:
                    timing = f"  after {1000 * (result['at'] - e['created_at']):.1f} ms"
                waiting = f"  ({e['waiting']})" if e.get("waiting") else ""
                rerun_by = f"  (re-run by {e['by']})" if e.get("by") else ""
                reused = _reused_from(parent_of, step["parent"], result)
                lines.append(f"    {e['id']}  attempt {e['attempt']}{rerun_by}  {_describe_execution(e)}{timing}{waiting}"
                             + (f"  (reused from attempt {reused})" if reused else ""))
            if only is not None:
                for child in run["child_runs"]:
                    if child["parent"].rpartition(":")[0] == only:
                        lines.append(f"    child run {child['id']} ({child['module']}/{child['target']}) "
                                     f"from {child['parent']}")
        for link in run["children"] if only is None else []:
            if link["memo"]:
                lines.append(f"  memoised: {link['parent']} reused {link['child']}")
        for asked in run.get("inputs") or []:  # prompts (cf.Prompt): their state, who answered, when
            if only is not None and asked.get("step") != only:
                continue
            answered = (f" by {asked['by']}" if asked.get("by") else "") + (
                f" at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(asked['responded_at']))}"
                if asked.get("responded_at") else "")
            lines.append(f"  input {asked['id']}  {asked.get('title') or ''}  from {asked['execution']}  "
                         f"{asked['state']}{answered}")
        lines.append("")
        sys.stdout.write("\n".join(lines))
    return 0


def _reused_from(parent_of: dict, parent: str | None, result: dict | None) -> int | None:
    """A resumed attempt's call that took an earlier attempt's value: `cached` from a step of the
    run submitted by another attempt of the same parent step; that attempt's number."""
    if not parent or not result or result.get("kind") != "cached" or not result.get("successor"):
        return None
    other = parent_of.get(result["successor"].rpartition(":")[0])
    if not other or other == parent or other.rpartition(":")[0] != parent.rpartition(":")[0]:
        return None
    return int(other.rpartition(":")[2])


def _wait_for_runs(args: argparse.Namespace, run_ids: list[str]) -> None:
    """Follow runs until each has finished: live step counts on a terminal's stderr, and a
    warning for an execution that cannot move (as `coflux submit` gives them)."""
    with make_client(args) as client:
        for run_id in run_ids:
            progress = _Progress(run_id)
            progress.load(client.subscribe(f"run:{run_id}", progress.event))
            client.wait_run(run_id, None)
            if progress.tty:
                progress.load(client.get_run(run_id))
                progress.draw(final=True)


def cmd_runs_cancel(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        for target in args.executions:
            cancelled = client.cancel(target)
            print(f"{target}: cancelled {len(cancelled)} execution(s)" + (f": {', '.join(cancelled)}" if cancelled
                                                                          else " (nothing was running)"))
    return 0


def cmd_runs_rerun(args: argparse.Namespace) -> int:
    steps = []
    for text in args.steps:  # every one checked before anything is re-run
        match = TARGET.fullmatch(text)
        if match is None or match.group(2) is None or match.group(3) is not None:
            raise CommandError(f"a step is RUN:STEP (e.g. R7xk:2), not {text!r}")
        steps.append(text)
    code = 0
    with make_client(args) as client:
        for step in steps:
            if args.from_failure:
                execution = client.rerun(step, from_failure=True)
            else:
                execution = client.rerun(step, workspace=args.workspace)
            if args.no_wait:
                print(execution)
                continue
            print(f"{'resuming' if args.from_failure else 're-running'} {step} as {execution}", file=sys.stderr,
                  flush=True)
            # The re-run's result, followed to its outcome (its retries, ...), as `runs result` shows it.
            code = max(code, _outcome_exit(client.result(execution, args.timeout), f"attempt {execution}"))
    return code


@plain_http
def cmd_workspaces_list(args: argparse.Namespace) -> int:
    with make_api(args) as api:
        for ws in api.get("workspaces", archived=1 if args.archived else None)["workspaces"]:
            state = ws.get("state", "active")
            print(ws["name"] + (f"  (base: {ws['base']})" if ws.get("base") else "")
                  + (f"  [{state}]" if state != "active" else ""))
    return 0


def cmd_workspaces_state(args: argparse.Namespace) -> int:
    """`coflux workspaces pause|resume|archive W`."""
    with make_api(args) as api:
        changed = api.post(f"workspaces/{args.workspaces_command}", {"name": args.name})
    print(f"workspace {changed['name']} is {changed['state']}")
    return 0


def cmd_workspaces_create(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        created = client.create_workspace(args.name, args.base)
    print(f"created workspace {created['name']}" + (f" based on {created['base']}" if created.get("base") else ""))
    return 0


def cmd_workspaces_update(args: argparse.Namespace) -> int:
    if args.base and args.no_base:
        raise SystemExit("coflux: give --base or --no-base, not both")
    with make_client(args) as client:
        updated = client.update_workspace(args.name, new_name=args.rename, base=args.base,
                                          remove_base=args.no_base)
    print(f"workspace {updated['name']}" + (f" based on {updated['base']}" if updated.get("base") else " (no base)"))
    return 0


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    from .worker.slots import DEFAULT_MAX_PARKED  # the worker's own default, shown in --help

    connection_flags(p)
    p.add_argument("--concurrency", type=int, help="parallel executions (default: CPU count + 4)")
    p.add_argument("--provides", action="append", metavar="KEY:VALUE", help="tags this worker provides")
    p.add_argument("--accepts", action="append", metavar="KEY:VALUE", help="only take work requiring these")
    p.add_argument("--accept-code", action="store_true",
                   help="also run code shipped by value (a notebook cell's task sent here), not only these modules")
    p.add_argument("--dev", action="store_true",
                   help="reload when the modules' source changes (running executions finish on the old code)")
    p.add_argument("--drain-timeout", type=_non_negative_seconds, default=60.0, metavar="S",
                   help="on SIGTERM/Ctrl-C, how long running executions may take to finish before they are "
                        "reported abandoned (default 60; a second signal stops at once)")
    p.add_argument("--max-parked", type=_non_negative_int, default=DEFAULT_MAX_PARKED, metavar="N",
                   help="executions blocked on a result that may give their slot back at once, each keeping "
                        f"a process (default {DEFAULT_MAX_PARKED})")
    p.add_argument("modules", nargs="*", help="modules to host, a package: all of its modules "
                                              "(default: `modules` in coflux.toml)")


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, as wide as it would be, without importing shutil for it (and
    with shutil the compression modules): argparse makes one for every argument added."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) < 4 and kwargs.get("width") is None:
            kwargs["width"] = _terminal_columns() - 2
        super().__init__(*args, **kwargs)


class _Parser(argparse.ArgumentParser):
    """A parser whose arguments may be added when it is first used (`populate`): a command's
    options can import what they describe without every other command paying for that import."""

    def __init__(self, *args: Any, populate: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._populate = populate

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser. While it is built, argparse's message lookups (gettext's
    `_`, three for each of the 20-odd parsers, each looking for catalogues on disk) are
    remembered per message: the same words, looked up once. Parsing itself is untouched."""
    translate = getattr(argparse, "_", None)
    if not callable(translate):
        return _build_parser()
    found: dict[str, str] = {}

    def remembered(message: str) -> str:
        text = found.get(message)
        if text is None:
            text = found[message] = translate(message)
        return text

    argparse._ = remembered  # type: ignore[attr-defined]
    try:
        return _build_parser()
    finally:
        argparse._ = translate  # type: ignore[attr-defined]


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="coflux", description="Durable workflows for Python, in Jupyter.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("server", help="run the orchestration server (headless)", populate=arguments(
        ("--host", {"help": "interface to listen on (default 127.0.0.1)"}),
        ("--port", {"type": int, "help": "port (default 7777; 0 picks a free one)"}),
        ("--data-dir", {"help": "where the SQLite database lives (default ./.coflux)"}),
        ("--db-url", {"help": "any SQLAlchemy database URL (overrides --data-dir)"}),
        ("--token", "--super-token", {"dest": "token",
                                      "help": "the super token clients must present (default: generated)"}),
        ("--super-token-hash", {"metavar": "SHA256",
                                "help": "the super token's SHA-256 (hex) instead of the token itself "
                                        "(env COFLUX_SUPER_TOKEN_HASH)"}),
        ("--allow-origin", {"action": "append", "metavar": "ORIGIN",
                            "help": "let browser pages of this origin (e.g. https://notebooks.example) call the "
                                    "server with a token (repeatable; env COFLUX_ALLOW_ORIGINS, comma-separated); "
                                    "without it only same-origin pages may"}),
        ("--no-auth", {"action": "store_true", "help": "accept requests without a token (local only!)"}),
        ("--reconnect-grace", {"type": float, "metavar": "SECONDS",
                               "help": "how long a disconnected worker may take to come back before its running "
                                       "executions are abandoned (and retried where allowed); default 30"}),
        ("--idle-timeout", {"type": float, "metavar": "SECONDS",
                            "help": "close an HTTP connection that sends no complete request headers for this "
                                    "long (new or kept alive); default 60"}),
        ("--max-blob-bytes", {"type": int, "metavar": "BYTES",
                              "help": "largest blob (a large value, an asset file) the server stores; "
                                      "default 4 GiB"}),
        ("--launcher", {"action": "append", "metavar": "TYPE",
                        "help": "let pools launch workers of this type: process, docker or kubernetes "
                                "(repeatable; env COFLUX_LAUNCHER_TYPES; default none)"})))
    p.set_defaults(fn=cmd_server)

    p = sub.add_parser("worker", help="run a worker for one or more modules", populate=_worker_arguments)
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser("submit", help="submit a run of MODULE/WORKFLOW with JSON arguments", populate=arguments(
        connection_flags,
        ("--no-wait", {"action": "store_true", "help": "print the run id and exit"}),
        ("--idempotency-key", {"help": "submit at most once per key"}),
        ("--requires", {"action": "append", "metavar": "KEY:VALUE",
                        "help": "run only on workers that provide this tag (repeatable; KEY alone: any value); "
                                "replaces the workflow's requires for this run"}),
        ("--no-requires", {"action": "store_true", "help": "drop the workflow's requires for this run"}),
        ("--memo", {"dest": "memo", "action": "store_const", "const": True, "default": None,
                    "help": "memoise the run's calls (as @cf.workflow(memo=True))"}),
        ("--no-memo", {"dest": "memo", "action": "store_const", "const": False,
                       "help": "do not memoise the run's calls, whatever the workflow says"}),
        ("--delay", {"metavar": "S", "help": "start the workflow's step no sooner than S seconds from now"}),
        ("--retries", {"metavar": "N", "help": "retry the workflow's step up to N times when it fails"}),
        ("target", {"metavar": "MODULE/WORKFLOW"}),
        ("arguments", {"nargs": "*", "metavar": "JSON"})))
    p.set_defaults(fn=cmd_submit)

    runs = sub.add_parser("runs", help="inspect runs").add_subparsers(dest="runs_command", required=True)
    p = runs.add_parser("result", help="print the result of runs, steps or attempts (waiting for them)",
                        populate=arguments(
        connection_flags,
        ("--timeout", {"type": float, "default": None, "help": "seconds to wait (default: until done)"}),
        ("targets", {"nargs": "+", "metavar": "RUN[:STEP[:ATTEMPT]]",
                     "help": "a run (its outcome), a step (its latest attempt, followed to its outcome) or an "
                             "attempt (its own result)"})))
    p.set_defaults(fn=cmd_runs_result)
    p = runs.add_parser("inspect", help="show steps, attempts and results of runs or steps (once they finish)",
                        populate=arguments(
        connection_flags,
        ("-o", "--output", {"choices": ["text", "json"], "default": "text"}),
        ("--no-wait", {"action": "store_true", "help": "show the runs as they are now, finished or not"}),
        ("runs", {"nargs": "+", "metavar": "RUN[:STEP]", "help": "a run, or one step of it"})))
    p.set_defaults(fn=cmd_runs_inspect)
    p = runs.add_parser("cancel", help="cancel executions (RUN:STEP:ATTEMPT, or RUN) and their descendants",
                        populate=arguments(connection_flags, ("executions", {"nargs": "+", "metavar": "EXECUTION"})))
    p.set_defaults(fn=cmd_runs_cancel)
    p = runs.add_parser("rerun", help="run steps (RUN:STEP) again, ignoring cache and memo, and print the result",
                        populate=arguments(
        connection_flags,
        ("--no-wait", {"action": "store_true", "help": "print the new attempt's id and exit"}),
        ("--timeout", {"type": float, "default": None, "help": "seconds to wait (default: until done)"}),
        ("--from-failure", {"action": "store_true",
                            "help": "resume a failed step: calls an earlier attempt completed are reused, "
                                    "only failed or never-reached ones run again"}),
        ("steps", {"nargs": "+", "metavar": "STEP"})))
    p.set_defaults(fn=cmd_runs_rerun)

    from .cli_observe import add_commands

    add_commands(sub, runs)  # logs, metrics, runs list
    from .cli_assets import add_commands as add_asset_commands

    add_asset_commands(sub, connection_flags)  # assets inspect|download
    from .cli_admin import add_commands as add_admin_commands

    add_admin_commands(sub, connection_flags)  # tokens, manifests
    from .cli_inputs import add_commands as add_input_commands

    add_input_commands(sub)  # inputs list|inspect|respond|dismiss

    from .cli_pools import add_commands as add_pool_commands

    add_pool_commands(sub)  # pools create|list|get|update|delete|enable|disable|launches|export|import

    spaces = sub.add_parser("workspaces", help="list and create workspaces").add_subparsers(
        dest="workspaces_command", required=True)
    p = spaces.add_parser("list", help="list workspaces (with their state: paused)", populate=arguments(
        connection_flags, ("--archived", {"action": "store_true", "help": "also list archived workspaces"})))
    p.set_defaults(fn=cmd_workspaces_list)
    for action, text in [("pause", "pause a workspace: nothing new is dispatched in it (running work finishes, "
                                   "submits are accepted and wait)"),
                         ("resume", "resume a paused workspace"),
                         ("archive", "archive a workspace: no new runs, hidden from lists, its history kept")]:
        p = spaces.add_parser(action, help=text, populate=arguments(connection_flags, ("name", {"metavar": "WORKSPACE"})))
        p.set_defaults(fn=cmd_workspaces_state)
    p = spaces.add_parser("create", help="create a workspace (optionally based on another)", populate=arguments(
        connection_flags,
        ("name", {}),
        ("--base", {"help": "base workspace: its cache and memo results are visible in the new one"})))
    p.set_defaults(fn=cmd_workspaces_create)
    p = spaces.add_parser("update", help="rename a workspace or change its base", populate=arguments(
        connection_flags,
        ("name", {}),
        ("--rename", {"metavar": "NEW_NAME", "help": "new name"}),
        ("--base", {"help": "new base workspace"}),
        ("--no-base", {"action": "store_true", "help": "remove the base"})))
    p.set_defaults(fn=cmd_workspaces_update)
    return parser


def _one_line_error(exc: Exception) -> str | None:
    """The message of a failure the user can act on (no server, wrong token, a refusal), or
    None for a fault of coflux itself (its traceback is kept)."""
    if isinstance(exc, CommandError):
        return str(exc)
    connection = sys.modules.get("coflux.connection")  # only a command that opened a WebSocket raises these
    if connection is not None and isinstance(exc, connection.ServerUnavailable | connection.RemoteError):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose or not getattr(args.fn, "plain_http", False):  # those log nothing: no `logging` import
        configure_logging(args.verbose)
    try:
        code = args.fn(args) or 0
        sys.stdout.flush()  # here, so a reader that went away (`| head`) is handled below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `coflux logs R | head`: the reader has what it wanted
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush does not fail again
        except OSError:
            pass
        return 0
    except Exception as exc:
        message = _one_line_error(exc)
        if message is None:
            raise
        print(f"coflux: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

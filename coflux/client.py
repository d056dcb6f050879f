"""A Python client for scripts, tests and notebooks: submit runs, wait for results, watch them.

Layer: the client, above the targets, the handles and the runtime interface; below the workers,
the widgets and the session glue, none of which it imports. A `Run` displays in a notebook
through the session (`runtime.session()`: coflux/session.py with coflux/widgets.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import blobs, config, runtime, serialization, shipping
from .connection import Connection
from .errors import RemoteError
from .models import outcome_value
from .options import run_overrides, target_run_options, wait_timeout
from .pools_api import PoolsApi

if TYPE_CHECKING:
    from .target import Target

# Large arguments and results go to the server's blob store.
serialization.use_blob_store(blobs.for_values)


class Run:
    """A submitted run: `.id`, `.result(timeout=None)`, `.inspect()`. In a notebook it displays
    as its live view; `.graph`, `.timeline`, `.logs`, `.metrics`, `.assets` display one part."""

    def __init__(self, client: Client, run_id: str, execution_id: str, module: str, target: str) -> None:
        self.client = client
        self.id = run_id
        self.execution_id = execution_id
        self.module = module
        self.target = target

    def result(self, timeout: float | None = None) -> Any:
        """Block until the run finishes (or `timeout` seconds pass: TimeoutError). Executions the
        workflow returned (also inside lists, dicts, ...) are waited for and replaced by their
        values, as `.result()` on each would give them; an error of one of them is raised."""
        __tracebackhide__ = True  # noqa: F841 - IPython folds this library frame out of tracebacks
        outcome = self.client.run_result(self.id, timeout)
        if outcome.get("status") == "pending":
            raise TimeoutError(f"run {self.id} did not finish within {timeout} s")
        return outcome_value(outcome, self.client)

    def poll(self, timeout: float | None = None, *, default: Any = None) -> Any:
        __tracebackhide__ = True  # noqa: F841 - IPython folds this library frame out of tracebacks
        outcome = self.client.run_result(self.id, timeout if timeout is not None else 0)
        if outcome.get("status") == "pending":
            return default
        return outcome_value(outcome, self.client)

    def inspect(self) -> dict:
        """The run's steps, executions and results, as the server has them now."""
        return self.client.get_run(self.id)

    # ------------------------------------------------------------ display (the session's views)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook a run displays as its live view (graph, timeline, logs, metrics, assets)."""
        return runtime.session().run_bundle(self)

    def widget(self, height: int = 0) -> Any:
        """The run's live view as a widget (what displaying the run shows)."""
        return runtime.session().run_view(self, height=height)

    view = widget

    @property
    def graph(self) -> Any:
        """Displays as the run's graph alone (`.view()` for the widget)."""
        return self._part("graph")

    @property
    def timeline(self) -> Any:
        """Displays as the run's timeline alone."""
        return self._part("timeline")

    @property
    def logs(self) -> Any:
        """Displays as the run's logs alone (`client.logs(run)` returns the lines)."""
        return self._part("logs")

    @property
    def metrics(self) -> Any:
        """Displays as the run's metric charts alone (`metrics_figure()` for a plotly Figure)."""
        return self._part("metrics")

    @property
    def assets(self) -> Any:
        """Displays as the run's assets with previews; `run.assets()` returns them (`cf.Asset`)."""
        return self._part("assets")

    def _part(self, part: str) -> Any:
        return runtime.session().run_part(self, part)

    def metrics_figure(self, title: str | None = None) -> Any:
        """A `plotly.graph_objects.Figure` of the run's metrics as recorded so far, drawn as the
        run view draws them: one subplot per metric group, each scale on its own axis, a trace per
        series named as in the view (many series of one key as a band), progress as areas."""
        series = self.client.metrics(self)
        if series:  # series of several steps are named by their step's target, as in the view
            targets = {execution["id"]: step["target"] for step in self.client.get_run(self.id)["steps"]
                       for execution in step["executions"]}
            for item in series:
                item.setdefault("target", targets.get(item.get("execution_id")))
        return runtime.session().metrics_figure(series, title or f"{self.module}/{self.target} {self.id}")

    def cancel(self) -> list[str]:
        """Cancel the run's unfinished executions."""
        return self.client.cancel(self.id)

    def resume(self) -> Attempt:
        """Resume the failed run from where it failed: a new attempt of its workflow step in which
        every call an earlier attempt completed (same target, arguments and code) resolves at once
        to that value, and only failed, cancelled or never-reached calls run again."""
        step = f"{self.id}:1"
        return Attempt(self.client, self.client.rerun(step, from_failure=True, code_hash=self._code_hash(step)),
                       self)

    def rerun(self, step: Any) -> Attempt:
        """Run one step of this run again (`"R...:5"`, `5`, or a step/execution object with
        `.step` or `.id`) with the code as this process defines it now (a cell edited since runs
        its new definition); steps that used the old result are marked stale. Returns the new
        attempt; `.result()` waits for it."""
        step_id = _step_id(self.id, step)
        target = self._target(step_id)
        code = shipping.ship(target) if target is not None and shipping.should_ship(target) else None
        return Attempt(self.client, self.client.rerun(
            step_id, code_hash=target.code_hash() if target is not None else None, code=code), self)

    def _code_hash(self, step_id: str) -> str | None:
        target = self._target(step_id)
        return target.code_hash() if target is not None else None

    def _target(self, step_id: str) -> Any:
        """The step's target as defined in this process now (a notebook's cells); None where
        this process defines no targets (a script), without asking the server."""
        from .target import registered_targets

        targets = registered_targets()
        if not targets:
            return None
        if step_id == f"{self.id}:1":
            module, name = self.module, self.target
        else:
            info = next((s for s in self.client.get_run(self.id).get("steps") or [] if s.get("id") == step_id), None)
            if info is None:
                return None
            module, name = info.get("module"), info.get("target")
        for target in targets.values():
            if target.module == module and target.name == name:
                return target
        return None

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.module}/{self.target}>"


def _step_id(run_id: str, step: Any) -> str:
    if isinstance(step, int) and not isinstance(step, bool):
        return f"{run_id}:{step}"
    if isinstance(step, dict):  # a step or an attempt of `run.inspect()`
        step = step.get("id")
    for attribute in ("step", "step_id", "id"):
        value = getattr(step, attribute, None)
        if isinstance(value, str):
            step = value
            break
    if not isinstance(step, str) or step.count(":") not in (1, 2) or not step.startswith(run_id + ":"):
        raise ValueError(f"a step of run {run_id} is {run_id}:N (or N), not {step!r}")
    return ":".join(step.split(":")[:2])


class Attempt:
    """A new attempt of a step (`Run.resume()`, `Run.rerun(...)`): `.id`, `.result(timeout)`;
    in a notebook it displays as its run's live view."""

    def __init__(self, client: Client, execution_id: str, run: Run) -> None:
        self.client = client
        self.id = execution_id
        self.step = execution_id.rpartition(":")[0]
        self.attempt = int(execution_id.rpartition(":")[2])
        self.run = run

    def result(self, timeout: float | None = None) -> Any:
        """Wait for this attempt's outcome (followed along retries) and return its value."""
        outcome = self.client.result(self.id, timeout)
        if outcome.get("status") == "pending":
            raise TimeoutError(f"{self.id} did not finish within {timeout} s")
        return outcome_value(outcome, self.client)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.run._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        return f"<Attempt {self.id} of {self.run.module}/{self.run.target}>"


class Client:
    """`Client(url, token).submit("module", "workflow", *args, **kwargs)` -> Run."""

    # An error raised through a client (a script, a notebook) carries the remote frames in its
    # traceback (remote_frames.py); inside an execution they travel in the error payload instead.
    shows_remote_frames = True

    def __init__(self, url: str | None = None, token: str | None = None, *, workspace: str | None = None,
                 connection: Connection | None = None) -> None:
        self.workspace = workspace or config.workspace(None)
        # Whom this client's submits, re-runs and cancels are recorded as done by (a kernel's: the
        # Jupyter user). Only a connection with the super token may say so; otherwise the server
        # records its token's name.
        self.acting_for: str | None = None
        self._listeners: dict[str, list[Callable[[dict], None]]] = {}
        self._lock = threading.Lock()
        self._owns_connection = connection is None
        self._feeds: dict[str, _Feed] = {}  # topic -> where its viewers are in the event feed
        if connection is None:
            connection = Connection(config.server_url(url), config.token(token), name="coflux-client",
                                    on_push=self._on_push)
            connection.connect_hooks.append(self._connected)
            connection.disconnect_hooks.append(self._disconnected)
            connection.start()
        else:  # a kernel's connection: it forwards events to us
            connection.connect_hooks.append(self._connected)
            connection.disconnect_hooks.append(self._disconnected)
        self.connection = connection
        # Large values and assets go over HTTP to the same server (the latest client is the default).
        self.blobs = blobs.configure(connection.url, connection.token)

    @property
    def url(self) -> str:
        return self.connection.url

    def close(self) -> None:
        if self._owns_connection:
            self.connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------- runs

    def submit(self, module: str, workflow: str, /, *args: Any, options: dict[str, Any] | None = None,
               **kwargs: Any) -> Run:
        """Start a run of a registered workflow with these arguments. `options` override the
        workflow's own for this run, in the decorator's forms (`{"requires": {"gpu": "A100"},
        "retries": 2, "memo": True, "delay": 5, "timeout": 60}`; `None`, `0` or `False` switch
        one off): they apply to the run's root step, and `requires` and `memo` to the run. (A
        workflow parameter named `options` is then given positionally.)"""
        overrides = run_overrides(options)  # checked before anything is sent
        return self._submit(module, workflow, [serialization.encode(a, blobs=self.blobs) for a in args],
                            {k: serialization.encode(v, blobs=self.blobs) for k, v in kwargs.items()},
                            options=overrides)

    def submit_target(self, target: Target, *args: Any, **kwargs: Any) -> Run:
        """Start a run of `target` (what `target.run(...)` does): the target's options, those of
        a `with_*` copy included, are the run's root step's, as a caller's are a child step's."""
        values = target.bind(*args, **kwargs)
        return self._submit(target.module, target.name,
                            [serialization.encode(v, blobs=self.blobs) for v in values], {},
                            options=target_run_options(target.options), code_hash=target.code_hash())

    def assets(self, run: Run | str) -> list:
        """The assets (`cf.Asset`) the run's executions created, oldest first."""
        from .assets import Asset

        run_id = run.id if isinstance(run, Run) else run
        listed = self.blobs.api_get(f"runs/{run_id}/assets")["assets"]
        return [Asset.from_data(item, blobs=self.blobs) for item in listed]

    def asset(self, asset_id: str) -> Any:
        """The asset `asset_id` (`cf.Asset`), to inspect, read or restore."""
        from .assets import Asset

        return Asset.from_data(self.blobs.api_get(f"assets/{asset_id}"), blobs=self.blobs)

    def submit_json(self, module: str, workflow: str, args: list[Any], *, idempotency_key: str | None = None,
                    options: dict | None = None) -> Run:
        """Submit with arguments that are plain JSON values (the command line's form); `options`
        are wire overrides of the workflow's (a key given as None clears one)."""
        return self._submit(module, workflow, [{"v": a} for a in args], {}, idempotency_key=idempotency_key,
                            options=options)

    def _submit(self, module: str, workflow: str, args: list[dict], kwargs: dict[str, dict], *,
                idempotency_key: str | None = None, options: dict | None = None,
                code_hash: str | None = None) -> Run:
        params = {"module": module, "target": workflow, "type": "workflow", "args": args, "kwargs": kwargs,
                  "workspace": self.workspace, "idempotency_key": idempotency_key, "options": options or {},
                  **self._by()}
        if code_hash is not None:
            params["code_hash"] = code_hash
        reply = self.connection.call("submit", params)
        return Run(self, reply["run"], reply["execution"], module, workflow)

    def run(self, run_id: str) -> Run:
        snapshot = self.get_run(run_id)
        return Run(self, run_id, f"{run_id}:1:1", snapshot["module"], snapshot["target"])

    def get_run(self, run_id: str) -> dict:
        return self.connection.call("get_run", {"run": run_id})

    # -------------------------------------------------------------- Resolver protocol

    def wait(self, execution_id: str, timeout: float | None) -> dict:
        timeout = wait_timeout(timeout)  # math.inf: no timeout; NaN or negative: ValueError
        return self.connection.call("wait", {"execution": execution_id, "timeout": timeout})

    def result(self, execution_id: str, timeout: float | None = None) -> dict:
        """The outcome of an execution with the executions its value references resolved (see
        `follow_refs`); `run_result` gives a run's."""
        timeout = wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        return follow_refs(self._wait_async, self.wait(execution_id, timeout), deadline)

    def wait_run(self, run_id: str, timeout: float | None) -> dict:
        """`wait` for a run's outcome: the server follows its root step's latest attempt (a
        re-run of the root step replaces the attempts before it)."""
        timeout = wait_timeout(timeout)
        try:
            return self.connection.call("wait", {"run": run_id, "timeout": timeout})
        except RemoteError as exc:
            if exc.code != "bad_request" or "'execution'" not in str(exc):
                raise
        # A server from before runs were waited on as such: its root step's first attempt.
        return self.connection.call("wait", {"execution": f"{run_id}:1:1", "timeout": timeout})

    def run_result(self, run_id: str, timeout: float | None = None) -> dict:
        """`result` of a run (see `wait_run`): what `Run.result()`, `coflux submit` and `coflux
        runs result` show."""
        timeout = wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        return follow_refs(self._wait_async, self.wait_run(run_id, timeout), deadline)

    def _wait_async(self, execution_id: str, timeout: float | None) -> Future:
        return self.connection.request("wait", {"execution": execution_id, "timeout": timeout})

    def select(self, execution_ids: list[str], timeout: float | None = None,
               cancel_remaining: bool = False) -> dict:
        """Wait for the first of these executions to resolve: its outcome, with `winner` (its
        index). Status `pending` when `timeout` passed first."""
        timeout = wait_timeout(timeout)
        return self.connection.call("select", {"executions": list(execution_ids), "timeout": timeout,
                                               "cancel_remaining": cancel_remaining})

    def cancel(self, execution_id: str) -> list[str]:
        """Cancel an execution (or a run, by its id) and its unfinished descendants."""
        if ":" not in execution_id:  # a run: the server picks its root step's latest attempt
            return self.connection.call("cancel", {"run": execution_id, **self._by()})["cancelled"]
        return self.connection.call("cancel", {"execution": execution_id, **self._by()})["cancelled"]

    def _by(self) -> dict:
        return {"by": self.acting_for} if self.acting_for else {}

    def rerun(self, step_id: str, *, workspace: str | None = None, from_failure: bool = False,
              code_hash: str | None = None, code: dict | None = None) -> str:
        """Run a step again (ignoring cache and memo); returns the new execution's id.
        `from_failure`: resume a failed step, its calls that an earlier attempt completed with a
        value reused (the step's own workspace). `code_hash`: the code the new attempt runs."""
        params: dict[str, Any] = {"step": step_id, **self._by()}
        if from_failure:
            params["from_failure"] = True
        else:
            params["workspace"] = workspace
        if code_hash is not None:
            params["code_hash"] = code_hash
        if code is not None:  # a shipped step: the code it runs now (coflux/shipping.py)
            params["code"] = code
        return self.connection.call("rerun", params)["execution"]

    def workspaces(self) -> list[dict]:
        return self.connection.call("workspaces", {})

    def create_workspace(self, name: str, base: str | None = None) -> dict:
        return self.connection.call("create_workspace", {"name": name, "base": base})

    def update_workspace(self, name: str, *, new_name: str | None = None, base: str | None = None,
                         remove_base: bool = False) -> dict:
        return self.connection.call("update_workspace", {"name": name, "new_name": new_name, "base": base,
                                                         "remove_base": remove_base})

    # -------------------------------------------------------------- pools

    @property
    def pools(self) -> PoolsApi:
        """This workspace's pools: `client.pools.create("gpu", "process", set={"directory": ...},
        modules=["app.flows"], provides={"gpu": ["A100"]})`, `.list()`, `.get(name)`, `.update(...)`,
        `.enable(name)`, `.disable(name)`, `.delete(name)`, `.launches(name)`, `.export()`, `.import_(...)`."""
        return PoolsApi(self.connection.url, self.connection.token, self.workspace)

    # -------------------------------------------------------------- what runs reported

    def runs(self, workflow: str | None = None, *, status: str | None = None, limit: int = 50) -> list[dict]:
        """Runs, newest first: of one workflow (`"module/name"`) and with a status (`running`,
        `succeeded`, `failed`, `cancelled`) if given."""
        return self.connection.call("list_runs", {"workflow": workflow, "status": status, "limit": limit})["runs"]

    def logs(self, run: str | Run, *, step: str | None = None, level: str | None = None,
             search: str | None = None, after: int = 0, limit: int = 10_000) -> list[dict]:
        """A run's log lines in order: each with `level`, `execution_id`, `template`, `values`
        (decoded), `message` (the template with its values filled in) and `at`."""
        run_id = run.id if isinstance(run, Run) else run
        reply = self.connection.call("get_logs", {"run": run_id, "step": step, "level": level, "search": search,
                                                  "after": after, "limit": limit})
        return [log_line(line) for line in reply["lines"]]

    def metrics(self, run: str | Run) -> list[dict]:
        """A run's metric series: each with `execution_id`, `key`, `group`, `scale` and `points`
        ([x, value] in the order recorded)."""
        run_id = run.id if isinstance(run, Run) else run
        return self.connection.call("get_metrics", {"run": run_id})["series"]

    # -------------------------------------------------------------- live updates

    def subscribe(self, topic: str, listener: Callable[[dict], None]) -> dict:
        """Call `listener(event)` for each event on `topic` (from the connection thread); returns
        the topic's snapshot (for `run:<id>`, the run as `get_run` gives it).

        Events carry the feed's sequence number: the listener gets each event once, in order,
        and only those after the snapshot. After a reconnect (a server restart, say) the client
        re-subscribes from the last event it delivered, so nothing is lost or repeated; while it
        is disconnected listeners get `{"type": "connection", "connected": False}` (then True)."""
        with self._lock:
            self._listeners.setdefault(topic, []).append(listener)
            feed = self._feeds.get(topic)
            fresh = feed is None
            if fresh:
                feed = self._feeds[topic] = _Feed()
        if not fresh:
            return self.connection.call("get_run", {"run": topic[4:]}) if topic.startswith("run:") else {}
        snapshot = self.connection.call("subscribe", {"topic": topic})
        self.connection.call_soon(self._caught_up, topic, (snapshot or {}).get("seq", 0), [])
        return snapshot

    def unsubscribe(self, topic: str, listener: Callable[[dict], None]) -> None:
        with self._lock:
            listeners = self._listeners.get(topic, [])
            if listener in listeners:
                listeners.remove(listener)
            empty = not listeners
        if empty:
            with self._lock:
                self._feeds.pop(topic, None)
            self.connection.request("unsubscribe", {"topic": topic})

    def _on_push(self, message: dict) -> None:
        if message.get("op") != "events":
            return
        for item in message["events"]:
            topic, event = item["topic"], item["data"]
            with self._lock:
                feed = self._feeds.get(topic)
                if feed is not None and feed.catching_up:
                    feed.held.append(event)  # after what the catch-up brings
                    continue
                if feed is not None and not feed.accept(event):
                    continue
            self._deliver(topic, event)

    def _deliver(self, topic: str, event: dict) -> None:
        with self._lock:
            listeners = list(self._listeners.get(topic, ()))
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logging.getLogger("coflux.client").exception("event listener failed")

    def _caught_up(self, topic: str, seq: int, events: list[dict]) -> None:
        """(Loop thread) the snapshot or catch-up of `topic` arrived: deliver what came meanwhile."""
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is None:
                return
            feed.seq = max(feed.seq, int(seq or 0))
            pending, feed.held, feed.catching_up = events + feed.held, [], False
            ready = [e for e in pending if feed.accept(e)]
        for event in ready:
            self._deliver(topic, event)

    def _connected(self, reconnect: bool) -> None:
        """(Loop thread) a new connection: resume every subscription where it stopped."""
        if not reconnect:
            return
        with self._lock:
            topics = list(self._feeds.items())
            for _, feed in topics:
                feed.catching_up = True
        for topic, feed in topics:
            self._deliver(topic, {"type": "connection", "connected": True})
            future = self.connection.request("subscribe", {"topic": topic, "after": feed.seq})

            def resumed(f: Future, topic: str = topic) -> None:
                error = f.exception()
                events = [] if error is not None else (f.result() or {}).get("events", [])
                self._caught_up(topic, 0, events)
            future.add_done_callback(resumed)

    def _disconnected(self) -> None:
        with self._lock:
            topics = list(self._feeds)
        for topic in topics:
            self._deliver(topic, {"type": "connection", "connected": False})


def log_line(line: dict) -> dict:
    """A log line as the server stores it, with its values decoded and its message rendered."""
    from .logs import render

    values = {}
    for name, wire in (line.get("fields") or {}).items():
        try:
            values[name] = serialization.to_display(wire)
        except Exception:
            values[name] = wire.get("v")
    return {**line, "values": values, "message": render(line.get("template"), values)}


class _Feed:
    """A subscribed topic's place in the event feed."""

    __slots__ = ("seq", "catching_up", "held")

    def __init__(self) -> None:
        self.seq = 0  # the last event delivered (or the snapshot's position)
        self.catching_up = True  # until the snapshot or catch-up arrives, live events wait
        self.held: list[dict] = []

    def accept(self, event: dict) -> bool:
        seq = event.get("seq")
        if not isinstance(seq, int):
            return True  # an event without a number (an older server): deliver as it comes
        if seq <= self.seq:
            return False  # the snapshot or an earlier delivery had it
        self.seq = seq
        return True


# ------------------------------------------------------------------ returned executions

MAX_FOLLOWED = 10_000  # executions one result may pull in (a map-reduce returning its 10k handles)
MAX_REF_DEPTH = 32  # an execution returning an execution returning ... (deeper ones stay references)


def follow_refs(wait: Callable[[str, float | None], Future], outcome: dict, deadline: float | None) -> dict:
    """`outcome` with every execution its value references (a workflow that returns
    `t.submit(...)` or a list of them) replaced by that execution's value, recursively: the
    outcome `.result()` on each handle would give. A referenced execution that failed, was
    cancelled (...) or is still pending at `deadline` (monotonic) makes the whole outcome that one.

    Works on wire values, so the CLI can display the result without unpickling and Python code can
    decode it. Bounded: at most MAX_FOLLOWED executions and MAX_REF_DEPTH levels are followed, and
    a reference back into its own chain (a cycle) stays a reference. The waits of one level are
    sent together, so a thousand returned handles cost one round trip, not a thousand.
    """
    if outcome.get("status") != "value":
        return outcome
    fetched: dict[str, dict] = {}  # referenced id -> its outcome (the server follows successors)
    if outcome.get("execution"):
        fetched[outcome["execution"]] = outcome  # a reference back to it is a cycle: no need to ask
    frontier = _ref_ids(outcome["value"])
    for _ in range(MAX_REF_DEPTH):
        frontier = [i for i in dict.fromkeys(frontier) if i not in fetched][:MAX_FOLLOWED - len(fetched)]
        if not frontier:
            break
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        futures = {i: wait(i, remaining) for i in frontier}
        frontier = []
        for execution_id, future in futures.items():
            fetched[execution_id] = found = future.result()
            if found.get("status") == "value":
                frontier.extend(_ref_ids(found["value"]))

    def resolve(wire: dict, chain: tuple[str, ...]) -> dict:
        """The wire value with the fetched references substituted, or the outcome that stops it."""
        refs = wire.get("refs") or []
        values: list[dict | None] = []
        for ref in refs:
            ref_id = ref.get("id") if ref.get("type") == "execution" else None
            found = fetched.get(ref_id) if ref_id is not None and ref_id not in chain else None
            if found is None:
                values.append(None)  # not followed (bound reached, or a cycle): stays a reference
                continue
            if found.get("status") != "value":
                raise _Stop(found)
            values.append(resolve(found["value"], (*chain, ref_id)))
        return _substitute(wire, values) if refs else wire

    try:
        return {**outcome, "value": resolve(outcome["value"], (outcome.get("execution") or "",))}
    except _Stop as stop:
        return stop.outcome


class _Stop(Exception):
    def __init__(self, outcome: dict) -> None:
        self.outcome = outcome


def _ref_ids(wire: dict) -> list[str]:
    return [r["id"] for r in wire.get("refs") or [] if r.get("type") == "execution" and r.get("id")]


def _substitute(wire: dict, values: list[dict | None]) -> dict:
    """Replace `{"$": "ref", "i": k}` in `wire` by the data of `values[k]` (where not None),
    merging the refs those values still carry into one list."""
    refs: list[dict] = []
    old_refs = wire.get("refs") or []
    kept: dict[int, int] = {}  # old index -> new index, for references that stay

    def replace(index: int) -> Any:
        value = values[index]
        if value is None:
            if index not in kept:
                kept[index] = len(refs)
                refs.append(old_refs[index])
            return {"$": "ref", "i": kept[index]}
        return _rebase(value, refs)

    data = _map_refs(wire["v"], replace)
    return {"v": data, "refs": refs} if refs else {"v": data}


def _rebase(wire: dict, refs: list[dict]) -> Any:
    """The data of `wire` with its ref indices moved to the end of `refs` (appending them)."""
    inner = wire.get("refs") or []
    if not inner:
        return wire["v"]
    offset = len(refs)
    refs.extend(inner)
    return _map_refs(wire["v"], lambda index: {"$": "ref", "i": index + offset})


def _map_refs(data: Any, on_ref: Callable[[int], Any]) -> Any:
    """`data` (wire JSON) with each `{"$": "ref", "i": k}` replaced by `on_ref(k)`."""
    if isinstance(data, list):
        return [_map_refs(v, on_ref) for v in data]
    if not isinstance(data, dict):
        return data
    if data.get("$") == "ref":
        return on_ref(data["i"])
    return {k: _map_refs(v, on_ref) for k, v in data.items()}

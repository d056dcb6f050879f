"""A Python client for scripts, tests and notebooks: submit runs, wait for results, watch them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import config, serialization
from .connection import Connection
from .context import outcome_value

if TYPE_CHECKING:
    from .target import Target


class Run:
    """A submitted run: `.id`, `.result(timeout=None)`, `.inspect()`. In a notebook it displays
    as a live widget."""

    def __init__(self, client: Client, run_id: str, execution_id: str, module: str, target: str) -> None:
        self.client = client
        self.id = run_id
        self.execution_id = execution_id
        self.module = module
        self.target = target

    def result(self, timeout: float | None = None) -> Any:
        """Block until the run finishes (or `timeout` seconds pass: TimeoutError)."""
        outcome = self.client.wait(self.execution_id, timeout)
        if outcome.get("status") == "pending":
            raise TimeoutError(f"run {self.id} did not finish within {timeout} s")
        return outcome_value(outcome, self.client)

    def poll(self, timeout: float | None = None, *, default: Any = None) -> Any:
        outcome = self.client.wait(self.execution_id, timeout if timeout is not None else 0)
        if outcome.get("status") == "pending":
            return default
        return outcome_value(outcome, self.client)

    def inspect(self) -> dict:
        """The run's steps, executions and results, as the server has them now."""
        return self.client.get_run(self.id)

    def cancel(self) -> list[str]:
        """Cancel the run's unfinished executions."""
        return self.client.cancel(self.execution_id)

    def widget(self):
        from .widgets import RunWidget

        return RunWidget(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.module}/{self.target}>"


class Client:
    """`Client(url, token).submit("module", "workflow", *args, **kwargs)` -> Run."""

    def __init__(self, url: str | None = None, token: str | None = None, *, workspace: str | None = None,
                 connection: Connection | None = None) -> None:
        self.workspace = workspace or config.workspace(None)
        self._listeners: dict[str, list[Callable[[dict], None]]] = {}
        self._lock = threading.Lock()
        self._owns_connection = connection is None
        if connection is None:
            connection = Connection(config.server_url(url), config.token(token), name="coflux-client",
                                    on_push=self._on_push)
            connection.start()
        self.connection = connection

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

    def submit(self, module: str, workflow: str, *args: Any, **kwargs: Any) -> Run:
        return self._submit(module, workflow, [serialization.encode(a) for a in args],
                            {k: serialization.encode(v) for k, v in kwargs.items()})

    def submit_target(self, target: Target, *args: Any, **kwargs: Any) -> Run:
        values = target.bind(*args, **kwargs)
        return self._submit(target.module, target.name, [serialization.encode(v) for v in values], {})

    def submit_json(self, module: str, workflow: str, args: list[Any], *, idempotency_key: str | None = None,
                    options: dict | None = None) -> Run:
        """Submit with arguments that are plain JSON values (the command line's form)."""
        return self._submit(module, workflow, [{"v": a} for a in args], {}, idempotency_key=idempotency_key,
                            options=options)

    def _submit(self, module: str, workflow: str, args: list[dict], kwargs: dict[str, dict], *,
                idempotency_key: str | None = None, options: dict | None = None) -> Run:
        reply = self.connection.call("submit", {
            "module": module, "target": workflow, "type": "workflow", "args": args, "kwargs": kwargs,
            "workspace": self.workspace, "idempotency_key": idempotency_key, "options": options or {}})
        return Run(self, reply["run"], reply["execution"], module, workflow)

    def run(self, run_id: str) -> Run:
        snapshot = self.get_run(run_id)
        return Run(self, run_id, f"{run_id}:1:1", snapshot["module"], snapshot["target"])

    def get_run(self, run_id: str) -> dict:
        return self.connection.call("get_run", {"run": run_id})

    # -------------------------------------------------------------- Resolver protocol

    def wait(self, execution_id: str, timeout: float | None) -> dict:
        return self.connection.call("wait", {"execution": execution_id, "timeout": timeout})

    def cancel(self, execution_id: str) -> list[str]:
        """Cancel an execution (or a run, by its id) and its unfinished descendants."""
        if ":" not in execution_id:
            execution_id = f"{execution_id}:1:1"
        return self.connection.call("cancel", {"execution": execution_id})["cancelled"]

    def rerun(self, step_id: str, *, workspace: str | None = None) -> str:
        """Run a step again (ignoring cache and memo); returns the new execution's id."""
        return self.connection.call("rerun", {"step": step_id, "workspace": workspace})["execution"]

    def workspaces(self) -> list[dict]:
        return self.connection.call("workspaces", {})

    def create_workspace(self, name: str, base: str | None = None) -> dict:
        return self.connection.call("create_workspace", {"name": name, "base": base})

    def update_workspace(self, name: str, *, new_name: str | None = None, base: str | None = None,
                         remove_base: bool = False) -> dict:
        return self.connection.call("update_workspace", {"name": name, "new_name": new_name, "base": base,
                                                         "remove_base": remove_base})

    # -------------------------------------------------------------- live updates

    def subscribe(self, topic: str, listener: Callable[[dict], None]) -> dict:
        """Call `listener(event)` for each event on `topic` (from the connection thread); returns
        the topic's snapshot (for `run:<id>`, the run as `get_run` gives it)."""
        with self._lock:
            self._listeners.setdefault(topic, []).append(listener)
        return self.connection.call("subscribe", {"topic": topic})

    def unsubscribe(self, topic: str, listener: Callable[[dict], None]) -> None:
        with self._lock:
            listeners = self._listeners.get(topic, [])
            if listener in listeners:
                listeners.remove(listener)
            empty = not listeners
        if empty:
            self.connection.request("unsubscribe", {"topic": topic})

    def _on_push(self, message: dict) -> None:
        if message.get("op") != "events":
            return
        for item in message["events"]:
            with self._lock:
                listeners = list(self._listeners.get(item["topic"], ()))
            for listener in listeners:
                listener(item["data"])


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The attached kernel worker's client in a notebook, else one built from the environment."""
    global _default
    from . import kernel

    worker = kernel.current_worker()
    if worker is None and kernel.in_kernel():
        worker = kernel.attach()  # a notebook's cells are the targets: host them before running
    if worker is not None:
        return worker.client
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default

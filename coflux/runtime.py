"""The ambient runtime: what the SDK gets from where it runs, through two small interfaces.

Layer: the runtime interface, above the leaves (protocol, serialization, errors, options) and
below every module that uses it (handles, targets, logs, metrics, captured output, assets,
blobs, the client), none of which imports a worker, the kernel or the widgets.

- Inside an execution: its `Runtime`. `current()` is the one running in this thread (or, in a
  process that runs one execution at a time, in this process), made current by the worker that
  runs it (`install`), as Temporal's workflow `_Runtime` is installed by its worker.
  `coflux.context.ExecutionContext` implements it.
- Outside one: the program's `Session`: the client `workflow.run(...)` uses and how a run
  displays in a notebook. `coflux/session.py` implements it; the package (`coflux/__init__.py`)
  names it with `use_session` when it is imported, and it is loaded on first use, so a script
  that never runs a workflow nor displays a run never imports it.

Also here: `cf.suspend` and `cf.suspense`, which steer the running execution, and `in_kernel`.

`import coflux` loads this module: it imports nothing but `abc` and `contextvars`.
"""

from __future__ import annotations

import abc
import contextvars

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (`import coflux` stays light)
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Any

__all__ = ["Runtime", "Session", "current", "current_context", "in_kernel", "install", "session", "suspend",
           "suspense", "suspense_limit", "use_session"]


class Runtime(abc.ABC):
    """What the SDK needs from the execution it runs in. Targets, handles and `cf.select` wait
    through it; logs, metrics, captured output and assets record through it; blobs find their
    server through it."""

    execution_id: str
    run_id: str
    module: str
    target: str
    started_at: float  # time.time() when the execution started (metrics' default x)
    metrics: Any  # the execution's metric recorder (made by `recorder`), None until then

    # ------------------------------------------------------------ other executions

    @abc.abstractmethod
    def call(self, target: Any, args: list[dict], options: dict) -> Any:
        """Run `target` as a child step with these wire arguments and wait: its value (or its
        error, raised)."""

    @abc.abstractmethod
    def submit(self, target: Any, args: list[dict], options: dict) -> Any:
        """Submit `target` as a child step: an `Execution` handle, at once."""

    @abc.abstractmethod
    def wait(self, execution_id: str, timeout: float | None) -> dict:
        """The outcome of an execution (`status` "pending" when `timeout` passed first)."""

    @abc.abstractmethod
    def select(self, execution_ids: list[str], cancel_remaining: bool = False) -> tuple[int, dict]:
        """Wait for the first of these executions to resolve: (its index, its outcome)."""

    @abc.abstractmethod
    def cancel(self, execution_id: str) -> None:
        """Cancel an execution and its descendants."""

    def cancel_many(self, ids: list[str]) -> None:
        """Cancel executions and inputs together (`cf.cancel`)."""
        for handle_id in ids:
            self.cancel(handle_id)

    def prompt(self, params: dict) -> dict:
        """Raise a prompt for a person (`cf.Prompt.submit`): {"input": id, "state": ...}."""
        raise RuntimeError("prompts need a running workflow or task connected to a coflux server")

    @abc.abstractmethod
    def group(self, name: str | None) -> AbstractContextManager[None]:
        """`with`: children submitted inside the block show as one group named `name`."""

    # ------------------------------------------------------------ what it records

    @property
    @abc.abstractmethod
    def telemetry(self) -> Any:
        """The execution's buffer of log lines and metric points (`coflux.telemetry.Telemetry`:
        `log(level, template, values)`, `define(key, definition)`, `point(key, x, value)`)."""

    @abc.abstractmethod
    def output(self, level: str, text: str) -> None:
        """Text the execution wrote to stdout or stderr (`level`), recorded line by line."""

    @abc.abstractmethod
    def recorder(self, make: Callable[[Runtime], Any]) -> Any:
        """The execution's metric recorder (`metrics`), made by `make(self)` on first use."""

    @abc.abstractmethod
    def put_asset(self, name: str | None, entries: list[dict]) -> dict:
        """Record an asset of the execution (its files uploaded already): {id, name, count, size}."""

    @property
    @abc.abstractmethod
    def blobs(self) -> Any:
        """The blob store of the execution's server (a `coflux.blobs.BlobClient`), or None."""


_current: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar("coflux_runtime", default=None)
# A process that runs one execution at a time (a headless pool process) also makes it the
# runtime of threads that code starts (contextvars do not reach new threads): a target called
# from a ThreadPoolExecutor inside a task is then a step, and its prints and logs are the task's.
_process: Runtime | None = None


def current() -> Runtime | None:
    """The execution running here (this thread's, else this process's), or None."""
    return _current.get() or _process


current_context = current  # its public name: `cf.current_context()`


class install:
    """`with install(runtime):` makes `runtime` this thread's current execution for the block;
    with `whole_process`, also that of every thread of the process that has none of its own."""

    def __init__(self, runtime: Runtime, *, whole_process: bool = False) -> None:
        self._runtime = runtime
        self._whole_process = whole_process
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Runtime:
        global _process
        self._token = _current.set(self._runtime)
        if self._whole_process:
            _process = self._runtime
        return self._runtime

    def __exit__(self, *exc: Any) -> None:
        global _process
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if self._whole_process:
            _process = None


# ---------------------------------------------------------------------- suspending

# Inside `cf.suspense(t)`: how long `.result()` may wait before the execution suspends.
_suspense: contextvars.ContextVar[float | None] = contextvars.ContextVar("coflux_suspense", default=None)


def suspense_limit() -> float | None:
    """Seconds a wait may take before the execution suspends (an enclosing `cf.suspense`), or None."""
    return _suspense.get()


class suspense:
    """Within this block, `.result()` calls not ready within `timeout` seconds (None: at once)
    suspend the execution; it starts again from the top when the awaited result is ready."""

    def __init__(self, timeout: Any = None) -> None:
        from .options import seconds

        self._limit = 0.0 if timeout is None else seconds(timeout, "suspense timeout")
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> None:
        self._tokens.append(_suspense.set(self._limit))

    def __exit__(self, *exc: Any) -> None:
        _suspense.reset(self._tokens.pop())


def suspend(delay: Any = None) -> None:
    """Stop this execution now and run it again (from the top) after `delay`: seconds, a
    timedelta, or a datetime to resume at. Its worker slot is freed meanwhile."""
    import datetime as dt
    import time

    from .errors import Suspending
    from .options import seconds

    if current() is None:
        raise RuntimeError("cf.suspend() can only be called inside a running workflow or task")
    if delay is None:
        execute_after = None
    elif isinstance(delay, dt.datetime):
        execute_after = (delay if delay.tzinfo else delay.astimezone()).timestamp()
    else:
        execute_after = time.time() + seconds(delay, "suspend delay")
    raise Suspending(execute_after)


# ---------------------------------------------------------------------- the session


class Session(abc.ABC):
    """What the SDK needs from the program it runs in, outside any execution: a client to run
    workflows on, and the notebook views of a run (`Run`'s display methods delegate here)."""

    @abc.abstractmethod
    def default_client(self) -> Any:
        """The client `workflow.run(...)` submits to (in a notebook, the attached kernel's)."""

    @abc.abstractmethod
    def run_bundle(self, run: Any, part: str = "") -> Any:
        """`_repr_mimebundle_` of a run (or of one part of its view)."""

    @abc.abstractmethod
    def run_view(self, run: Any, part: str = "", height: int = 0) -> Any:
        """The run's live view as a widget (or one part of it)."""

    @abc.abstractmethod
    def run_part(self, run: Any, part: str) -> Any:
        """An object that displays as one part of the run's view (`run.graph`, `run.assets`, ...)."""

    @abc.abstractmethod
    def metrics_figure(self, series: list[dict], title: str | None) -> Any:
        """A plotly Figure of metric series (as `Client.metrics(run)` returns them)."""


_session_loader: Callable[[], Session] | None = None
_session: Session | None = None


def use_session(load: Callable[[], Session]) -> None:
    """Name the program's session: `load()` returns it, called once, when it is first needed."""
    global _session_loader, _session
    _session_loader, _session = load, None


def session() -> Session:
    """The program's session (loaded now if this is its first use)."""
    global _session
    found = _session
    if found is None:
        if _session_loader is None:
            raise RuntimeError("no coflux session is installed (coflux.runtime.use_session)")
        found = _session = _session_loader()
    return found


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None

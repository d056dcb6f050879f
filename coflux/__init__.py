"""coflux: durable workflows for Python, inside Jupyter. `import coflux as cf`.

Every public name is loaded on first use (a module `__getattr__`), so `import coflux` itself
costs next to nothing: the command line's read-only commands (`coflux runs inspect`, `coflux
logs`, ...) start without the decorators, the execution context or the WebSocket stack, and a
script that only uses `cf.task` loads what that needs when it first touches `cf.task`.

Layer: the package's face, above every layer (no module of the SDK imports it). The SDK's
layers, each importing only those before it (tests/test_layers.py checks the graph):
  1. leaves: protocol, errors, options, serialization, outcomes, config, telemetry, runview, ...
  2. the runtime interface (runtime.py): the running execution's `Runtime`, the `Session`
  3. what runs through them: handles (models.py), targets, logs, metrics, capture, assets, blobs
  4. the runtime's implementation (context.py) and the client (client.py, connection.py)
  5. the workers (worker/, kernel.py) and the widgets (widgets.py)
  6. the session glue (session.py) and the command line (cli*.py)
Importing the package loads only the runtime interface, to name the session glue (loaded when
first needed: `workflow.run(...)`, displaying a run), so a `Run` of a client made in any way
displays in a notebook, and no layer below imports the glue.
"""

from __future__ import annotations

import importlib

from . import runtime as _runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (type checkers treat it as True)
if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from typing import Any

    from . import testing as testing
    from .assets import Asset, AssetEntry, asset
    from .codehash import CODE
    from .errors import (
        ExecutionAbandoned,
        ExecutionCancelled,
        ExecutionCrashed,
        ExecutionError,
        ExecutionTerminated,
        ExecutionTimeout,
        InputDismissed,
    )
    from .logs import log_debug, log_error, log_info, log_warning
    from .metrics import Metric, MetricGroup, MetricScale, progress
    from .models import Execution, cancel, select
    from .options import Cache, Defer, Retries
    from .prompts import Input, Prompt
    from .runtime import current_context as current_context
    from .runtime import suspend, suspense
    from .session import attach, detach, load_ipython_extension, unload_ipython_extension
    from .target import Target, stub, task, workflow

# public name -> the submodule that defines it
_LAZY = {
    **dict.fromkeys(["Asset", "AssetEntry", "asset"], "assets"),
    **dict.fromkeys(["current_context", "suspend", "suspense"], "runtime"),
    **dict.fromkeys(["ExecutionAbandoned", "ExecutionCancelled", "ExecutionCrashed", "ExecutionError",
                     "ExecutionTerminated", "ExecutionTimeout", "InputDismissed"], "errors"),
    # Kernel attachment pulls in the client and the WebSocket stack.
    **dict.fromkeys(["attach", "detach", "load_ipython_extension", "unload_ipython_extension"], "session"),
    **dict.fromkeys(["log_debug", "log_error", "log_info", "log_warning"], "logs"),
    **dict.fromkeys(["Metric", "MetricGroup", "MetricScale", "progress"], "metrics"),
    **dict.fromkeys(["Execution", "cancel", "select"], "models"),
    **dict.fromkeys(["Input", "Prompt"], "prompts"),
    "testing": "testing",  # the module itself: cf.testing.answer(prompt, value)
    **dict.fromkeys(["Cache", "Defer", "Retries"], "options"),
    "CODE": "codehash",
    **dict.fromkeys(["Target", "stub", "task", "workflow"], "target"),
}

__all__ = [
    "Asset", "AssetEntry", "asset", "Cache", "CODE", "Defer", "Execution", "ExecutionAbandoned", "ExecutionCancelled",
    "ExecutionCrashed", "ExecutionError", "ExecutionTerminated", "ExecutionTimeout", "Input", "InputDismissed",
    "Prompt", "Retries", "Target", "attach",
    "detach", "Metric", "MetricGroup", "MetricScale", "group", "load_ipython_extension", "log_debug", "log_error",
    "log_info", "log_warning", "progress", "cancel", "select", "stub", "suspend", "suspense", "task",
    "unload_ipython_extension", "workflow",
]  # `current_context` is importable too (tests' apps use it), but not part of the star-import


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'coflux' has no attribute {name!r}")
    loaded = importlib.import_module(f".{module}", __name__)
    value = loaded if module == name else getattr(loaded, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def group(name: str | None = None) -> _Group:
    """`with cf.group(name):` visually groups the child executions submitted inside the block
    (outside an execution it does nothing)."""
    return _Group(name)


class _Group:
    def __init__(self, name: str | None) -> None:
        self.name = name
        self._inner: Any = None

    def __enter__(self) -> None:
        context = _runtime.current()
        if context is not None:
            self._inner = context.group(self.name)
            self._inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        inner, self._inner = self._inner, None
        return inner.__exit__(*exc) if inner is not None else None


def _session() -> _runtime.Session:
    from .session import glue

    return glue


_runtime.use_session(_session)

"""coflux: durable workflows for Python, inside Jupyter. `import coflux as cf`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .context import current_context, suspend, suspense
from .errors import (
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionCrashed,
    ExecutionError,
    ExecutionTerminated,
    ExecutionTimeout,
)
from .kernel import attach, detach, load_ipython_extension, unload_ipython_extension
from .models import Execution
from .options import Cache, Defer, Retries
from .target import Target, stub, task, workflow

__all__ = [
    "Cache", "Defer", "Execution", "ExecutionAbandoned", "ExecutionCancelled", "ExecutionCrashed",
    "ExecutionError", "ExecutionTerminated", "ExecutionTimeout", "Retries", "Target", "attach", "detach",
    "group", "load_ipython_extension", "stub", "suspend", "suspense", "task", "unload_ipython_extension",
    "workflow",
]


@contextlib.contextmanager
def group(name: str | None = None) -> Iterator[None]:
    """Visually group the child executions submitted inside this block."""
    context = current_context()
    if context is None:
        yield
        return
    with context.group(name):
        yield

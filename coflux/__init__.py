"""coflux: durable workflows for Python, inside Jupyter. `import coflux as cf`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .assets import Asset, AssetEntry, asset
from .context import current_context, select, suspend, suspense
from .errors import (
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionCrashed,
    ExecutionError,
    ExecutionTerminated,
    ExecutionTimeout,
)
from .logs import log_debug, log_error, log_info, log_warning
from .metrics import Metric, MetricGroup, MetricScale, progress
from .models import Execution
from .options import Cache, Defer, Retries
from .target import Target, stub, task, workflow

__all__ = [
    "Asset", "AssetEntry", "asset", "Cache", "Defer", "Execution", "ExecutionAbandoned", "ExecutionCancelled", "ExecutionCrashed",
    "ExecutionError", "ExecutionTerminated", "ExecutionTimeout", "Retries", "Target", "attach", "detach",
    "Metric", "MetricGroup", "MetricScale", "group", "load_ipython_extension", "log_debug", "log_error",
    "log_info", "log_warning", "progress", "select", "stub", "suspend", "suspense", "task", "unload_ipython_extension",
    "workflow",
]


_KERNEL_NAMES = {"attach", "detach", "load_ipython_extension", "unload_ipython_extension"}


def __getattr__(name: str) -> Any:
    # Kernel attachment pulls in the client and the WebSocket stack: worker processes and plain
    # scripts that only define targets do not pay for it at import.
    if name in _KERNEL_NAMES:
        from . import kernel

        return getattr(kernel, name)
    raise AttributeError(f"module 'coflux' has no attribute {name!r}")


@contextlib.contextmanager
def group(name: str | None = None) -> Iterator[None]:
    """Visually group the child executions submitted inside this block."""
    context = current_context()
    if context is None:
        yield
        return
    with context.group(name):
        yield

"""Captured output: `print()` and writes to stdout/stderr inside an execution become its log lines.

`sys.stdout` and `sys.stderr` are replaced by streams that look at the writing thread's
execution context: inside one, text is recorded (levels `stdout` / `stderr`, line by line, see
`ExecutionContext.output`); elsewhere it goes where it went before. The context is per thread
(contextvars), so in a kernel a task's output goes to its run, never into whatever cell happens
to be running, and the user's own cell code is untouched.

Layer: beside the targets (the runtime interface); the workers install it.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Any, TextIO

from . import runtime

_lock = threading.Lock()


class _RoutingStream(io.TextIOBase):
    def __init__(self, original: TextIO, level: str, echo: bool) -> None:
        self._original = original
        self._level = level
        self._echo = echo  # also write captured text where it went before (a headless worker's terminal)

    def write(self, text: str) -> int:  # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        context = runtime.current()
        if context is None:
            return self._original.write(text)
        context.output(self._level, text)
        if self._echo:
            try:
                self._original.write(text)
            except Exception:
                pass
        return len(text)

    def flush(self) -> None:
        try:
            self._original.flush()
        except Exception:
            pass

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:  # anything else the original offers (ipykernel's OutStream)
        return getattr(self._original, name)


def install(*, echo: bool) -> None:
    """Route stdout/stderr of executions (idempotent)."""
    with _lock:
        if not isinstance(sys.stdout, _RoutingStream):
            sys.stdout = _RoutingStream(sys.stdout, "stdout", echo)  # type: ignore[assignment]
        if not isinstance(sys.stderr, _RoutingStream):
            sys.stderr = _RoutingStream(sys.stderr, "stderr", echo)  # type: ignore[assignment]


def uninstall() -> None:
    with _lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _RoutingStream):
                setattr(sys, name, stream._original)

"""Exceptions raised in a caller when an execution it waits on did not produce a value.

Layer: a leaf (the standard library only).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any


class ExecutionError(Exception):
    """A child execution failed. When the original exception class can be imported, the raised
    exception subclasses both ExecutionError and that class (``except KeyError`` works)."""

    def __init__(self, message: str = "", *, error_type: str = "", frames: list | None = None,
                 execution_id: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = message
        self.frames = frames or []
        self.execution_id = execution_id

    @property
    def remote_traceback(self) -> str:
        """The traceback of the failure where it happened, formatted like Python's."""
        lines = ["Traceback (most recent call last):"]
        for file, line, name, code, *label in self.frames:  # label: "Cell In[8], line 3" (a notebook's)
            lines.append(f"  {label[0]}, in {name}" if label else f'  File "{file}", line {line}, in {name}')
            if code:
                lines.append(f"    {code}")
        lines.append(f"{self.error_type}: {self.error_message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.error_message

    def __reduce__(self):
        return (_rebuild_error, (self.error_type, self.error_message, self.frames, self.execution_id))


class ExecutionTerminated(Exception):
    """The execution ended without a result (cancelled, timed out, abandoned, crashed)."""

    def __init__(self, message: str = "", *, execution_id: str | None = None) -> None:
        super().__init__(message)
        self.execution_id = execution_id


class ExecutionCancelled(ExecutionTerminated):
    """A child execution was cancelled."""


class ExecutionTimeout(ExecutionTerminated):
    """A child execution exceeded its configured timeout."""


class ExecutionAbandoned(ExecutionTerminated):
    """The worker running a child execution went away before reporting a result."""


class ExecutionCrashed(ExecutionTerminated):
    """The process running a child execution exited without reporting a result."""


class InputDismissed(Exception):
    """A person dismissed the prompt this code waited on (`cf.Prompt`): a deliberate "no"."""

    def __init__(self, message: str = "", *, input_id: str | None = None) -> None:
        super().__init__(message)
        self.input_id = input_id

    def __reduce__(self):
        return (_rebuild_dismissed, (str(self), self.input_id))


def _rebuild_dismissed(message: str, input_id: str | None) -> InputDismissed:
    return InputDismissed(message, input_id=input_id)


class Suspending(BaseException):
    """Unwinds the current execution for `cf.suspend` / `cf.suspense` (a BaseException, so
    ``except Exception`` in user code cannot swallow it; ``finally`` blocks still run)."""

    def __init__(self, execute_after: float | None = None, after: list[str] | None = None) -> None:
        super().__init__(execute_after, after)
        self.execute_after = execute_after
        self.after = after


_classes: dict[str, type] = {}
_classes_lock = threading.Lock()


def resolve_exception_class(error_type: str) -> type[BaseException] | None:
    module_name, _, qualname = error_type.rpartition(".")
    parts = error_type.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name, qualname = ".".join(parts[:split]), ".".join(parts[split:])
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception:
            continue
        try:
            for attr in qualname.split("."):
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None
    return None


def make_execution_error(error_type: str, message: str, frames: list | None = None,
                         execution_id: str | None = None) -> ExecutionError:
    """Build the exception a caller sees for a failed child: ExecutionError plus the original
    class when it can be imported and safely combined."""
    cls: type = ExecutionError
    original = resolve_exception_class(error_type)
    if original is not None and original not in (Exception, BaseException) and issubclass(original, Exception) \
            and not issubclass(original, ExecutionError):
        with _classes_lock:
            cls = _classes.get(error_type)  # type: ignore[assignment]
            if cls is None:
                try:
                    cls = type(original.__name__, (ExecutionError, original), {
                        "__module__": original.__module__, "__qualname__": original.__qualname__,
                        "__str__": ExecutionError.__str__, "__init__": ExecutionError.__init__,
                        "__reduce__": ExecutionError.__reduce__})
                except TypeError:  # incompatible layouts (e.g. some C-implemented exceptions)
                    cls = ExecutionError
                _classes[error_type] = cls
    try:
        error = cls(message, error_type=error_type, frames=frames, execution_id=execution_id)
    except Exception:
        error = ExecutionError(message, error_type=error_type, frames=frames, execution_id=execution_id)
    if cls is not ExecutionError:
        error.args = (message,)
    return error


def _rebuild_error(error_type: str, message: str, frames: list, execution_id: str | None) -> ExecutionError:
    return make_execution_error(error_type, message, frames, execution_id)


def error_type_name(exc: BaseException) -> str:
    cls = type(exc)
    if isinstance(exc, ExecutionError) and exc.error_type:
        return exc.error_type
    return f"{cls.__module__}.{cls.__qualname__}"


class RemoteError(Exception):
    """The server refused a request (bad input, unknown target, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

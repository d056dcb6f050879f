"""A short, user-facing account of a module that failed to import in a worker.

`coflux worker myapp.workflows` imports the user's modules in the parent (to declare their
targets) and again in every pool process. Whatever the module raises there (`ImportError`, a
`SyntaxError`, a `KeyError` from reading a missing setting, a `SystemExit`), the worker must stop
with exit code 1 and a message about the *user's* code: the exception and the frames of their
modules, without the frames of coflux and importlib that every import goes through and that
would only bury the line to fix.

Both callers use `import_modules`, or `describe_import_failure` on an exception they caught;
pool processes send the message text to the parent (a traceback object cannot cross the pipe).

Layer: the workers (the standard library only).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable

_COFLUX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep
_MAX_FRAMES = 12  # a deep chain of the user's own imports: keep its two ends


class ModuleImportError(Exception):
    """A module named on the worker's command line could not be imported; `str()` is the short
    message (exception and user frames), `module` the name that was being imported."""

    def __init__(self, module: str | None, message: str) -> None:
        super().__init__(message)
        self.module = module


def import_modules(names: Iterable[str]) -> None:
    """Import each module, turning any failure (any `BaseException` but a keyboard interrupt)
    into a `ModuleImportError` that carries the short message."""
    for name in names:
        try:
            importlib.import_module(name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise ModuleImportError(name, describe_import_failure(exc, name)) from exc


def failed_module(names: Iterable[str]) -> str | None:
    """Which of `names` failed to import: the first one missing from `sys.modules` (a failed
    import removes its module again)."""
    return next((name for name in names if name not in sys.modules), None)


def _is_internal(filename: str) -> bool:
    if filename.startswith("<frozen "):  # importlib._bootstrap, runpy, ...
        return True
    path = os.path.abspath(filename)
    return path.startswith(_COFLUX_DIR) or path.startswith(_IMPORTLIB_DIR)


def user_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The frames of `exc`'s traceback outside coflux and the import machinery."""
    return [f for f in traceback.extract_tb(exc.__traceback__) if not _is_internal(f.filename)]


def _format_frames(frames: list[traceback.FrameSummary]) -> list[str]:
    if len(frames) > _MAX_FRAMES:
        head, tail = frames[:2], frames[-(_MAX_FRAMES - 2):]
        skipped = len(frames) - len(head) - len(tail)
        return (traceback.format_list(head) + [f"  ... {skipped} more frame(s) ...\n"]
                + traceback.format_list(tail))
    return traceback.format_list(frames)


def describe_import_failure(exc: BaseException, module: str | None = None) -> str:
    """`cannot import M: Type: message`, then the user's frames and the exception as Python
    prints it (for a SyntaxError: the file, line and caret)."""
    if isinstance(exc, ModuleImportError):
        return str(exc)
    name = f"{type(exc).__module__}.{type(exc).__qualname__}" \
        if type(exc).__module__ not in ("builtins", "__main__") else type(exc).__qualname__
    if isinstance(exc, SystemExit):
        headline = f"module called sys.exit({exc.code!r}) while being imported"
    else:
        text = str(exc)
        headline = f"{name}: {text}" if text else name
    lines = [f"cannot import {module or 'the modules'}: {headline}\n"]
    if isinstance(exc, ModuleNotFoundError) and module is not None and exc.name is not None \
            and (module == exc.name or module.startswith(exc.name + ".")):
        lines.append(f"  (no module {exc.name!r} on the path: run `coflux worker` from the directory that "
                     "contains it, or add that directory to PYTHONPATH)\n")
        return "".join(lines).rstrip("\n")
    frames = user_frames(exc)
    if frames:
        lines.append("Traceback (most recent call last, coflux and importlib frames hidden):\n")
        lines.extend(_format_frames(frames))
    lines.extend(traceback.format_exception_only(type(exc), exc))
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        lines.append("  caused by " + "".join(traceback.format_exception_only(type(cause), cause)).strip()
                     + "\n")
    return "".join(lines).rstrip("\n")

"""`cf.log_debug|log_info|log_warning|log_error(template=None, **values)`.

Inside an execution the template and the values are recorded apart (values serialised like
arguments, so an `Execution` or `Asset` stays a reference a viewer can link); the viewer fills
the placeholders. Outside an execution the call goes to Python's `logging` (logger `coflux`),
with the placeholders filled here: the "plain call" rule.

Layer: beside the targets (serialization, the runtime interface). `render` is also what the
client and the command line fill templates with.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from . import runtime, serialization

_python_levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                  "error": logging.ERROR}
_logger = logging.getLogger("coflux")
_SMALL = serialization.BLOB_THRESHOLD // 4  # a string up to this long is its own wire value


# `{name}` fills in a value, `{{` and `}}` are literal braces; anything else is left as written,
# placeholder by placeholder (a stray brace never hides the rest of the message).
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str | None, values: dict[str, Any]) -> str:
    """The template with `{name}` placeholders filled; values without a placeholder follow it."""
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        if name not in values:
            return match.group(0)
        used.add(name)
        return str(values[name])

    text = _PLACEHOLDER.sub(fill, template) if template else ""
    rest = {k: v for k, v in values.items() if k not in used}
    if rest:
        text = (text + " " if text else "") + " ".join(f"{k}={v!r}" for k, v in rest.items())
    return text


def _log(level: str, template: str | None, values: dict[str, Any]) -> None:
    if template is not None and not isinstance(template, str):
        raise TypeError(f"a log template must be a string, not {type(template).__name__}")
    context = runtime.current()
    if context is None:
        _logger.log(_python_levels[level], "%s", render(template, values))
        return
    context.telemetry.log(level, template, encode_values(values))


def encode_values(values: dict[str, Any]) -> dict[str, Any]:
    """Values as a log line (or a prompt's placeholders) records them: wire values, so
    executions, assets and blobs stay links; one that cannot be serialised becomes its repr."""
    encoded: dict[str, Any] = {}
    for name, value in values.items():
        kind = type(value)
        if kind is int or kind is bool or value is None or (kind is float and value - value == 0) \
                or (kind is str and len(value) <= _SMALL):
            encoded[name] = {"v": value}  # the common case, as serialization.encode gives it
            continue
        try:
            encoded[name] = serialization.encode(value)
        except Exception as exc:
            # Logging never fails the work: the value is recorded as its repr, and we say why.
            _logger.warning("log value %r (%s) cannot be serialised (%s); recorded as its repr",
                            name, type(value).__name__, exc)
            encoded[name] = {"v": _safe_repr(value)}
    return encoded


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 1000 else text[:999] + "\u2026"


def log_debug(template: str | None = None, **values: Any) -> None:
    """Record a debug line: `cf.log_debug("Fetched {count} rows", count=n)`."""
    _log("debug", template, values)


def log_info(template: str | None = None, **values: Any) -> None:
    """Record an info line: `cf.log_info("Fetched {count} rows", count=n)`."""
    _log("info", template, values)


def log_warning(template: str | None = None, **values: Any) -> None:
    """Record a warning line."""
    _log("warning", template, values)


def log_error(template: str | None = None, **values: Any) -> None:
    """Record an error line."""
    _log("error", template, values)

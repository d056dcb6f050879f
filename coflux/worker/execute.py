"""Running one execution: decode arguments, call the target, encode what happened.

Layer: the workers (headless and kernel both run executions through this): it makes the
execution's `ExecutionContext` and installs it as the current runtime while the target runs.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Any

from .. import serialization, shipping
from ..context import ExecutionContext, Transport
from ..errors import ExecutionError, ExecutionTerminated, Suspending, error_type_name
from ..models import decode_value
from ..options import when_predicate
from ..remote_frames import cell_label
from ..target import Target, lookup, set_main_module_alias

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(module: str, name: str, main_alias: str | None = None) -> Target | None:
    target = lookup(module, name)
    if target is None and main_alias is not None and module == main_alias:
        target = lookup("__main__", name)
    return target


def _frames(exc: BaseException) -> list[list[Any]]:
    """[file, line, function, source] of each user frame, plus how Jupyter names the line when it
    is in a notebook cell of this kernel ("Cell In[8], line 3": what views show for the file)."""
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            continue  # coflux's own frames say nothing about the user's failure
        entry: list[Any] = [frame.filename, frame.lineno, frame.name, frame.line or ""]
        label = cell_label(frame.filename, frame.lineno or 0)
        if label:
            entry.append(label)
        frames.append(entry)
    return frames


def error_payload(exc: BaseException, target: Target | None, when: dict | None = None) -> dict:
    """The error as reported to the server, with `retryable` from the step's `when` (sent with the
    execution; the caller's choice) or else this worker's own decorator."""
    retryable = None
    predicate = when_predicate(when) if when else None
    if predicate is None and target is not None and target.retries is not None:
        predicate = target.retries.should_retry
    if predicate is not None and not isinstance(exc, ExecutionTerminated):
        try:
            retryable = bool(predicate(exc))
        except Exception as when_error:  # a failing `when` predicate is the error to report
            exc, retryable = when_error, False
    frames = _frames(exc)
    if isinstance(exc, ExecutionError) and exc.frames:
        # A child's failure passed through: show where it was raised too, once (a client in a
        # kernel has already put those frames into the traceback itself).
        shown = {tuple(f[:3]) for f in frames}
        frames += [f for f in exc.frames if tuple(f[:3]) not in shown]
    return {"type": error_type_name(exc), "message": str(exc), "frames": frames, "retryable": retryable}


def run_execution(message: dict, transport: Transport, *, main_alias: str | None = None,
                  contexts: dict[str, ExecutionContext] | None = None, whole_process: bool = False) -> dict:
    """Run the execution described by an `execute` message; return the `result` request params.

    `contexts` (execution id -> context) lets the caller route server pushes to the running context."""
    execution_id = message["execution"]
    if message.get("code") is not None:  # a cell's task shipped by value (coflux/shipping.py)
        # Cell targets the shipped code calls are `__main__`'s here, as in the kernel: they are
        # the kernel's module (one execution at a time runs in a worker's process).
        set_main_module_alias(message["module"])
        try:
            target = shipping.load(message["code"], module=message["module"], name=message["target"],
                                   worker=_worker_name(message))
        except Exception as exc:
            return {"execution": execution_id, "kind": "error", "error": error_payload(exc, None)}
    else:
        target = resolve(message["module"], message["target"], main_alias)
    if target is None:
        return {"execution": execution_id, "kind": "error", "error": {
            "type": "builtins.LookupError",
            "message": f"{message['module']}/{message['target']} is not defined in this worker",
            "frames": [], "retryable": False}}
    context = ExecutionContext(execution_id, message["run"], message["module"], message["target"], transport)
    if contexts is not None:
        contexts[execution_id] = context
    result = None
    try:
        with context.activate(whole_process=whole_process):
            result = _call(target, message, context)
    finally:
        try:
            # Output, log lines and metrics not sent yet: with the result when there is one (the
            # server records them first), else on their own (the execution was stopped).
            telemetry = context.finish(final=result is not None)
        except Exception:
            telemetry = None  # nothing to report to any more: the result still goes out
        if contexts is not None:
            contexts.pop(execution_id, None)
    if telemetry:
        result["telemetry"] = telemetry
    return result


def _worker_name(message: dict) -> str:
    """The worker running `message` (its `--name`, sent along by the headless worker)."""
    return str(message.get("worker") or f"{socket.gethostname()}:{os.getppid()}")


def _call(target: Target, message: dict, context: ExecutionContext) -> dict:
    """Decode the arguments, call the target, and say how it went (the `result` params)."""
    execution_id = message["execution"]
    started_at = time.time()  # reported with the result: one message per execution, not two
    try:
        values = [decode_value(arg, context) for arg in message["args"]]
        if target.kind == "workflow":  # runs are started with JSON arguments from outside Python
            values = target.convert_json_arguments(values)
        try:
            result = target.call_with(values)
        except ModuleNotFoundError as exc:
            if message.get("code") is None:
                raise
            # Shipped code importing a package this worker lacks: say which, and where.
            raise shipping.missing_package(exc, message["module"], message["target"],
                                           _worker_name(message)) from exc
        return {"execution": execution_id, "kind": "value", "value": serialization.encode(result),
                "started_at": started_at}
    except Suspending as suspension:
        return {"execution": execution_id, "kind": "suspended", "execute_after": suspension.execute_after,
                "after": suspension.after, "started_at": started_at}
    except Exception as exc:
        return {"execution": execution_id, "kind": "error",
                "error": error_payload(exc, target, message.get("retry_when")),
                "started_at": started_at}


def undeliverable(result: dict, exc: BaseException) -> dict:
    """The error result to send instead of a result the connection refused (too large)."""
    return {"execution": result["execution"], "kind": "error", "started_at": result.get("started_at"),
            "error": {"type": error_type_name(exc), "message": f"the result could not be sent: {exc}",
                      "frames": [], "retryable": False}}


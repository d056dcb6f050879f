"""Outcomes of executions as the server sends them, turned into values or the errors callers see.

A leaf of the SDK (serialization, errors, models): the client and the execution context both
use it, neither through the other.
"""

from __future__ import annotations

from typing import Any

from . import serialization
from .errors import (
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionCrashed,
    ExecutionTimeout,
    make_execution_error,
)
from .models import Execution


def decode_value(wire: dict, resolver: Any) -> Any:
    return serialization.decode(wire, lambda ref: Execution(ref["id"], ref.get("module", ""),
                                                            ref.get("target", ""), resolver),
                                blobs=getattr(resolver, "blobs", None))


def outcome_value(outcome: dict, resolver: Any) -> Any:
    """Turn a wait outcome from the server into the value, or raise what the caller should see."""
    status = outcome.get("status")
    execution_id = outcome.get("execution")
    if status == "value":
        return decode_value(outcome["value"], resolver)
    if status == "error":
        error = outcome.get("error") or {}
        exc = make_execution_error(error.get("type", "builtins.Exception"), error.get("message", ""),
                                   error.get("frames"), execution_id)
        if getattr(resolver, "shows_remote_frames", False):  # a notebook or script: show where it was raised
            from .remote_frames import with_remote_frames

            raise with_remote_frames(exc, error.get("frames"))
        raise exc
    if status == "cancelled":
        raise ExecutionCancelled(f"execution {execution_id} was cancelled", execution_id=execution_id)
    if status == "timeout":
        raise ExecutionTimeout(f"execution {execution_id} timed out", execution_id=execution_id)
    if status == "abandoned":
        raise ExecutionAbandoned(f"execution {execution_id} was abandoned (its worker went away)",
                                 execution_id=execution_id)
    if status == "crashed":
        raise ExecutionCrashed(f"execution {execution_id} crashed", execution_id=execution_id)
    raise RuntimeError(f"unexpected outcome {status!r} for execution {execution_id}")

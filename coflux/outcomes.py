"""Outcomes of executions as the server sends them: the exception a caller sees when the
execution it waited on did not produce a value (failed, cancelled, timed out, abandoned, crashed).

Layer: a leaf (errors, remote_frames). A value is decoded by the handles' module
(`models.outcome_value`), which makes the execution handles its references become.
"""

from __future__ import annotations

from .errors import (
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionCrashed,
    ExecutionTimeout,
    InputDismissed,
    make_execution_error,
)


def failure(outcome: dict, *, remote_frames: bool = False) -> BaseException:
    """The exception for an outcome that is not a value. With `remote_frames` (a client in a
    notebook or a script) an error's traceback ends with the frames where it was raised."""
    status = outcome.get("status")
    execution_id = outcome.get("execution")
    if status == "error":
        error = outcome.get("error") or {}
        exc = make_execution_error(error.get("type", "builtins.Exception"), error.get("message", ""),
                                   error.get("frames"), execution_id)
        if remote_frames:
            from .remote_frames import with_remote_frames

            return with_remote_frames(exc, error.get("frames"))
        return exc
    if status == "cancelled":
        return ExecutionCancelled(f"{'input' if ':i' in str(execution_id) else 'execution'} {execution_id} "
                                  "was cancelled", execution_id=execution_id)
    if status == "dismissed":  # an input (cf.Prompt) a person dismissed
        return InputDismissed(f"input {execution_id} was dismissed", input_id=execution_id)
    if status == "timeout":
        return ExecutionTimeout(f"execution {execution_id} timed out", execution_id=execution_id)
    if status == "abandoned":
        return ExecutionAbandoned(f"execution {execution_id} was abandoned (its worker went away)",
                                  execution_id=execution_id)
    if status == "crashed":
        return ExecutionCrashed(f"execution {execution_id} crashed", execution_id=execution_id)
    return RuntimeError(f"unexpected outcome {status!r} for execution {execution_id}")

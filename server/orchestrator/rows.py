"""Executions without a result, read back from the database as `Pending` (at start and recovery,
and when one is needed that the working set no longer holds)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from ..store import schema as t
from . import limits
from .matching import merge_requires
from .model import Pending


def pending_query() -> Select:
    """An execution's row joined with its step and run: what `pending_from_row` needs."""
    return (
        select(t.executions.c.id, t.executions.c.step_id, t.executions.c.run_id, t.executions.c.attempt,
               t.executions.c.cause, t.executions.c.workspace_id, t.executions.c.execute_after,
               t.executions.c.session_id, t.executions.c.started_at, t.executions.c.assignment, t.executions.c.code_hash,
               t.steps.c.module, t.steps.c.target, t.steps.c.type, t.steps.c.arguments,
               t.steps.c.options, t.steps.c.cache_key, t.steps.c.defer_key,
               t.steps.c.parent_execution_id, t.runs.c.requires, t.runs.c.origin_session_id)
        .select_from(t.executions.join(t.steps, t.steps.c.id == t.executions.c.step_id)
                     .join(t.runs, t.runs.c.id == t.executions.c.run_id)))


def pending_from_row(row: Any) -> Pending:
    options = row.options or {}
    return Pending(
        id=row.id, step_id=row.step_id, run_id=row.run_id, module=row.module, target=row.target,
        type=row.type, workspace_id=row.workspace_id,
        execute_after=limits.finite_or(row.execute_after, 0.0),  # stored before validation
        arguments=row.arguments, options=options, requires=merge_requires(row.requires, options.get("requires")),
        origin_session_id=row.origin_session_id, attempt=row.attempt, cause=row.cause, cache_key=row.cache_key,
        defer_key=row.defer_key if row.attempt == 1 else None,  # later attempts are never deferred
        parent_id=row.parent_execution_id, assignment=row.assignment or 0, code_hash=row.code_hash)

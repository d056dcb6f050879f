"""Inputs: prompts that running code raises for a person (`cf.Prompt`), and their answers.

A prompt is a row (store/schema.py `inputs`), memoised within its run by its key, so a re-run
step or a resumed suspension that asks again gets the same input and, once given, its answer.
Only a pending input changes, and only once: responded (the answer validated against the
prompt's JSON Schema), dismissed or cancelled. An input's outcome is followed like an
execution's (`result_of`), so `wait`, `select` and a suspension's `after` wait on inputs with no
code of their own; answering one resolves its waiters in the same batch.
"""

from __future__ import annotations

import time
from typing import Any

import jsonschema
from sqlalchemy import func, select

from coflux.protocol import RUNS_TOPIC, InputEvent, InputState, run_topic

from ..errors import BadRequest, NotFound
from ..ids import input_id, is_input_id, run_of
from ..store import schema as t
from .component import Component
from .model import Peer

MAX_KEY = 200
MAX_TEMPLATE = 100_000


class Conflict(BadRequest):
    """The input is no longer pending (answered, dismissed or cancelled): nothing changed."""

    code = "conflict"


def check_schema(schema: Any) -> None:
    """BadRequest unless `schema` is a JSON Schema (an object) the validator accepts."""
    if not isinstance(schema, dict):
        raise BadRequest("schema must be a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise BadRequest(f"invalid JSON Schema: {exc.message}") from None


def answer_problem(schema: dict | None, value: Any) -> str | None:
    """Why `value` does not answer a prompt with this schema (the field and the reason), or None."""
    if schema is None:  # an approval: nothing to fill in
        return None if value in (None, True) else "an approval takes no value (send null or true)"
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    # Every field that is wrong, each with its reason (a form shows them all at once).
    return "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(the answer)'}: {e.message}"
                     for e in errors[:10])


class Inputs(Component):
    # ----------------------------------------------------------------- asking

    def on_prompt(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        """Running code asks: the run's input with this key (made now if there is none)."""
        execution_id = str(params["execution"])
        key = params.get("key")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY:
            raise BadRequest(f"key must be a string of 1 to {MAX_KEY} characters")
        template = params.get("template")
        if not isinstance(template, str) or len(template) > MAX_TEMPLATE:
            raise BadRequest(f"template must be a string of at most {MAX_TEMPLATE} characters")
        if not self.o.execution_exists(execution_id):
            raise NotFound(f"no execution {execution_id!r}")
        run_id = run_of(execution_id)
        existing = self._row_by_key(run_id, key)
        if existing is not None:  # memoised: a re-run or resumed step asked the same again
            self.o.reply(peer, request_id, {"input": existing.id, "state": existing.state})
            return
        schema = params.get("schema")
        if schema is not None:
            check_schema(schema)
        initial = params.get("initial")
        if initial is not None and schema is not None:
            problem = answer_problem(schema, initial)
            if problem is not None:
                raise BadRequest(f"invalid initial value: {problem}")
        for name, kind in (("placeholders", dict), ("requires", dict), ("actions", list), ("title", str)):
            if params.get(name) is not None and not isinstance(params[name], kind):
                raise BadRequest(f"{name} must be a {kind.__name__}")
        number = (self.db.execute(select(func.count()).select_from(t.inputs)
                                  .where(t.inputs.c.run_id == run_id)).scalar() or 0) + 1
        now = time.time()
        row = dict(id=input_id(run_id, number), run_id=run_id, step_id=execution_id.rsplit(":", 1)[0],
                   execution_id=execution_id, key=key, template=template,
                   placeholders=params.get("placeholders") or {}, schema=schema, title=params.get("title"),
                   actions=params.get("actions"), requires=params.get("requires"), initial=initial,
                   state=InputState.PENDING, value=None, by=None, created_at=now, responded_at=None)
        self.w.insert(t.inputs, row)
        self.w.flush()  # the next prompt of this batch counts it, and finds it by its key
        self._publish(row, now)
        self.o.reply(peer, request_id, {"input": row["id"], "state": InputState.PENDING})

    # ----------------------------------------------------------------- answering

    def on_respond(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        self.o.reply(peer, request_id, self.respond(str(params["input"]), params.get("value"), params.get("by")))

    def on_dismiss(self, peer: Peer | None, request_id: Any, params: dict) -> None:
        self.o.reply(peer, request_id, self.dismiss(str(params["input"]), params.get("by")))

    def respond(self, input_id: str, value: Any, by: str | None) -> dict:
        """A person answered: validated against the prompt's schema, recorded with who and when."""
        row = self._pending(input_id)
        problem = answer_problem(row.schema, value)
        if problem is not None:
            raise BadRequest(f"invalid answer to {row.id}: {problem}")
        self._conclude(row, InputState.RESPONDED, None if row.schema is None else value, by)
        return {"input": row.id, "state": InputState.RESPONDED, "by": by}

    def dismiss(self, input_id: str, by: str | None) -> dict:
        row = self._pending(input_id)
        self._conclude(row, InputState.DISMISSED, None, by)
        return {"input": row.id, "state": InputState.DISMISSED, "by": by}

    def cancel(self, input_id: str, by: str | None = None) -> list[str]:
        """Cancel a pending input (`Input.cancel()`, `cf.cancel`); one already concluded stays as it is."""
        row = self._row(input_id)
        if row is None:
            raise NotFound(f"no input {input_id!r}")
        if row.state != InputState.PENDING:
            return []
        self._conclude(row, InputState.CANCELLED, None, by)
        return [input_id]

    def cancel_of_steps(self, step_ids: set[str]) -> None:
        """The steps' executions were cancelled: their pending prompts are withdrawn."""
        self.w.flush()
        rows = self.db.execute(select(t.inputs).where(t.inputs.c.step_id.in_(sorted(step_ids)),
                                                      t.inputs.c.state == InputState.PENDING)).all()
        for row in rows:
            self._conclude(row, InputState.CANCELLED, None, None)

    def _pending(self, input_id: str) -> Any:
        row = self._row(input_id)
        if row is None:
            raise NotFound(f"no input {input_id!r}")
        if row.state != InputState.PENDING:
            raise Conflict(f"input {input_id} is already {row.state}{f' (by {row.by})' if row.by else ''}")
        return row

    def _conclude(self, row: Any, state: str, value: Any, by: Any) -> None:
        now = time.time()
        by = str(by)[:200] if by is not None else None
        self.db.execute(t.inputs.update().where(t.inputs.c.id == row.id)
                        .values(state=state, value=value, by=by, responded_at=now))
        self.o.cache_result(row.id, self._result(state, value, row.id))
        self._publish({"id": row.id, "run_id": row.run_id, "step_id": row.step_id, "execution_id": row.execution_id,
                       "title": row.title, "requires": row.requires, "created_at": row.created_at,
                       "state": state, "by": by}, now)
        self.o.waiters.resolve_waiters(row.id)  # waits, selects and suspended executions go on

    # ----------------------------------------------------------------- following

    def result_of(self, input_id: str) -> tuple[str, Any, Any, None] | None:
        """An input's outcome as an execution's (kind, value, error, successor), None while pending."""
        row = self._row(input_id)
        if row is None or row.state == InputState.PENDING:
            return None
        return self.o.cache_result(input_id, self._result(row.state, row.value, input_id))

    def exists(self, input_id: str) -> bool:
        return is_input_id(input_id) and self._row(input_id) is not None

    @staticmethod
    def _result(state: str, value: Any, input_id: str) -> tuple[str, Any, Any, None]:
        if state == InputState.RESPONDED:
            return ("value", value, None, None)
        if state == InputState.DISMISSED:
            return ("dismissed", None, {"type": "coflux.errors.InputDismissed",
                                        "message": f"input {input_id} was dismissed"}, None)
        return ("cancelled", None, None, None)

    def _row(self, input_id: str) -> Any:
        self.w.flush()
        return self.db.execute(select(t.inputs).where(t.inputs.c.id == input_id)).first()

    def _row_by_key(self, run_id: str, key: str) -> Any:
        self.w.flush()
        return self.db.execute(select(t.inputs).where(t.inputs.c.run_id == run_id, t.inputs.c.key == key)).first()

    def _publish(self, row: dict, at: float) -> None:
        event = InputEvent(type="input", input=row["id"], run=row["run_id"], step=row["step_id"],
                           execution=row["execution_id"], state=row["state"], title=row.get("title"),
                           requires=row.get("requires"), created_at=row["created_at"], by=row.get("by"), at=at)
        self.o.publish(run_topic(row["run_id"]), event)
        self.o.publish(RUNS_TOPIC, event)

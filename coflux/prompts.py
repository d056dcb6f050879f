"""People in the loop: `cf.Prompt` asks a person for an approval or a typed value, and `cf.Input`
is the handle of one asked prompt (a future for the answer, as an `Execution` is for a result).

    approve = cf.Prompt("Approve deployment of {service}?", title="Deployment")
    approve(service="api")                    # blocks until approved; InputDismissed if dismissed
    label = cf.Prompt("Label:\\n\\n{text}", model=Label)
    handle = label.submit(text=text)          # an Input; .result(), .poll(), .cancel()

The answer's JSON Schema comes from `model` (a pydantic model or a primitive type, through
pydantic) or `schema`; the server validates answers against it, and the answer comes back as
`model` (an instance, a date, ...). Placeholder values are recorded as log values are (wire
values: executions, assets and blobs stay links). Inputs are memoised within a run by a key
(a hash of the prompt and its values, or `with_key`), so code that runs again (a re-run step, a
resumed `cf.suspense`) gets the same input and its answer. Outside coflux a prompt raises,
unless a test answered it (`coflux.testing.answer`).

Layer: a handle module, beside models.py (whose `select` and `cancel` take inputs too): above
the runtime interface, below the runtime's implementation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import textwrap
from typing import Any, Generic, TypeVar

from . import runtime
from .errors import ExecutionCancelled, InputDismissed
from .logs import encode_values
from .serialization import Ref

T = TypeVar("T")

_PRIMITIVES = (str, int, float, bool, dt.date, dt.time, dt.datetime)

# Answers given by tests outside coflux (coflux.testing): template -> ("value", v) | ("dismissed", None).
_test_answers: dict[str, tuple[str, Any]] = {}


def _schema_of(model: Any, schema: Any) -> dict | None:
    if model is not None and schema is not None:
        raise TypeError("cf.Prompt takes a model or a schema, not both")
    if schema is not None:
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict):
            raise TypeError("a prompt's schema must be a JSON Schema (a dict or its JSON text)")
        return schema
    if model is None:
        return None
    if hasattr(model, "model_json_schema") and hasattr(model, "model_validate"):
        return model.model_json_schema()
    if model in _PRIMITIVES:
        from pydantic import TypeAdapter

        return TypeAdapter(model).json_schema()
    raise TypeError(f"a prompt's model must be a pydantic model or one of str, int, float, bool, date, "
                    f"time, datetime, not {model!r}")


def _to_json(value: Any) -> Any:
    """An initial value (a model instance, a date, ...) as the form's JSON."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


@dataclasses.dataclass(frozen=True)
class _Options:
    key: str | None = None
    initial: Any = None
    actions: tuple[str, str] | None = None
    requires: dict[str, Any] | None = None


class Prompt(Generic[T]):
    """A prompt for a person. Call it to ask and wait for the answer; `.submit()` to ask and go on."""

    def __init__(self, template: str, model: type[T] | None = None, *, title: str | None = None,
                 actions: tuple[str, str] | None = None, schema: str | dict | None = None,
                 requires: dict[str, Any] | None = None) -> None:
        if not isinstance(template, str):
            raise TypeError("a prompt's template must be a string")
        self.template = textwrap.dedent(template).strip("\n")
        self.model = model
        self.schema = _schema_of(model, schema)
        self.title = title
        self._options = _Options(actions=_actions(actions), requires=_requires(requires))

    # ----------------------------------------------------------------- copies

    def _with(self, **changes: Any) -> Prompt[T]:
        copy = object.__new__(Prompt)
        copy.__dict__.update(self.__dict__)
        copy._options = dataclasses.replace(self._options, **changes)
        return copy

    def with_key(self, key: str) -> Prompt[T]:
        """The same prompt memoised by `key` within the run (not by its values)."""
        if not isinstance(key, str) or not key:
            raise ValueError("a prompt's key must be a non-empty string")
        return self._with(key=key)

    def with_initial(self, value: Any) -> Prompt[T]:
        """The same prompt with its form filled in with `value` (a model instance, ...)."""
        return self._with(initial=_to_json(value))

    def with_actions(self, respond: str, dismiss: str) -> Prompt[T]:
        return self._with(actions=_actions((respond, dismiss)))

    def with_requires(self, requires: dict[str, Any] | None) -> Prompt[T]:
        return self._with(requires=_requires(requires))

    # ----------------------------------------------------------------- asking

    def __call__(self, **placeholders: Any) -> T:
        """Ask and wait for the answer (None for an approval). Inside `cf.suspense()` the
        execution suspends while it waits, and starts again once answered."""
        return self.submit(**placeholders).result()

    def submit(self, **placeholders: Any) -> Input[T]:
        """Ask, and return the Input handle at once."""
        context = runtime.current()
        if context is None:
            return self._outside()
        values = encode_values(placeholders)
        key = self._options.key or self.default_key(values)
        reply = context.prompt({
            "key": key, "template": self.template, "placeholders": values, "schema": self.schema,
            "title": self.title, "actions": list(self._options.actions) if self._options.actions else None,
            "requires": self._options.requires, "initial": self._options.initial})
        return Input(reply["input"], self)

    def default_key(self, values: dict) -> str:
        """The memo key: a hash of the template, the values, the schema, the title and the actions."""
        text = json.dumps([self.template, values, self.schema, self.title, self._options.actions],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _outside(self) -> Input[T]:
        answer = _test_answers.get(self.template)
        if answer is None:
            raise RuntimeError(f"cf.Prompt {self.title or self.template[:40]!r} can only be asked inside a running "
                               "workflow or task (in a test, answer it first: coflux.testing.answer(prompt, value))")
        return _LocalInput(self, *answer)

    def parse(self, value: Any) -> T:
        """An answer (JSON) as the prompt's model: an instance, a date, ...; None for an approval."""
        if self.model is None or value is None:
            return value
        if isinstance(self.model, type) and isinstance(value, self.model) \
                and not (self.model in (dt.date, dt.datetime) and isinstance(value, str)):
            return value
        if hasattr(self.model, "model_validate"):
            return self.model.model_validate(value)
        from pydantic import TypeAdapter

        return TypeAdapter(self.model).validate_python(value)

    def __repr__(self) -> str:
        return f"<Prompt {self.title or self.template[:40]!r}>"


def _actions(actions: Any) -> tuple[str, str] | None:
    if actions is None:
        return None
    actions = tuple(actions)
    if len(actions) != 2 or not all(isinstance(a, str) and a for a in actions):
        raise ValueError("a prompt's actions are two labels: (respond, dismiss)")
    return actions  # type: ignore[return-value]


def _requires(requires: Any) -> dict[str, Any] | None:
    if requires is None:
        return None
    if not isinstance(requires, dict):
        raise TypeError("a prompt's requires must be a dict of tags")
    return {str(k): (list(v) if isinstance(v, tuple | list | set) else v) for k, v in requires.items()}


class Input(Ref, Generic[T]):
    """An asked prompt: a future for the person's answer. Passed to another step, it travels as its
    id (that step reads the answer as plain JSON: the model stays with the prompt)."""

    is_input = True  # cf.select and cf.cancel take inputs beside executions

    def __init__(self, input_id: str, prompt: Prompt[T] | None = None) -> None:
        self._id = input_id
        self._prompt = prompt

    @property
    def id(self) -> str:
        return self._id

    def _context(self) -> runtime.Runtime:
        context = runtime.current()
        if context is None:
            raise RuntimeError("an input can only be waited on inside a running workflow or task")
        return context

    def result(self) -> T:
        """Wait for the answer (inside `cf.suspense`, suspend until there is one) and return it.
        InputDismissed if a person dismissed it, ExecutionCancelled if it was cancelled."""
        return self._value(self._context().wait(self._id, None))

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        """The answer if there is one (within `timeout` seconds), else `default`."""
        from .options import wait_timeout

        outcome = self._context().wait(self._id, wait_timeout(timeout, "poll timeout") if timeout is not None else 0)
        if outcome.get("status") == "pending":
            return default
        return self._value(outcome)

    def cancel(self) -> None:
        """Withdraw the prompt (a terminal state of its own, not a dismissal)."""
        self._context().cancel(self._id)

    def _value(self, outcome: dict) -> T:
        status = outcome.get("status")
        if status == "value":
            value = outcome.get("value")
            return self._prompt.parse(value) if self._prompt is not None else value  # type: ignore[return-value]
        if status == "dismissed":
            raise InputDismissed(f"input {self._id} was dismissed", input_id=self._id)
        raise ExecutionCancelled(f"input {self._id} was cancelled", execution_id=self._id)

    def to_ref(self) -> dict:
        if self._id == "local":
            raise TypeError("an input answered outside coflux (coflux.testing) cannot be passed to a step")
        return {"type": "input", "id": self._id}

    def __reduce__(self):
        return (Input, (self._id,))

    def __repr__(self) -> str:
        return f"<Input {self._id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Input) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self._id)


class _LocalInput(Input[T]):
    """Outside coflux: a prompt a test answered (coflux.testing)."""

    def __init__(self, prompt: Prompt[T], state: str, value: Any) -> None:
        super().__init__("local", prompt)
        self._state, self._answer = state, value

    def result(self) -> T:
        if self._state == "dismissed":
            raise InputDismissed("the prompt was dismissed (coflux.testing.dismiss)", input_id=None)
        return self._prompt.parse(self._answer)  # type: ignore[union-attr]

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        return self.result()

    def cancel(self) -> None:
        return None

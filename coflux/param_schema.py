"""JSON Schemas of a target's parameters, derived from their type hints with pydantic's TypeAdapter.

Layer: a leaf. It imports no other coflux module, and pydantic only when a schema is first asked
for (a worker declaring its targets), so importing coflux stays fast.

A parameter whose hint pydantic cannot describe as JSON (an arbitrary class, a DataFrame) gets no
schema: the server then accepts any value for it, as for a parameter without a hint.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any


def _hints(fn: Callable) -> dict[str, Any]:
    """The resolved type hints of `fn`'s parameters (string annotations evaluated); a hint that
    does not resolve (a name defined later, a typo) is left out rather than failing the target."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # one unresolvable hint: resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, param in inspect.signature(fn).parameters.items():
        annotation = param.annotation
        if annotation is param.empty:
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))  # noqa: S307 - the function's own annotation
            except Exception:
                continue
        hints[name] = annotation
    return hints


def schema_of(annotation: Any) -> dict | None:
    """The JSON Schema (validation mode, `$defs` inline) of values of `annotation`, or None when
    pydantic cannot express it in JSON."""
    if annotation is typing.Any or annotation is object:
        return None
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(annotation).json_schema(mode="validation")
    except Exception:  # PydanticSchemaGenerationError, PydanticInvalidForJsonSchema, odd hints
        return None


def parameter_schemas(fn: Callable) -> dict[str, dict]:
    """Parameter name -> JSON Schema, for the parameters whose hints have one. A parameter's
    default goes in as the schema's `default`, in its JSON form (an enum member as its value), so
    forms can start from it even when the default itself travels as a pickle."""
    out: dict[str, dict] = {}
    parameters = inspect.signature(fn).parameters
    for name, annotation in _hints(fn).items():
        if name == "return" or name not in parameters:
            continue
        schema = schema_of(annotation)
        if schema is None:
            continue
        default = parameters[name].default
        if default is not inspect.Parameter.empty:
            try:
                from pydantic import TypeAdapter

                schema = {**schema, "default": TypeAdapter(annotation).dump_python(default, mode="json",
                                                                                  warnings=False)}
            except Exception:
                pass  # (a default of another type than the hint: forms start empty)
        out[name] = schema
    return out


def type_label(annotation: Any) -> str:
    """How a hint reads to a person: `list[float]`, `Optional[int]`, `Color` (not just `list`)."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("__main__.", "")  # (a class defined in a notebook cell reads as its name)


def _needs_conversion(schema: dict) -> bool:
    """Whether JSON for this schema differs from the Python value the hint names (a model or
    dataclass from an object, an enum or a date from a string), so that arguments sent as JSON
    (CLI, Studio, HTTP) are worth converting before the function sees them."""
    text = repr(schema)
    return any(word in text for word in ("'properties'", "'enum'", "'const'", "'format'"))


def converters(fn: Callable) -> dict[str, Callable[[Any], Any]]:
    """Parameter name -> a function that turns the JSON form of an argument (a dict, a list, a
    string) into the hinted type (pydantic's lax validation), for the parameters where the two
    differ; an argument that does not convert is passed on as it came."""
    out: dict[str, Callable[[Any], Any]] = {}
    hints = _hints(fn)
    for name, schema in parameter_schemas(fn).items():
        if not _needs_conversion(schema):
            continue
        from pydantic import TypeAdapter

        adapter = TypeAdapter(hints[name])

        def convert(value: Any, adapter: Any = adapter) -> Any:
            if not isinstance(value, dict | list | str):
                return value  # already a Python value of its own (from a caller in Python)
            try:
                return adapter.validate_python(value)
            except Exception:
                return value
        out[name] = convert
    return out

"""Check a run's arguments against the JSON Schemas its workflow's parameters declared.

A worker declares, per parameter, the JSON Schema pydantic derives from its type hint (the
manifest's `"schema"`, stored with the workflow). Submitted values travel as wire values, so each
is turned back into the JSON it stands for before checking: plain JSON as it is, tuples and sets
as lists, dates, datetimes, times, decimals and UUIDs as their strings, pydantic models as their
JSON. What has no JSON form (pickles, execution references, assets, blobs, non-string-keyed dicts,
bytes, NaN/infinity, timedeltas) is passed on unchecked, as is a parameter without a schema, and a
value equal to the parameter's declared default.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema

from ..errors import BadRequest

_validators: dict[str, jsonschema.protocols.Validator] = {}  # compiled once per distinct schema
_MAX_VALIDATORS = 2000

_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(dt.date.fromisoformat(value))


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(dt.datetime.fromisoformat(value))


@_formats.checks("time", raises=ValueError)
def _is_time(value: object) -> bool:
    return not isinstance(value, str) or bool(dt.time.fromisoformat(value))


class _NoJson(Exception):
    """The wire value has no JSON form to check."""


_AS_STRING = {"datetime", "date", "time", "decimal", "uuid"}


def _json_of(data: Any, depth: int = 0) -> Any:
    if depth > 300:
        raise _NoJson
    if isinstance(data, list):
        return [_json_of(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("$")
    if kind is None:
        return {k: _json_of(v, depth + 1) for k, v in data.items()}
    if kind in _AS_STRING:
        return data.get("v")
    if kind in ("tuple", "set", "frozenset"):
        return [_json_of(v, depth + 1) for v in data.get("items", [])]
    if kind == "pydantic":
        return data.get("v")
    raise _NoJson


def _validator(schema: dict) -> jsonschema.protocols.Validator:
    key = json.dumps(schema, sort_keys=True)
    validator = _validators.get(key)
    if validator is None:
        if len(_validators) >= _MAX_VALIDATORS:
            _validators.clear()
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError:
            cls = None
        validator = _validators[key] = cls(schema, format_checker=_formats) if cls else None
    return validator


def _path(name: str, steps: Any) -> str:
    out = name
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out


def check_arguments(label: str, parameters: list[dict], args: list[Any], kwargs: dict[str, Any]) -> None:
    """Raise BadRequest naming the first argument that does not match its parameter's schema."""
    by_name = {p.get("name"): p for p in parameters}
    given = list(zip((p.get("name") for p in parameters), args, strict=False)) + list(kwargs.items())
    for name, wire in given:
        param = by_name.get(name)
        schema = param.get("schema") if param else None
        if not isinstance(schema, dict) or not schema or "default" in param and param["default"] == wire:
            continue
        try:
            value = _json_of(wire.get("v"))
        except _NoJson:
            continue  # not checkable from here (the worker receives it as it was sent)
        validator = _validator(schema)
        if validator is None:
            continue
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except Exception:  # a schema the worker sent that cannot be applied (a remote $ref): unchecked
            continue
        if error is None:
            continue
        expected = f" (expected {param['annotation']})" if param.get("annotation") else ""
        where = _path(name, error.absolute_path)
        detail = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        raise BadRequest(f"{label}(): argument {where!r}: {detail}{expected}")

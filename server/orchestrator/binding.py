"""Bind submitted arguments to a registered workflow's parameters (for CLI and HTTP submits)."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest


def bind_arguments(target: str, parameters: list[dict], args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Return positional wire values for every parameter, defaults filled in.

    `parameters` is the manifest list of `{"name", "default"?}`, where `default` is a wire value.
    """
    names = [p["name"] for p in parameters]
    if len(args) > len(names):
        raise BadRequest(
            f"{target}() takes {len(names)} argument{'s' if len(names) != 1 else ''} "
            f"({', '.join(names) or 'none'}) but {len(args)} were given")
    bound: dict[str, Any] = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise BadRequest(f"{target}() got an unexpected keyword argument {key!r} "
                             f"(parameters: {', '.join(names) or 'none'})")
        if key in bound:
            raise BadRequest(f"{target}() got multiple values for argument {key!r}")
        bound[key] = value
    result = []
    for param in parameters:
        if param["name"] in bound:
            result.append(bound[param["name"]])
        elif "default" in param:
            result.append(param["default"])
        else:
            raise BadRequest(f"{target}() missing required argument {param['name']!r}")
    return result

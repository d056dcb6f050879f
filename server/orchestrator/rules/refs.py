"""Execution references inside argument values (for `wait`)."""

from __future__ import annotations

from typing import Any


def execution_refs(values: list[Any], indexes: list[int] | None = None) -> list[str]:
    """Ids of executions referenced by the wire values at `indexes` (all when None)."""
    selected = values if indexes is None else [values[i] for i in indexes if 0 <= i < len(values)]
    found: list[str] = []
    for value in selected:
        if isinstance(value, dict):
            for ref in value.get("refs") or []:
                if isinstance(ref, dict) and ref.get("type") == "execution" and ref.get("id"):
                    found.append(str(ref["id"]))
    return found

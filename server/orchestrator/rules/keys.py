"""Cache, memo and defer keys: sha256 over the target and the selected arguments.

Arguments are wire values; they are hashed in a canonical JSON form (sorted keys, no spaces),
so equal values give equal keys whatever the order their dicts were built in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _select(arguments: list[Any], indexes: list[int] | None) -> list[Any]:
    if indexes is None:
        return arguments
    return [arguments[i] for i in indexes if 0 <= i < len(arguments)]


def key(parts: list[str], arguments: list[Any], indexes: list[int] | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    for i, value in enumerate(_select(arguments, indexes)):
        digest.update(str(i).encode())
        digest.update(b"\0")
        digest.update(canonical(value))
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(module: str, target: str, config: dict, arguments: list[Any]) -> str:
    namespace = config.get("namespace") or f"{module}:{target}"
    return key(["cache", namespace, config.get("version") or ""], arguments, config.get("params"))


def memo_key(module: str, target: str, memo: Any, arguments: list[Any]) -> str:
    return key(["memo", f"{module}:{target}"], arguments, memo if isinstance(memo, list) else None)


def defer_key(module: str, target: str, config: dict, arguments: list[Any]) -> str:
    return key(["defer", f"{module}:{target}"], arguments, config.get("params"))

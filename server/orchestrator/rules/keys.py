"""Cache, memo and defer keys: sha256 over the target and the selected arguments.

Arguments are wire values; they are hashed in a canonical JSON form (sorted keys, no spaces),
so equal values give equal keys whatever the order their dicts were built in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from coflux.protocol import CODE_VERSION


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


def cache_key(module: str, target: str, config: dict, arguments: list[Any], code_hash: str | None = None) -> str:
    """`version` CODE_VERSION (`cf.CODE`) is the caller's code hash: an edit of the code misses.
    Without a hash (a stub's caller cannot know the code) it stays the literal version."""
    namespace = config.get("namespace") or f"{module}:{target}"
    version = config.get("version") or ""
    if version == CODE_VERSION and code_hash:
        version = f"code:{code_hash}"
    return key(["cache", namespace, version], arguments, config.get("params"))


def call_key(module: str, target: str, arguments: list[Any]) -> str:
    """The same call: target and all arguments (what a resumed attempt matches its children on)."""
    return key(["call", f"{module}:{target}"], arguments, None)


def memo_key(module: str, target: str, memo: Any, arguments: list[Any]) -> str:
    return key(["memo", f"{module}:{target}"], arguments, memo if isinstance(memo, list) else None)


def defer_key(module: str, target: str, config: dict, arguments: list[Any]) -> str:
    return key(["defer", f"{module}:{target}"], arguments, config.get("params"))

"""The credentials of launched workers: one per launch, made when the server decides to launch,
given to that worker only (in its environment), and accepted while the launch lasts.

The orchestrator's thread adds and removes them; the HTTP side looks a presented token up
(`principal_for`) to authenticate a launched worker as a `launch` principal of its pool."""

from __future__ import annotations

import threading

from ..principal import Principal
from ..tokens import hash_token


class LaunchCredentials:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, Principal] = {}

    def add(self, hashed: str, launch_id: str, pool: str, workspace: str) -> None:
        principal = Principal(name=launch_id, kind="launch", workspaces=(workspace,), pool=pool)
        with self._lock:
            self._by_hash[hashed] = principal

    def remove(self, hashed: str) -> None:
        with self._lock:
            self._by_hash.pop(hashed, None)

    def clear(self) -> None:
        with self._lock:
            self._by_hash.clear()

    def principal_for(self, token: str) -> Principal | None:
        if not token:
            return None
        with self._lock:
            return self._by_hash.get(hash_token(token))

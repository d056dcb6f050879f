"""The headless server's authentication of launched workers: a token that is a live launch's
credential authenticates as that launch's principal (kind "launch", its pool, its workspace)."""

from __future__ import annotations

from typing import Any

from ..principal import Principal, attach


def authenticate_launch(handler: Any, state: Any, token: str) -> bool:
    """Attach the launch principal of `token` to `handler`; False if it is no launch's credential."""
    runtime = getattr(state.orchestrator, "pool_runtime", None)
    principal: Principal | None = runtime.credentials.principal_for(token) if runtime is not None else None
    if principal is None:
        return False
    attach(handler, principal)
    handler.launch_principal = principal  # what the orchestrator reads of a worker's connection
    return True

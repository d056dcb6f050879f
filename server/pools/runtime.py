"""What the orchestrator's `pools` component uses outside itself: the launch runner (None when
this server runs no launcher), the launch credentials, the secrets box, and the URL launched
workers connect to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .credentials import LaunchCredentials
from .runner import LaunchRunner
from .secrets import SecretBox


@dataclass
class PoolRuntime:
    runner: LaunchRunner | None = None
    credentials: LaunchCredentials = field(default_factory=LaunchCredentials)
    secrets: SecretBox = field(default_factory=lambda: SecretBox(None))
    server_url: str = ""  # set once the server listens

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.runner.allowed if self.runner is not None else ()


LAUNCHER_TYPES = ("process", "docker", "kubernetes")


def launcher_types(given: list[str] | tuple[str, ...] | None) -> tuple[str, ...] | str:
    """The launcher types a server runs for pools: those given (`coflux server --launcher`,
    `c.CofluxExtension.launchers`), else COFLUX_LAUNCHER_TYPES (comma-separated); none by
    default. A str: what is wrong (to follow the setting's name)."""
    given = list(given or []) or [t for t in os.environ.get("COFLUX_LAUNCHER_TYPES", "").split(",") if t.strip()]
    types = tuple(dict.fromkeys(t.strip() for t in given))
    unknown = [t for t in types if t not in LAUNCHER_TYPES]
    if unknown:
        return f"must be process, docker or kubernetes, not {unknown[0]!r}"
    return types

"""What the orchestrator's `pools` component uses outside itself: the launch runner (None when
this server runs no launcher), the launch credentials, the secrets box, and the URL launched
workers connect to."""

from __future__ import annotations

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

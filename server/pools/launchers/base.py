"""What every launcher does, and what it is given to launch one worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

LOG_TAIL_CHARS = 4000  # of a launched worker's output, kept on its launch record


class LaunchError(Exception):
    """A launch that could not start (a bad directory, a missing image, an API refusal): the
    message is shown on the launch and in the waiting execution's reason."""


@dataclass(frozen=True)
class LaunchSpec:
    launch_id: str
    pool: str
    workspace: str
    config: dict  # the pool's fields, secrets decrypted
    modules: list[str]
    provides: dict[str, list[str]]
    accepts: dict[str, list[str]]
    server_url: str
    token: str  # this launch's credential
    log_dir: str  # where a launcher may keep the output of what it starts
    extra: dict[str, Any] = field(default_factory=dict)

    def worker_args(self) -> list[str]:
        """`coflux worker` arguments for this launch (the credential goes in the environment)."""
        args = ["worker", "--server", self.server_url, "--workspace", self.workspace]
        concurrency = self.config.get("concurrency")
        if concurrency:
            args += ["--concurrency", str(concurrency)]
        args += ["--drain-timeout", str(float(self.config.get("drainTimeout", 30.0)))]
        for flag, tags in (("--provides", self.provides), ("--accepts", self.accepts)):
            for key, values in tags.items():
                args += [a for value in values for a in (flag, key if value == "true" else f"{key}:{value}")]
        if self.config.get("acceptCode"):  # the pool's acceptCode: its workers run shipped code
            args.append("--accept-code")
        return args + list(self.modules)

    def worker_env(self) -> dict[str, str]:
        env = {str(k): str(v) for k, v in (self.config.get("env") or {}).items()}
        env.update({"COFLUX_TOKEN": self.token, "COFLUX_LAUNCH": self.launch_id, "PYTHONUNBUFFERED": "1"})
        return env


class Launcher(Protocol):
    """Each method may block: the runner calls them on its own threads, never the orchestrator's."""

    def start(self, spec: LaunchSpec) -> dict: ...  # the handle, JSON: where it runs
    def wait(self, handle: dict) -> int | None: ...  # until it exits; its exit code if known
    def alive(self, handle: dict) -> bool: ...
    def stop(self, handle: dict, drain_timeout: float) -> None: ...  # drain, then kill
    def log_tail(self, handle: dict) -> str: ...
    def cleanup(self, handle: dict) -> None: ...  # after it exited (a container is removed)


def tail(text: str, limit: int = LOG_TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]

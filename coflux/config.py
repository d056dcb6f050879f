"""Settings: command-line flags, then COFLUX_* environment variables, then ./coflux.toml.

Layer: a leaf (the standard library only).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI starts lighter
if TYPE_CHECKING:
    from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:7777/"


def load_file(path: str = "coflux.toml") -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    import tomllib  # only where there is a file to read: most commands never parse TOML

    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"coflux: cannot read {path}: {exc}") from None


def setting(flag: Any, env: str, key: str, default: Any = None, *, section: str | None = None) -> Any:
    """The first of: the flag, the environment variable, the coflux.toml key, the default."""
    if flag is not None:
        return flag
    if os.environ.get(env):
        return os.environ[env]
    data = load_file()
    if section is not None:
        data = data.get(section, {})
    if key in data:
        return data[key]
    return default


def server_url(flag: str | None) -> str:
    return setting(flag, "COFLUX_SERVER", "server", DEFAULT_SERVER)


def token(flag: str | None) -> str | None:
    return setting(flag, "COFLUX_TOKEN", "token", None)


def workspace(flag: str | None) -> str:
    return setting(flag, "COFLUX_WORKSPACE", "workspace", "default")

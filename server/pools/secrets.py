"""Secret pool fields (a cluster `token`) at rest: encrypted with a key kept beside the
database (`<data dir>/pool-secrets.key`, or COFLUX_SECRETS_KEY), so a copy of the database
alone does not give the token away."""

from __future__ import annotations

import os
from typing import Any

from .config import SECRET

PREFIX = "enc:"


class SecretBox:
    def __init__(self, key_path: str | None) -> None:
        self._key_path = key_path
        self._fernet: Any = None

    def _box(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            key = os.environ.get("COFLUX_SECRETS_KEY", "").encode()
            if not key:
                if self._key_path is None:
                    raise RuntimeError("no key for pool secrets: set COFLUX_SECRETS_KEY")
                if not os.path.exists(self._key_path):
                    os.makedirs(os.path.dirname(self._key_path), exist_ok=True)
                    fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(Fernet.generate_key())
                with open(self._key_path, "rb") as f:
                    key = f.read().strip()
            self._fernet = Fernet(key)
        return self._fernet

    def seal(self, config: dict) -> dict:
        """`config` with its secret fields encrypted (an already sealed one is kept)."""
        out = dict(config)
        for key in SECRET & out.keys():
            value = str(out[key])
            if not value.startswith(PREFIX):
                out[key] = PREFIX + self._box().encrypt(value.encode()).decode()
        return out

    def open(self, config: dict) -> dict:
        out = dict(config)
        for key in SECRET & out.keys():
            value = str(out[key])
            if value.startswith(PREFIX):
                out[key] = self._box().decrypt(value[len(PREFIX):].encode()).decode()
        return out

"""Pools over the server's HTTP API: what `Client` and `coflux pools` use.

Layer: beside blobs.py (the standard library's http.client only)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any


class PoolsError(Exception):
    """The server refused (its message), or could not be reached."""


class PoolsApi:
    def __init__(self, url: str, token: str | None, workspace: str, *, timeout: float = 60.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.workspace = workspace
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        parts = urllib.parse.urlsplit(self.url)
        query = {"workspace": self.workspace, **{k: v for k, v in query.items() if v is not None}}
        target = f"{parts.path}api/{path}?{urllib.parse.urlencode(query)}"
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        try:
            conn.request(method, target, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except OSError as exc:
            raise PoolsError(f"cannot connect to the coflux server at {self.url} ({exc})") from None
        finally:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        if response.status >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise PoolsError(message or f"{method} api/{path}: HTTP {response.status}")
        return payload

    def list(self) -> list[dict]:
        return self._call("GET", "pools")["pools"]

    def get(self, name: str) -> dict:
        return self._call("GET", f"pools/{urllib.parse.quote(name)}")

    def create(self, name: str, type: str, *, set: dict | None = None, modules: list[str] | None = None,
               provides: dict | None = None, accepts: dict | None = None) -> dict:
        """`modules` may be left out only with `set={"acceptCode": True}` (shipped code alone)."""
        return self._call("POST", "pools", {"name": name, "type": type, "set": set or {}, "modules": modules or [],
                                            "provides": provides or {}, "accepts": accepts or {}})

    def update(self, name: str, *, set: dict | None = None, unset: list[str] | None = None,
               modules: list[str] | None = None, provides: Any = ..., accepts: Any = ...) -> dict:
        """`provides`/`accepts`: leave out to keep them, None or {} to clear them."""
        body: dict[str, Any] = {"set": set or {}, "unset": unset or []}
        if modules:
            body["modules"] = modules
        if provides is not ...:
            body["provides"] = provides or {}
        if accepts is not ...:
            body["accepts"] = accepts or {}
        return self._call("PATCH", f"pools/{urllib.parse.quote(name)}", body)

    def delete(self, name: str) -> None:
        self._call("DELETE", f"pools/{urllib.parse.quote(name)}")

    def enable(self, name: str) -> dict:
        return self._call("POST", f"pools/{urllib.parse.quote(name)}/enable", {})

    def disable(self, name: str) -> dict:
        return self._call("POST", f"pools/{urllib.parse.quote(name)}/disable", {})

    def launches(self, name: str, limit: int = 50) -> list[dict]:
        return self._call("GET", f"pools/{urllib.parse.quote(name)}/launches", limit=limit)["launches"]

    def export(self) -> list[dict]:
        return self._call("GET", "pools-export")["pools"]

    def import_(self, pools: list[dict]) -> list[str]:
        return self._call("POST", "pools-export", {"pools": pools})["imported"]

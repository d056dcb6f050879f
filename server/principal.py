"""Who a request acts for: the `Principal` behind every route, and what it may do.

Layer: the server's HTTP base (beside http_base.py, which gives each handler its principal);
imports nothing of the server.

Authentication (the headless app's token check, Jupyter's login) says only *that* a caller may
come in; the principal says *who* it is, for the things that depend on it:
- "who did it": runs, re-runs, cancels and input answers record `principal.name`;
- scope: a token limited to some workspaces is refused (403) in the others (`may_use`);
- tags: a prompt's `requires` is matched against the responder's tags (`satisfies`);
- rights: shipping code to workers (`may_ship_code`); a worker launched for a pool takes only
  that pool's work (`pool`).

The super token (headless) and a logged-in Jupyter user may do everything; narrower principals
(service tokens, launch credentials) are made by the modules that issue them and attached to
the handler by its authentication (`attach`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PrincipalKind = Literal["super", "service", "jupyter", "launch", "anonymous"]

# The attribute an authentication step sets on a handler once it knows who is calling.
_ATTRIBUTE = "_coflux_principal"


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind
    # fnmatch patterns ("prod/*"); None: every workspace.
    workspaces: tuple[str, ...] | None = None
    # What the caller provides, as a worker's `provides`: {"team": ("ml",)}.
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    may_ship_code: bool = False
    # A worker launched for a pool authenticates with that launch's credential.
    pool: str | None = None

    def may_use(self, workspace: str) -> bool:
        if self.workspaces is None:
            return True
        return any(fnmatch.fnmatchcase(workspace, pattern) for pattern in self.workspaces)

    def satisfies(self, requires: Mapping[str, Any] | None) -> bool:
        """Whether the caller's tags meet `requires` ({key: value or [values]}, True: any value).
        The super token and Jupyter users answer anything: they own the server."""
        if not requires or self.kind in ("super", "jupyter", "anonymous"):
            return True
        for key, wanted in requires.items():
            have = self.tags.get(key, ())
            if wanted is True:
                if not have:
                    return False
                continue
            options = wanted if isinstance(wanted, list | tuple) else (wanted,)
            if not any(str(option) in have for option in options):
                return False
        return True

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind,
                "workspaces": list(self.workspaces) if self.workspaces is not None else None,
                "tags": {key: list(values) for key, values in self.tags.items()},
                "may_ship_code": self.may_ship_code, "pool": self.pool}


SUPER = Principal(name="super token", kind="super", may_ship_code=True)
ANONYMOUS = Principal(name="anonymous", kind="anonymous", may_ship_code=True)  # `--no-auth`


def attach(handler: Any, principal: Principal) -> None:
    setattr(handler, _ATTRIBUTE, principal)


def principal_of(handler: Any) -> Principal:
    """The principal of an authenticated handler (`current_user` is set by then)."""
    attached = getattr(handler, _ATTRIBUTE, None)
    if attached is not None:
        return attached
    user = handler.current_user
    if user in ("token", "cookie"):  # the headless app's super token, or Studio's login with it
        return SUPER
    if user == "anonymous":
        return ANONYMOUS
    username = getattr(user, "username", None) or (user if isinstance(user, str) else "")
    if username == "coflux-token":  # Jupyter mode: the kernel's and workers' internal token
        return SUPER
    return Principal(name=str(username or "jupyter user"), kind="jupyter", may_ship_code=True)

"""Whether the database can be reached, as the server's health and its read errors tell it.

The orchestrator and the HTTP reads report each failure that says the database is out of reach
(and each success), so `GET api/health` can say since when it is unreachable; the health check
also asks the database itself (`SELECT 1`), so an idle server notices an outage too.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

# SQLite's OperationalError also means a wrong statement ("no such column"): only these say the
# file cannot be used right now.
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full")


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error says the database is out of reach (stopped, restarting, its
    connections cut, a SQLite file locked) rather than anything about the statement."""
    if isinstance(exc, DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        return any(text in str(exc.orig).lower() for text in _SQLITE_UNAVAILABLE)
    return True


def _kind(exc: BaseException) -> str:
    """What failed, without the driver's text (it may hold SQL or addresses)."""
    orig = getattr(exc, "orig", None)
    return type(orig if orig is not None else exc).__name__


class DatabaseStatus:
    """Since when the database is out of reach (None while it answers). Updated from several
    threads; each update is a plain attribute write."""

    def __init__(self) -> None:
        self.unreachable_since: float | None = None
        self.error: str | None = None

    def failed(self, exc: BaseException | str) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
        self.error = exc if isinstance(exc, str) else _kind(exc)

    def reached(self) -> None:
        if self.unreachable_since is not None:
            self.unreachable_since = None
            self.error = None

    def report(self) -> dict:
        since = self.unreachable_since
        return {"reachable": since is None, "unreachable_since": since,
                "unreachable_for": round(time.time() - since, 1) if since is not None else None,
                "error": self.error}


def describe_outage(report: dict) -> str:
    """`database unreachable since <UTC time> (<n> s): <error>` for a report of an outage."""
    since = datetime.fromtimestamp(report["unreachable_since"], UTC).isoformat(timespec="seconds")
    return f"database unreachable since {since} ({report['unreachable_for']:.0f} s): {report['error']}"

"""Errors the server reports to clients as `{"code", "message"}`."""

# What a client is told when something failed inside the server: the exception itself (a
# sqlite3 or psycopg message, SQL, paths) is logged, never sent.
INTERNAL_MESSAGE = "internal server error (the details are in the server's log)"


class BadRequest(Exception):
    """The request is wrong (unknown target, bad arguments, ...); nothing was changed."""

    code = "bad_request"

    def to_wire(self) -> dict:
        return {"code": self.code, "message": str(self)}


class NotFound(BadRequest):
    code = "not_found"


class Forbidden(BadRequest):
    """The caller is known but may not do this (HTTP 403): a token used outside its workspaces, shipping
    code without the right."""

    code = "forbidden"


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now (stopped, restarting, its connections cut). A read
    is answered with this (HTTP 503) and may be sent again; writes wait in the orchestrator,
    which retries until the database is back."""

    code = "unavailable"

    def __init__(self, message: str = "database unavailable, retrying") -> None:
        super().__init__(message)

    def to_wire(self) -> dict:
        return {"code": self.code, "message": str(self)}

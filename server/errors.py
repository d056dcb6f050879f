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

"""Errors the server reports to clients as `{"code", "message"}`."""


class BadRequest(Exception):
    """The request is wrong (unknown target, bad arguments, ...); nothing was changed."""

    code = "bad_request"

    def to_wire(self) -> dict:
        return {"code": self.code, "message": str(self)}


class NotFound(BadRequest):
    code = "not_found"

"""Execution handles: futures for the results of submitted targets."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

from .serialization import Ref

T = TypeVar("T")


class Resolver(Protocol):
    """Something that can wait on executions: an execution context or a client."""

    def wait(self, execution_id: str, timeout: float | None) -> dict: ...
    def cancel(self, execution_id: str) -> None: ...


class Execution(Ref, Generic[T]):
    """A submitted execution. Pass it to other targets, return it, or wait with `.result()`."""

    def __init__(self, execution_id: str | Future, module: str, target: str,
                 resolver: Resolver | None = None) -> None:
        self._id = execution_id
        self.module = module
        self.target = target
        self._resolver = resolver

    @property
    def id(self) -> str:
        """Execution ID (`run:step:attempt`)."""
        if isinstance(self._id, Future):
            self._id = self._id.result()["execution"]
        return self._id

    def _resolver_or_current(self) -> Resolver:
        from .context import current_context

        context = current_context()
        if context is not None:
            return context
        if self._resolver is not None:
            return self._resolver
        raise RuntimeError("this execution handle is not attached to a coflux connection")

    def result(self) -> T:
        """Block until the execution completes; return its value or raise its error."""
        from .outcomes import outcome_value

        resolver = self._resolver_or_current()
        return outcome_value(resolver.wait(self.id, None), resolver)

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        """Return the result if ready within `timeout` seconds (None: check once), else `default`."""
        from .options import wait_timeout
        from .outcomes import outcome_value

        resolver = self._resolver_or_current()
        # math.inf: until it is ready; NaN or a negative timeout: ValueError here, not on the server
        outcome = resolver.wait(self.id, wait_timeout(timeout, "poll timeout") if timeout is not None else 0)
        if outcome.get("status") == "pending":
            return default
        return outcome_value(outcome, resolver)

    def cancel(self) -> None:
        """Cancel the execution and its descendants."""
        self._resolver_or_current().cancel(self.id)

    def to_ref(self) -> dict:
        return {"type": "execution", "id": self.id, "module": self.module, "target": self.target}

    def __repr__(self) -> str:
        ident = self._id if isinstance(self._id, str) else "…"
        return f"<Execution {ident} {self.module}/{self.target}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Execution) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self):
        return (Execution, (self.id, self.module, self.target))


class LocalExecution(Execution[T]):
    """What `submit` returns outside any execution context: the function already ran here."""

    def __init__(self, module: str, target: str, value: Any = None, error: BaseException | None = None) -> None:
        super().__init__("local", module, target)
        self._value, self._error = value, error

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        return self.result()

    def cancel(self) -> None:
        return None

    def to_ref(self) -> dict:
        raise TypeError("an execution that ran locally (outside coflux) cannot be passed to a step")

"""Execution handles: futures for the results of submitted targets, the values outcomes decode
to (references become handles), and `cf.select` over handles.

Layer: above the runtime interface (a handle waits through the running execution's `Runtime`,
else through the client that made it) and below targets, the runtime's implementation and the
client, which all decode values here.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

from . import runtime, serialization
from .outcomes import failure
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
        context = runtime.current()
        if context is not None:
            return context
        if self._resolver is not None:
            return self._resolver
        raise RuntimeError("this execution handle is not attached to a coflux connection")

    def result(self) -> T:
        """Block until the execution completes; return its value or raise its error."""
        __tracebackhide__ = True  # noqa: F841 - IPython folds this library frame out of tracebacks
        resolver = self._resolver_or_current()
        return outcome_value(resolver.wait(self.id, None), resolver)

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        """Return the result if ready within `timeout` seconds (None: check once), else `default`."""
        from .options import wait_timeout

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
        __tracebackhide__ = True  # noqa: F841 - IPython folds this library frame out of tracebacks
        if self._error is not None:
            raise self._error
        return self._value

    def poll(self, timeout: float | None = None, *, default: Any = None) -> T | Any:
        return self.result()

    def cancel(self) -> None:
        return None

    def to_ref(self) -> dict:
        raise TypeError("an execution that ran locally (outside coflux) cannot be passed to a step")


# ---------------------------------------------------------------------- outcomes


def _asset_codecs() -> None:
    from . import assets  # noqa: F401 - registers Asset and AssetEntry with serialization


# A value holding an asset loads the asset types (most values never hold one).
serialization.register_inline_loader(("asset", "asset_entry"), _asset_codecs)


def _handle(ref: dict, resolver: Any) -> Any:
    if ref.get("type") == "input":  # a prompt's handle (cf.Input), passed between steps
        from .prompts import Input

        return Input(ref["id"])
    return Execution(ref["id"], ref.get("module", ""), ref.get("target", ""), resolver)


def decode_value(wire: dict, resolver: Any) -> Any:
    """A wire value, its execution (and input) references as handles waiting through `resolver`."""
    return serialization.decode(wire, lambda ref: _handle(ref, resolver), blobs=getattr(resolver, "blobs", None))


def outcome_value(outcome: dict, resolver: Any) -> Any:
    """Turn a wait outcome from the server into the value, or raise what the caller should see."""
    __tracebackhide__ = True  # noqa: F841 - IPython folds this library frame out of tracebacks
    if outcome.get("status") == "value":
        return decode_value(outcome["value"], resolver)
    # A notebook or a script (a client) shows where an error was raised; inside an execution the
    # frames travel in the error's payload instead.
    raise failure(outcome, remote_frames=getattr(resolver, "shows_remote_frames", False))


# ---------------------------------------------------------------------- cf.select


def select(handles: Any, *, cancel_remaining: bool = False) -> tuple[Execution, list[Execution]]:
    """Wait for the first of `handles` to resolve; return it and the others (in their order).

    Already-resolved handles win in input order. `cancel_remaining=True` cancels the others.
    Inside `cf.suspense(t)` the wait is bounded by `t` and raises TimeoutError when it expires.
    Read the winner with `winner.result()` (no round trip)."""
    handles = list(handles)
    if not handles:
        raise ValueError("cf.select needs at least one execution handle")
    for handle in handles:
        if not isinstance(handle, Execution) and not getattr(handle, "is_input", False):
            raise TypeError(f"cf.select takes execution and input handles (from .submit()), "
                            f"not {type(handle).__name__}")
    context = runtime.current()
    if context is not None:
        index, _ = context.select([h.id for h in handles], cancel_remaining)
    else:
        index = _select_outside(handles, cancel_remaining)
    winner = handles[index]
    return winner, handles[:index] + handles[index + 1:]


def cancel(handles: Any) -> None:
    """Cancel executions and inputs (`cf.Input`) together: inside an execution, in one
    transaction on the server (none of them goes on after another is cancelled)."""
    handles = list(handles)
    for handle in handles:
        if not isinstance(handle, Execution) and not getattr(handle, "is_input", False):
            raise TypeError(f"cf.cancel takes execution and input handles, not {type(handle).__name__}")
    context = runtime.current()
    if context is not None:
        context.cancel_many([h.id for h in handles])
        return
    for handle in handles:
        handle.cancel()


def _select_outside(handles: list[Execution], cancel_remaining: bool) -> int:
    """Outside an execution: local handles (plain calls) are resolved already; a client's
    handles are raced by the server."""
    for index, handle in enumerate(handles):
        if isinstance(handle, LocalExecution):
            return index
    resolver = handles[0]._resolver
    race = getattr(resolver, "select", None)
    if race is None:
        raise RuntimeError("these execution handles are not attached to a coflux connection")
    outcome = race([h.id for h in handles], None, cancel_remaining)
    return outcome["winner"]

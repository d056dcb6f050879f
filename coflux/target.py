"""Targets: what `@cf.workflow`, `@cf.task` and `@cf.stub` return.

Layer: targets, above the handles and the runtime interface. Called inside an execution, a
target goes through the running `Runtime`; outside one it is a plain call, and `.run()` goes to
the session's default client (`runtime.session()`), so nothing here imports a worker or a client.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from . import codehash, param_schema, runtime, serialization
from .models import Execution, LocalExecution
from .options import UNSET, Cache, Defer, Retries, parse_options, parse_requires

P = ParamSpec("P")
T = TypeVar("T")

Kind = Literal["workflow", "task"]

# Targets defined by decorators, by (module, name): how workers find what to run.
_registry: dict[tuple[str, str], Target] = {}
_registry_lock = threading.Lock()
_registry_listeners: list[Callable[[Target], None]] = []

# Where `__main__` (notebook cells) should be published as; set by an attached kernel worker.
main_module_alias: str | None = None


def set_main_module_alias(alias: str | None) -> None:
    """Publish targets defined in `__main__` (notebook cells) as module `alias` (None: as `__main__`)."""
    global main_module_alias
    main_module_alias = alias


def registered_targets() -> dict[tuple[str, str], Target]:
    with _registry_lock:
        return dict(_registry)


def lookup(module: str, name: str) -> Target | None:
    with _registry_lock:
        return _registry.get((module, name))


def on_register(listener: Callable[[Target], None]) -> None:
    _registry_listeners.append(listener)


def off_register(listener: Callable[[Target], None]) -> None:
    if listener in _registry_listeners:
        _registry_listeners.remove(listener)


class Target(Generic[P, T]):
    """A workflow, task or stub. Call it (blocking) or `.submit(...)` it for an `Execution`."""

    def __init__(self, fn: Callable[P, T], kind: Kind, *, name: str | None = None, module: str | None = None,
                 stub: bool = False, options: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.kind: Kind = kind
        self.name = name or fn.__name__
        self.stub = stub
        self._module = module
        self.signature = inspect.signature(fn)
        for param in self.signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"{self.name}: *args and **kwargs parameters are not supported by targets "
                                f"(parameter {param.name!r})")
        self.parameters = list(self.signature.parameters)
        self._schemas: dict[str, dict] | None = None  # parameter JSON Schemas, built when first declared
        self._converters: dict[str, Callable[[Any], Any]] | None = None  # JSON -> hinted types, on first run
        self._raw = dict(options or {})
        # Run away from the kernel that defined it (a cell's task shipped by value to a worker
        # started with --accept-code; coflux/shipping.py), even without `requires`.
        self.remote = bool(self._raw.pop("remote", False))
        self.options, self.retries = parse_options(self._raw, self.parameters, kind=kind)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        if not stub:
            with _registry_lock:
                _registry[(fn.__module__, self.name)] = self
            for listener in list(_registry_listeners):
                listener(self)

    @property
    def module(self) -> str:
        module = self._module or self.fn.__module__
        if module == "__main__" and main_module_alias:
            return main_module_alias
        return module

    def code_hash(self) -> str | None:
        """The hash of this target's code as it is now (coflux/codehash.py); None for a stub,
        whose code is elsewhere, or when the source cannot be read."""
        return None if self.stub else codehash.code_hash(self.fn)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    # ------------------------------------------------------------ calling

    def bind(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Arguments in parameter order, defaults filled in (so equal calls give equal keys)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None
        bound.apply_defaults()
        return [bound.arguments[name] for name in self.parameters]

    def convert_json_arguments(self, values: list[Any]) -> list[Any]:
        """A workflow's arguments sent as JSON (CLI, Studio, HTTP) as the types its hints name:
        a dict for a pydantic model or dataclass parameter becomes that model, a string an enum
        member or a date. Values that are Python objects already pass through unchanged."""
        if self._converters is None:
            self._converters = param_schema.converters(self.fn)
        if not self._converters:
            return values
        return [self._converters[name](value) if name in self._converters else value
                for name, value in zip(self.parameters, values, strict=False)]

    def call_with(self, values: list[Any]) -> Any:
        """Call the function with values in parameter order."""
        positional, keywords = [], {}
        for param, value in zip(self.signature.parameters.values(), values, strict=False):
            if param.kind == param.KEYWORD_ONLY:
                keywords[param.name] = value
            else:
                positional.append(value)
        result = self.fn(*positional, **keywords)
        if inspect.iscoroutine(result):
            import asyncio

            result = asyncio.run(result)
        return result

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        context = runtime.current()
        if context is None:
            return self.fn(*args, **kwargs)  # outside coflux: a plain call (a stub runs its body)
        values = self.bind(*args, **kwargs)
        return context.call(self, [serialization.encode(v) for v in values], self.options)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Execution[T]:
        """Submit for execution and return an `Execution` handle at once."""
        context = runtime.current()
        values = self.bind(*args, **kwargs)
        if context is None:
            try:
                return LocalExecution(self.module, self.name, value=self.call_with(values))
            except Exception as exc:
                return LocalExecution(self.module, self.name, error=exc)
        return context.submit(self, [serialization.encode(v) for v in values], self.options)

    def run(self, *args: P.args, **kwargs: P.kwargs):
        """Start a run of this workflow on the coflux server and return its handle at once (in a
        notebook, on the kernel's connection: the kernel attaches first, so cells are targets)."""
        if self.kind != "workflow":
            raise TypeError(f"{self.name} is a task; only workflows can be run (call it from a workflow)")
        return runtime.session().default_client().submit_target(self, *args, **kwargs)

    # ------------------------------------------------------------ call-site overrides

    def _with(self, **changes: Any) -> Target[P, T]:
        clone = copy.copy(self)
        raw = dict(self._raw)
        raw.update(changes)
        clone._raw = raw
        clone.options, clone.retries = parse_options(raw, self.parameters, kind=self.kind)
        return clone

    def with_cache(self, cache: bool | float | dt.timedelta | Cache) -> Target[P, T]:
        return self._with(cache=cache)

    def with_retries(self, retries: int | bool | Retries) -> Target[P, T]:
        return self._with(retries=retries)

    def with_defer(self, defer: bool | Defer) -> Target[P, T]:
        return self._with(defer=defer)

    def with_memo(self, memo: bool | Iterable[str]) -> Target[P, T]:
        return self._with(memo=memo)

    def with_delay(self, delay: float | dt.timedelta) -> Target[P, T]:
        return self._with(delay=delay)

    def with_timeout(self, timeout: float | dt.timedelta) -> Target[P, T]:
        return self._with(timeout=timeout)

    def with_requires(self, requires: dict[str, str | bool | list[str]] | None) -> Target[P, T]:
        if requires is not None:
            parse_requires(requires)
        return self._with(requires=requires)

    # ------------------------------------------------------------ manifest

    def definition(self) -> dict:
        """What a worker declares for this target (and registers, for workflows)."""
        parameters = []
        if self._schemas is None:  # once per target: pydantic builds each schema in milliseconds
            self._schemas = param_schema.parameter_schemas(self.fn)
        for param in self.signature.parameters.values():
            # kind: positional_only, positional_or_keyword or keyword_only (Studio's run dialog)
            entry: dict[str, Any] = {"name": param.name, "kind": param.kind.name.lower()}
            if param.annotation is not param.empty:
                entry["annotation"] = param_schema.type_label(param.annotation)
            if param.name in self._schemas:  # what the server checks submitted values against
                entry["schema"] = self._schemas[param.name]
            if param.default is not param.empty:
                try:
                    entry["default"] = serialization.encode(param.default)
                except (TypeError, ValueError):
                    pass
            parameters.append(entry)
        definition = {"type": self.kind, "parameters": parameters, "options": self.options,
                      "instruction": inspect.getdoc(self.fn)}
        code = self.code_hash()
        if code is not None:  # the code as it is now: a step panel compares what a step ran with it
            definition["code_hash"] = code
        return definition

    def __repr__(self) -> str:
        return f"<{'stub ' if self.stub else ''}{self.kind} {self.module}/{self.name}>"


def _decorator(kind: Kind, name: str | None, module: str | None, stub: bool, options: dict[str, Any]):
    def decorate(fn: Callable[P, T]) -> Target[P, T]:
        if not callable(fn):
            raise TypeError(f"@cf.{kind} decorates a function, not {fn!r}")
        return Target(fn, kind, name=name, module=module, stub=stub, options=options)

    return decorate


@overload
def workflow(fn: Callable[P, T]) -> Target[P, T]: ...
@overload
def workflow(*, name: str | None = None, **options: Any) -> Callable[[Callable[P, T]], Target[P, T]]: ...


def workflow(fn: Any = None, *, name: str | None = None, wait: bool | Iterable[str] | str = False,
             cache: bool | float | dt.timedelta | Cache = False, retries: int | bool | Retries = 0,
             recurrent: bool = False, defer: bool | Defer = False, delay: float | dt.timedelta = 0,
             memo: bool = UNSET, requires: dict[str, str | bool | list[str]] | None = None,
             timeout: float | dt.timedelta = 0) -> Any:
    """Define a workflow: the entry point for a run."""
    decorate = _decorator("workflow", name, None, False, dict(
        wait=wait, cache=cache, retries=retries, recurrent=recurrent, defer=defer, delay=delay, memo=memo,
        requires=requires, timeout=timeout))
    return decorate(fn) if fn is not None else decorate


def task(fn: Any = None, *, name: str | None = None, wait: bool | Iterable[str] | str = False,
         cache: bool | float | dt.timedelta | Cache = False, retries: int | bool | Retries = 0,
         recurrent: bool = False, defer: bool | Defer = False, delay: float | dt.timedelta = 0,
         memo: bool | Iterable[str] = UNSET, requires: dict[str, str | bool | list[str]] | None = None,
         timeout: float | dt.timedelta = 0, remote: bool = False) -> Any:
    """Define a task: an operation called from a workflow or another task (each call is a step).
    `remote=True` (for a task defined in a notebook cell): run it on a worker that accepts shipped
    code (`coflux worker --accept-code`), not in the kernel; a cell task with `requires` goes there too."""
    decorate = _decorator("task", name, None, False, dict(
        wait=wait, cache=cache, retries=retries, recurrent=recurrent, defer=defer, delay=delay, memo=memo,
        requires=requires, timeout=timeout, remote=remote))
    return decorate(fn) if fn is not None else decorate


def stub(module: str, *, name: str | None = None, type: Kind = "task", wait: bool | Iterable[str] | str = False,
         cache: bool | float | dt.timedelta | Cache = False, retries: int | bool | Retries = 0,
         recurrent: bool = False, defer: bool | Defer = False, delay: float | dt.timedelta = 0,
         memo: bool | Iterable[str] = UNSET) -> Callable[[Callable[P, T]], Target[P, T]]:
    """Reference a target in another module without importing it; the body runs only outside coflux."""
    if not isinstance(module, str) or not module:
        raise TypeError("@cf.stub needs the module name of the target it references")
    if type not in ("workflow", "task"):
        raise ValueError(f"@cf.stub type must be 'workflow' or 'task', not {type!r}")
    return _decorator(type, name, module, True, dict(
        wait=wait, cache=cache, retries=retries, recurrent=recurrent, defer=defer, delay=delay, memo=memo))

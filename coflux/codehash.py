"""A hash of a target's code: what `cf.Cache(version=cf.CODE)` keys on and what a step records.

The hash covers the function's own source and, transitively, the functions it calls that are
*yours*: defined in a notebook cell or in a project module (not the standard library, not an
installed package, not coflux). Each is parsed and reduced to its normalised syntax tree
(`ast.dump` without line numbers), with decorators and docstrings left out, so whitespace,
comments, docstrings and decorator options (cache, retries) do not change it; renaming a variable
does. Module names are left out too, so a cell and a module file with the same code give the same
hash (a kernel and a headless worker agree). Not covered: global constants and classes (edit
the function, or set a `version` of your own), and code whose source cannot be read (then there
is no hash and a CODE cache behaves like a plain one).

Layer: a leaf (protocol).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import sys
import sysconfig
import textwrap
import threading
import types
from collections.abc import Callable
from typing import Any

from .protocol import CODE_VERSION


class _CodeVersion(str):
    """`cf.CODE`: a cache version that is the code's hash (a string, so a `version` is still one)."""

    def __repr__(self) -> str:
        return "cf.CODE"


# The wire form of `version=cf.CODE`: the server puts the step's code hash in its place.
CODE: str = _CodeVersion(CODE_VERSION)

_LIBRARY_ROOTS = tuple(sorted({os.path.realpath(p) for p in (
    sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("platstdlib"),
    sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib"), sys.prefix,
    sys.base_prefix) if p}))
_COFLUX = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))  # never the user's code

# Per function: (hash, dependencies as (namespace, name, object)). A hit is reused while every
# name still refers to the same object, so re-running a helper's cell invalidates it cheaply.
_memo: dict[Any, tuple[str | None, list[tuple[dict, str, Any]]]] = {}
_memo_lock = threading.Lock()
_MEMO_LIMIT = 2048


def code_hash(fn: Callable[..., Any]) -> str | None:
    """The sha256 (hex) of `fn`'s normalised code and that of the project functions it calls;
    None when its source cannot be read."""
    with _memo_lock:
        cached = _memo.get(fn)
    if cached is not None and all(namespace.get(name, _MISSING) is obj for namespace, name, obj in cached[1]):
        return cached[0]
    result = _compute(fn)
    with _memo_lock:
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[fn] = result
    return result[0]


_MISSING = object()


def _compute(root: Callable[..., Any]) -> tuple[str | None, list[tuple[dict, str, Any]]]:
    deps: list[tuple[dict, str, Any]] = []
    parts: dict[str, str] = {}
    todo: list[tuple[str, types.FunctionType]] = [("", root)]  # type: ignore[list-item]
    seen: set[int] = set()
    while todo:
        label, fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        node = _function_node(fn)
        if node is None:
            if fn is root:
                return None, deps
            continue
        parts[label] = ast.dump(node, annotate_fields=False, include_attributes=False)
        for name, value, namespace in _references(fn, node):
            deps.append((namespace, name, value))
            target = _project_function(value)
            if target is not None:
                todo.append((f"{label}/{name}", target))
    digest = hashlib.sha256()
    for label in sorted(parts):
        digest.update(label.encode() + b"\0" + parts[label].encode() + b"\0")
    return digest.hexdigest(), deps


def _function_node(fn: Any) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if node is None:
        return None
    for child in ast.walk(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            child.decorator_list = [] if child is node else child.decorator_list
            body = child.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                child.body = body[1:] or [ast.Pass()]
    return node


def _references(fn: Any, node: ast.AST) -> list[tuple[str, Any, dict]]:
    """Names the function reads that resolve to functions, targets or modules (and
    `module.attribute` reads of a project module), with the namespace each came from."""
    namespace: dict = getattr(fn, "__globals__", {})
    closure = {}
    code = getattr(fn, "__code__", None)
    if code is not None and fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__, strict=False):
            try:
                closure[name] = cell.cell_contents
            except ValueError:
                pass
    found: list[tuple[str, Any, dict]] = []
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            names.add(child.id)
        elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
            module = closure.get(child.value.id, namespace.get(child.value.id))
            if isinstance(module, types.ModuleType) and _is_project_file(getattr(module, "__file__", None)):
                if hasattr(module, child.attr):
                    found.append((f"{child.value.id}.{child.attr}", getattr(module, child.attr),
                                  module.__dict__))
    for name in sorted(names):
        source = closure if name in closure else namespace
        if name in source and _project_function(source[name]) is not None:
            found.append((name, source[name], source))
    return found


def _project_function(value: Any) -> types.FunctionType | None:
    fn = getattr(value, "fn", None) if not isinstance(value, types.FunctionType) else value
    if not isinstance(fn, types.FunctionType):
        return None
    return fn if _is_project_file(fn.__code__.co_filename) else None


def _is_project_file(path: str | None) -> bool:
    if not path:
        return False
    if path.startswith("<"):  # <ipython-input-...>, <string>: typed in, the user's
        return path.startswith("<ipython-input")
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real or real.startswith(_COFLUX + os.sep):
        return False
    cwd = os.path.realpath(os.getcwd())
    # A project file under the working directory wins over a library root that contains it
    # (a virtualenv inside the project is excluded by site-packages above).
    if real.startswith(cwd + os.sep):
        return True
    return not any(real == root or real.startswith(root + os.sep) for root in _LIBRARY_ROOTS)

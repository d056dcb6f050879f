"""The import graph of the SDK, the server and the Jupyter extension: no cycle, and the layers.

Every `.py` file under coflux/, server/ and jupyter_ext/ is parsed (no import runs), and every
import statement in it counts, wherever it is: at module level, inside a function (the lazy
imports that hid the cycles this test was written against), under `if TYPE_CHECKING:`, and an
`importlib.import_module` of a constant name. Relative imports are resolved. `from a import b`
is an edge to module `a.b` when there is one, else to `a`. That a module's own packages run
their `__init__` before it is not counted as an edge: those are empty or re-export their own
submodules, except the SDK's face (coflux/__init__.py), which the rules keep above every module.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A folder of the repository -> the name it is installed and imported as (pyproject.toml).
PACKAGES = {"coflux": "coflux", "server": "coflux_server", "jupyter_ext": "coflux_jupyter"}

# The SDK's layers, lowest first (coflux/__init__.py says what each is). A module imports only
# modules of its own layer and of layers below; within a layer the graph has no cycle either.
SDK_LAYERS: list[set[str]] = [
    {"protocol", "errors", "options", "serialization", "outcomes", "remote_frames", "config", "telemetry",
     "runview", "cli_http", "codehash", "param_schema", "run_output"},
    {"runtime"},
    {"models", "target", "logs", "metrics", "capture", "assets", "blobs", "prompts", "testing", "pools_api",
     "shipping"},
    {"context", "connection", "client"},
    {"worker", "worker.base", "worker.execute", "worker.headless", "worker.import_errors", "worker.pool",
     "worker.slots", "kernel", "widgets"},
    {"session", "cli_base", "cli_observe", "cli_assets", "cli_admin", "cli_inputs", "cli_pools", "cli", "__main__"},
]


def _module_name(path: Path) -> tuple[str, bool]:
    """(import name, is a package's __init__) of a file of the repository."""
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [PACKAGES[folder], *rest]
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "node_modules" in path.parts or "frontend" in path.relative_to(ROOT).parts:
                continue
            name, is_package = _module_name(path)
            found[name] = (path, is_package)
    return found


def _project_module(name: str) -> str | None:
    """The project module `name` is, or is inside (`a.b.C` -> `a.b`), or None (not ours)."""
    known = modules()
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The absolute names an import node (or an importlib.import_module call) brings in."""
    package = module if is_package else module.rpartition(".")[0]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            origin = ".".join([*base, node.module] if node.module else base)
        else:
            origin = node.module or ""
        return [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules() else origin
                for alias in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("import_module", "__import__"):
            target = node.args[0].value
            if target.startswith("."):  # relative to the calling module's package (`__name__`)
                dots = len(target) - len(target.lstrip("."))
                base = package.split(".")[: len(package.split(".")) - dots + 1]
                target = ".".join([*base, target.lstrip(".")]).rstrip(".")
            return [target]
    return []


@cache
def imports() -> dict[str, dict[str, int]]:
    """module -> {imported name (absolute, any package) -> first line importing it}."""
    found: dict[str, dict[str, int]] = {}
    for module, (path, is_package) in modules().items():
        names: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported_names(module, is_package, node):
                if name and (name not in names or node.lineno < names[name]):
                    names[name] = node.lineno
        found[module] = names
    return found


@cache
def graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports -> line}."""
    edges: dict[str, dict[str, int]] = {}
    for module, names in imports().items():
        edges[module] = {}
        for name, line in names.items():
            target = _project_module(name)
            if target is not None and target != module:
                edges[module].setdefault(target, line)
    return edges


def strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _a_cycle(component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """One cycle through the component's first module (a shortest one), as the modules on it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node]):
            if child == start:
                return [*paths[node], start]
            if child in members and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


def _describe(cycle: list[str], edges: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*steps, cycle[-1]])


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    assert len(edges) > 60  # the walk found the modules (coflux/, server/, jupyter_ext/)
    cycles = [f"{', '.join(component)}; for one: {_describe(_a_cycle(component, edges), edges)}"
              for component in strongly_connected(edges)]
    assert not cycles, "modules that import each other:\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert _describe(_a_cycle(["a", "b", "c"], edges), edges) == "a (line 1) -> b (line 2) -> c (line 3) -> a"


def test_function_level_and_relative_imports_are_seen() -> None:
    edges = graph()
    assert "coflux.session" in edges["coflux"]  # inside a function of coflux/__init__.py
    assert "coflux.worker.execute" in edges["coflux.worker.pool"]  # `from .execute import ...` in a function
    assert "coflux.serialization" in edges["coflux.worker.execute"]  # `from .. import serialization`
    assert "coflux.target" in edges["coflux.client"]  # under `if TYPE_CHECKING:`


def _reachable(start: str) -> set[str]:
    edges, seen, todo = graph(), set(), [start]
    while todo:
        for child in edges[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _sdk(module: str) -> str:
    return module.removeprefix("coflux").removeprefix(".")


def test_every_sdk_module_has_a_layer_and_imports_only_its_own_or_lower_ones() -> None:
    layer_of = {name: i for i, layer in enumerate(SDK_LAYERS) for name in layer}
    sdk = [m for m in modules() if m.split(".")[0] == "coflux" and m != "coflux"]
    unplaced = sorted(_sdk(m) for m in sdk if _sdk(m) not in layer_of)
    assert not unplaced, f"place these modules in a layer (SDK_LAYERS here, and coflux/__init__.py): {unplaced}"
    wrong = []
    for module in sdk:
        for target, line in graph()[module].items():
            if target.split(".")[0] == "coflux" and target != "coflux" \
                    and layer_of[_sdk(target)] > layer_of[_sdk(module)]:
                wrong.append(f"{module} (layer {layer_of[_sdk(module)] + 1}, line {line}) imports "
                             f"{target} (layer {layer_of[_sdk(target)] + 1})")
    assert not wrong, "imports of a higher layer:\n" + "\n".join(wrong)


def test_no_module_imports_the_sdk_package_itself() -> None:
    """coflux/__init__.py is the package's face: it loads every layer, so none may load it."""
    importers = sorted(m for m, edges in graph().items() if "coflux" in edges)
    assert importers == []


def test_the_client_needs_no_kernel_no_widgets_no_worker() -> None:
    below = _reachable("coflux.client")
    assert not {m for m in below if m in ("coflux.kernel", "coflux.widgets", "coflux.session")
                or m.startswith("coflux.worker")}, sorted(below)
    assert "coflux.client" not in _reachable("coflux.target")  # targets run through the runtime or the session


def test_only_the_runtime_implementation_and_the_workers_know_the_execution_context() -> None:
    users = sorted(m for m, edges in graph().items() if "coflux.context" in edges)
    assert users == ["coflux.worker.execute"]


def test_protocol_imports_only_the_standard_library() -> None:
    imported = {name.split(".")[0] for name in imports()["coflux.protocol"]}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_serialization_imports_no_other_coflux_module() -> None:
    assert graph()["coflux.serialization"] == {}  # codecs and the blob store register with it


def test_the_server_takes_only_the_protocol_from_the_sdk() -> None:
    server = [m for m in modules() if m.split(".")[0] == "coflux_server"]
    taken = {target for m in server for target in graph()[m] if target.split(".")[0] == "coflux"}
    assert taken == {"coflux.protocol"}


def test_only_the_command_line_starts_the_server() -> None:
    users = sorted(m for m, edges in graph().items() if m.split(".")[0] == "coflux"
                   and any(t.split(".")[0] in ("coflux_server", "coflux_jupyter") for t in edges))
    assert users == ["coflux.cli"]


def test_server_handler_modules_build_on_the_http_base_and_never_on_each_other() -> None:
    handlers = {m for m in modules() if m.startswith("coflux_server.") and m.endswith("handlers")}
    assert handlers >= {"coflux_server.handlers", "coflux_server.blob_handlers", "coflux_server.observe_handlers",
                        "coflux_server.studio_handlers"}
    between = sorted((m, t) for m in handlers for t in graph()[m] if t in handlers)
    # The WebSocket handler answers the observe ops (get_logs, ...) with observe_handlers' code.
    assert between == [("coflux_server.handlers", "coflux_server.observe_handlers")]
    for module in handlers:
        assert "coflux_server.http_base" in graph()[module], module
        assert "coflux_server.routes" not in graph()[module], module
    assert "coflux_server.routes" in graph()["coflux_server.app"]
    assert "coflux_server.routes" in graph()["coflux_jupyter.extension"]
    assert not any(t.startswith("coflux_server.") and t.endswith("handlers") and t != "coflux_server.studio_handlers"
                   for t in graph()["coflux_jupyter.extension"]), graph()["coflux_jupyter.extension"]


def test_modules_say_their_layer() -> None:
    """Each module of the SDK, of the server's HTTP side and of the extension says its layer in
    its docstring (a line starting with `Layer:`), so a reader knows what it may import."""
    http = {"coflux_server.http_base", "coflux_server.routes", "coflux_server.app"}
    checked = [m for m in modules() if m.split(".")[0] in ("coflux", "coflux_jupyter") or m in http
               or (m.startswith("coflux_server.") and m.endswith("handlers"))]
    silent = sorted(m for m in checked if not any(
        line.startswith("Layer:") for line in (ast.get_docstring(ast.parse(modules()[m][0].read_text())) or "")
        .splitlines()))
    assert not silent, silent

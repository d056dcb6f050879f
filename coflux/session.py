"""The glue of a Python session: which client `workflow.run(...)` uses, how runs display, and
attaching a notebook's kernel (`%load_ext coflux`, `cf.attach()`).

Layer: the top of the SDK (with the command line): the one place that knows the kernel worker
and the widgets, so that the client and the targets below depend on neither. It implements the
runtime's `Session` (`glue`), which the package names when it is imported (coflux/__init__.py):
targets and `Run` reach it through `runtime.session()`, and this module is loaded on first use.

In a notebook, running a workflow attaches the kernel (its cells are the targets) and uses the
kernel's client; elsewhere a client is built from the environment (COFLUX_SERVER, COFLUX_TOKEN,
coflux.toml). In a kernel a run displays as its live view (`Run._repr_mimebundle_`, through
`glue.run_bundle`, coflux/widgets.py); attaching also registers that with IPython, so `run`
shows as a display of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from . import runtime
from .client import Client, Run
from .worker.slots import DEFAULT_MAX_PARKED

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The attached kernel worker's client in a notebook, else one built from the environment."""
    global _default
    from . import kernel

    worker = kernel.current_worker()
    if worker is None and runtime.in_kernel():
        worker = attach()  # a notebook's cells are the targets: host them before running
    if worker is not None:
        return worker.client
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


# ---------------------------------------------------------------------- the kernel


def attach(server: str | None = None, token: str | None = None, *, module: str | None = None,
           workspace: str | None = None, concurrency: int = 8, max_parked: int = DEFAULT_MAX_PARKED) -> Any:
    """Connect this kernel to the coflux server as a worker for targets defined in its cells
    (the `KernelWorker`, coflux/kernel.py), and make runs display as their live views."""
    from . import kernel

    worker = kernel.attach(server, token, module=module, workspace=workspace, concurrency=concurrency,
                           max_parked=max_parked)
    worker.client.acting_for = jupyter_user()  # runs from cells are recorded as the user's
    register_display()  # also when attached by running a workflow
    return worker


def jupyter_user() -> str:
    """Who runs this kernel: JupyterHub's user, else the account's name."""
    import getpass
    import os

    try:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    except Exception:  # no name for this uid (a container)
        return "jupyter user"


def detach() -> None:
    """Disconnect this kernel's worker (if attached)."""
    from . import kernel

    kernel.detach()


def load_ipython_extension(ipython: Any) -> None:
    worker = attach()
    print(f"coflux: kernel attached to {worker.connection.url} as module {worker.module!r}")


def unload_ipython_extension(ipython: Any) -> None:
    detach()


# ---------------------------------------------------------------------- displaying runs


def _display_run(run: Run) -> None:
    from IPython.display import display

    display(run._repr_mimebundle_(), raw=True)  # the widget, the kernel-free view and a fallback


def register_display(ipython: Any = None) -> None:
    """Make IPython display a `Run` as its live view (idempotent)."""
    if ipython is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        ipython = get_ipython()
    formatter = getattr(getattr(ipython, "display_formatter", None), "ipython_display_formatter", None)
    if formatter is not None:
        formatter.for_type(Run, _display_run)


class _Glue(runtime.Session):
    """This session, as the runtime's `Session`: the views come from coflux/widgets.py, loaded
    when a run is first displayed (the notebook stack: anywidget, traitlets, plotly)."""

    def default_client(self) -> Client:
        return default_client()

    def run_bundle(self, run: Run, part: str = "") -> Any:
        from .widgets import display_bundle

        return display_bundle(run, part)

    def run_view(self, run: Run, part: str = "", height: int = 0) -> Any:
        from .widgets import run_view

        return run_view(run, part, height)

    def run_part(self, run: Run, part: str) -> Any:
        from .widgets import AssetsPart, RunPart

        return AssetsPart(run, part) if part == "assets" else RunPart(run, part)

    def metrics_figure(self, series: list[dict], title: str | None) -> Any:
        from .widgets import metrics_figure

        return metrics_figure(series, title=title)


glue = _Glue()

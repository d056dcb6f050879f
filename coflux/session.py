"""The glue of a Python session: which client `workflow.run(...)` uses, and how runs display.

This is the one place that knows about the kernel worker and the widgets, so the client below it
depends on neither: in a notebook, running a workflow attaches the kernel (its cells are the
targets) and uses the kernel's client; elsewhere a client is built from the environment
(COFLUX_SERVER, COFLUX_TOKEN, coflux.toml). In a kernel a run displays as its live view
(`Run._repr_mimebundle_`, coflux/widgets.py); the session also registers that with IPython
(`%load_ext coflux`, or the kernel attaching by itself), so `run` shows as a display of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from .client import Client, Run

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The attached kernel worker's client in a notebook, else one built from the environment."""
    global _default
    from . import kernel

    worker = kernel.current_worker()
    if worker is None and kernel.in_kernel():
        worker = kernel.attach()  # a notebook's cells are the targets: host them before running
    if worker is not None:
        return worker.client
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def _display_run(run: Run) -> None:
    from IPython.display import display

    display(run.widget())


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

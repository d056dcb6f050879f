"""The API's routes, shared by the headless app (app.py) and the Jupyter extension.

Layer: above the handler modules (which never import each other, only http_base.py), under the
two apps that mount the routes, each behind its own authentication.
"""

from __future__ import annotations

from .blob_handlers import blob_routes
from .handlers import (
    CancelHandler,
    ExecutionResultHandler,
    HealthHandler,
    RerunHandler,
    RunHandler,
    RunResultHandler,
    RunsHandler,
    SocketHandler,
    StepCodeHandler,
    WhoAmIHandler,
    WorkersHandler,
    WorkflowsHandler,
    WorkspacesHandler,
)
from .http_base import RUN_ID_PATTERN
from .observe_handlers import observe_routes
from .state import ServerState
from .studio_handlers import studio_api_routes


def route_table(state: ServerState) -> list[tuple[str, type, dict]]:
    """Routes relative to the server's base (`/` headless, `{base_url}coflux/` in Jupyter)."""
    kw = {"state": state}
    run = RUN_ID_PATTERN
    return [
        ("api/health", HealthHandler, kw),
        ("api/ws", SocketHandler, kw),
        ("api/runs", RunsHandler, kw),
        (rf"api/runs/({run})", RunHandler, kw),
        (rf"api/runs/({run})/result", RunResultHandler, kw),
        (rf"api/executions/({run}:\d+:\d+)/result", ExecutionResultHandler, kw),
        (rf"api/executions/({run}:\d+:\d+)/cancel", CancelHandler, kw),
        (rf"api/steps/({run}:\d+)/rerun", RerunHandler, kw),
        (rf"api/steps/({run}:\d+)/code", StepCodeHandler, kw),
        ("api/workflows", WorkflowsHandler, kw),
        ("api/workspaces", WorkspacesHandler, kw),
        ("api/workers", WorkersHandler, kw),
        ("api/whoami", WhoAmIHandler, kw),
        *blob_routes(state),  # api/blobs/<key>, api/assets/<id>, api/runs/<id>/assets
        *observe_routes(state),  # api/runs/<id>/logs, api/runs/<id>/metrics
        *studio_api_routes(state),  # api/queue
    ]

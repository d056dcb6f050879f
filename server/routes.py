"""The API's routes, shared by the headless app (app.py) and the Jupyter extension.

Layer: above the handler modules (which never import each other, only http_base.py), under the
two apps that mount the routes, each behind its own authentication.
"""

from __future__ import annotations

from .access_handlers import token_routes
from .blob_handlers import blob_routes
from .handlers import (
    ArchiveModuleHandler,
    CancelHandler,
    ExecutionResultHandler,
    HealthHandler,
    ManifestsHandler,
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
    WorkspaceStateHandler,
)
from .http_base import RUN_ID_PATTERN
from .input_handlers import input_routes
from .observe_handlers import observe_routes
from .pool_handlers import pool_routes
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
        ("api/workspaces/(pause|resume|archive)", WorkspaceStateHandler, kw),
        ("api/workers", WorkersHandler, kw),
        ("api/manifests", ManifestsHandler, kw),
        ("api/manifests/archive", ArchiveModuleHandler, kw),
        ("api/whoami", WhoAmIHandler, kw),
        *blob_routes(state),  # api/blobs/<key>, api/assets/<id>, api/runs/<id>/assets
        *observe_routes(state),  # api/runs/<id>/logs, api/runs/<id>/metrics
        *studio_api_routes(state),  # api/queue
        *token_routes(state),  # api/tokens, api/tokens/<id>/revoke
        *input_routes(state),  # api/inputs, api/inputs/<id>[/respond|/dismiss]
        *pool_routes(state),  # api/pools, api/pools/<name>[/enable|disable|launches], api/pools-export
    ]

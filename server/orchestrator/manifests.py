"""Registered modules: archiving one (`coflux manifests archive MODULE`).

A module's workflows are registered by the workers that host it (sessions.py); archiving takes
them out of the workspace's manifest (Studio's and the Lab panel's lists, `submit`) until a
worker registers the module again. Runs keep their history: they name their target, not a row.
"""

from __future__ import annotations

from sqlalchemy import and_, delete

from ..errors import NotFound
from ..store import schema as t
from .component import Component


class Manifests(Component):
    def archive(self, workspace: str, module: str) -> dict:
        workspace_id = self.o.workspace_id(workspace)
        removed = self.db.execute(delete(t.workflows).where(and_(
            t.workflows.c.workspace_id == workspace_id, t.workflows.c.module == module))).rowcount
        if not removed:
            raise NotFound(f"no module {module!r} is registered in workspace {workspace!r}")
        return {"module": module, "workspace": workspace, "workflows": removed}

"""What a displayed run leaves in the notebook file: a view that needs no kernel, and a fallback.

A run's output carries three things beside the widget (coflux/widgets.py `display_bundle`):

- `application/vnd.coflux.run+json`: only the run id, the server's path and the part to show.
  JupyterLab's `coflux-studio` extension renders it (jupyter_ext/frontend/lab/src/runmime.ts,
  which says why this is a MIME renderer rather than saved widget state) as the live run view,
  talking to the server from the browser, so the view is live again whenever the notebook is
  opened, with no kernel. It is emitted only for a server the browser reaches with Jupyter's
  own login (the extension's mount): a token never goes into a saved notebook.
- `text/html` and `text/plain`: workflow, run id, status, duration and a Studio link, for
  `jupyter nbconvert`, nbviewer and GitHub. The status is the one known when the file was
  written, and says so ("as of ..."): the Lab renderer rewrites the fallback when the run's
  status changes, so a notebook saved later holds the later status.

Layer: a leaf (the standard library only), under the widgets.
"""

from __future__ import annotations

import datetime
import html
from typing import Any

RUN_MIME = "application/vnd.coflux.run+json"


def duration_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def as_of(at: datetime.datetime | None = None) -> str:
    at = at or datetime.datetime.now(datetime.UTC)
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def fallback(run_id: str, workflow: str, status: str, duration: Any, studio_url: str,
             when: str) -> dict[str, str]:
    """The static text/plain and text/html of a run output (the Lab renderer builds the same)."""
    took = duration_text(duration)
    plain = (f"coflux run {run_id} {workflow}: {status} as of {when}"
             + (f", took {took}" if took else "") + (f"\nStudio: {studio_url}" if studio_url else ""))
    e = html.escape
    link = f' · <a href="{e(studio_url, quote=True)}" target="_blank">open in Studio</a>' if studio_url else ""
    markup = (f'<div class="coflux-run-fallback" data-run="{e(run_id, quote=True)}">'
              f"<strong>{e(workflow)}</strong> <code>{e(run_id)}</code>: "
              f'<span class="coflux-run-fallback-status">{e(status)}</span> '
              f"<small>as of {e(when)}</small>" + (f" · took {e(took)}" if took else "") + link + "</div>")
    return {"text/plain": plain, "text/html": markup}

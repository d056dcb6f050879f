"""Helpers for the browser tests: a headless server with a worker (`serving`), runs
submitted over HTTP, and a bare page that mounts the built notebook view module
(coflux/static/runview.js) against that server, outside Jupyter.

The bare page is served on the server's own origin (Playwright answers one path of it), so the
view talks to the real server exactly as the notebook widget of a headless kernel does: with the
token (HTTP `Authorization`, WebSocket `?token=`), and loads plotly from the server's static/.
"""

from __future__ import annotations

import json
import pathlib
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import Server, Worker, wait_until  # noqa: E402

STATIC = REPO / "coflux" / "static"
HARNESS = "__runview_test__/"  # a path the server does not have: the test page answers it
BUILD_HINT = "npm --prefix jupyter_ext/frontend ci && npm --prefix jupyter_ext/frontend run build"


def view_built() -> str | None:
    """Why the built run view is missing, or None."""
    for name in ("runview.js", "runview.css"):
        if not (STATIC / name).is_file():
            return f"coflux/static/{name} is not built ({BUILD_HINT})"
    if not (REPO / "server" / "static" / "plotly.js").is_file():
        return f"server/static/plotly.js is not built ({BUILD_HINT})"
    return None


@contextmanager
def serving(base: pathlib.Path, modules: list[str], **worker_options: Any) -> Iterator[Server]:
    """A headless server with one worker hosting `modules` (registered before it is yielded),
    both stopped afterwards, the worker first."""
    server = Server(base / "data").start()
    worker = Worker(server, modules, log=base / "worker.log", **worker_options).start()
    try:
        worker.wait_registered()
        yield server
    finally:
        worker.stop()
        server.stop()


def submit(server: Server, target: str, *args: Any, **kwargs: Any) -> str:
    """Start viewapp.<target>(*args, **kwargs) and return the run id."""
    body = json.dumps({"module": "viewapp", "target": target, "args": list(args), "kwargs": kwargs}).encode()
    request = urllib.request.Request(server.url + "api/runs", data=body, method="POST", headers={
        "Authorization": f"token {server.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["run"]


def run_status(server: Server, run_id: str) -> str:
    try:
        run = server.get(f"api/runs/{run_id}", timeout=60)
    except (TimeoutError, OSError):  # a server busy writing 100,000 log lines answers late
        return ""
    execution = run["steps"][0]["executions"][-1]
    return (execution.get("result") or {}).get("kind") or execution["state"]


def wait_run(server: Server, run_id: str, status: str = "value", timeout: float = 300) -> dict:
    wait_until(lambda: run_status(server, run_id) == status, timeout, interval=0.2,
               message=f"run {run_id} to end with {status}")
    return server.get(f"api/runs/{run_id}")


_MOUNT_JS = """async ({traits, theme, harness}) => {
  document.documentElement.className = theme === "dark" ? "cf-theme-dark" : "cf-theme-light";
  document.head.innerHTML = '<meta charset="utf-8"><title>run view test</title>';
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/" + harness + "runview.css";
  document.head.appendChild(css);
  document.body.innerHTML = '<div id="output"></div>';
  document.body.style.cssText = "margin: 12px; background: " + (theme === "dark" ? "#1c1c21" : "#ffffff");
  const view = (await import("/" + harness + "runview.js")).default;
  // The part of anywidget's model the view reads: get / on / off, plus set for the tests.
  const listeners = new Map();
  const model = {
    get: (name) => traits[name],
    on: (event, callback) => { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event).add(callback); },
    off: (event, callback) => { listeners.get(event)?.delete(callback); },
    set: (name, value) => { traits[name] = value; for (const callback of listeners.get("change:" + name) ?? []) callback(); },
    listeners: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
  };
  window.viewModel = model;
  window.viewMountedAt = performance.now();
  window.viewCleanup = view.render({ model, el: document.getElementById("output") });
  await new Promise((resolve) => css.sheet ? resolve() : css.addEventListener("load", resolve));
}"""


def open_view(page: Any, server: Server, run_id: str, *, part: str = "", height: int = 0,
              theme: str = "light") -> None:
    """Mount the built view module showing `run_id` in a page of the server's origin.

    The document is a real response of the server (its 401 page: Chromium lets only documents
    that came from the local server open WebSockets to it); the module and its stylesheet are
    answered by the test from coflux/static."""
    traits = {"run_id": run_id, "api_base": server.url, "token": server.token or "", "part": part,
              "studio_url": f"{server.url}#/runs/{run_id}", "height": height}

    def answer(route: Any) -> None:
        name = route.request.url.split(HARNESS, 1)[1].split("?", 1)[0]
        route.fulfill(path=str(STATIC / name),
                      content_type="text/javascript" if name.endswith(".js") else "text/css")

    page.route(f"{server.url}{HARNESS}*", answer)
    page.goto(f"{server.url}api/health")
    page.evaluate(_MOUNT_JS, {"traits": traits, "theme": theme, "harness": HARNESS})

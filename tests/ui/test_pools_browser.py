"""Studio's Pools page in headless Chromium against a real `coflux server --launcher process`:
a pool whose launched worker ran a workflow (connected, its session, where it runs) and a pool
whose launch failed (its error and log tail), as a user sees them. Screenshots go to `artifacts`."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import APPS_DIR, Server, wait_until  # noqa: E402
from test_pools import cli_in, create, launches, result_of, stop_launched, submit  # noqa: E402
from test_studio_browser import log_in, no_page_errors, shoot, studio_built  # noqa: E402

pytestmark = pytest.mark.ui
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def pool_stack(ui_requirements, tmp_path_factory) -> Iterator[Server]:
    missing = studio_built()
    if missing:
        pytest.fail(missing)
    server = Server(tmp_path_factory.mktemp("pools-ui") / "data", extra=["--launcher", "process"]).start()
    try:
        yield server
    finally:
        stop_launched(server)
        server.stop()


def test_the_pools_page_shows_pools_and_their_launches(pool_stack, page, artifacts):
    server = pool_stack
    cli = cli_in(server, "default")
    create(cli, "local", "--set", f"directory={APPS_DIR}", "--modules", "poolapp.flows", "--provides", "zone:eu")
    result_of(cli, submit(cli, "poolapp.flows/hello", '"ui"'))
    create(cli, "broken", "--set", f"directory={APPS_DIR / 'badimport'}", "--set", "env.PYTHONPATH=/nowhere",
           "--modules", "poolapp.other")
    cli("pools", "disable", "local")
    wait_until(lambda: launches(server, "default", "local")[0]["state"] == "exited", 30, 0.2, "local to stop")
    cli("pools", "enable", "local")
    submit(cli, "poolapp.other/anything")  # only `broken` hosts that module
    wait_until(lambda: any(lc["state"] == "failed" for lc in launches(server, "default", "broken")), 60, 0.2,
               "the broken pool's failed launch")

    log_in(page, server)
    page.goto(f"{server.url}#/pools")
    page.wait_for_selector(".cf-pool[data-pool='local'] .cf-launches-table tr[data-state='exited']", timeout=WAIT_MS)
    page.wait_for_selector(".cf-pool[data-pool='broken'] tr[data-state='failed']", timeout=WAIT_MS)
    local = page.locator(".cf-pool[data-pool='local']").inner_text()
    assert "enabled" in local and "poolapp.flows" in local and "zone:eu" in local and "pid " in local
    failed = page.locator(".cf-pool[data-pool='broken'] tr[data-state='failed']").first
    assert "exited with code 1 before connecting" in failed.inner_text()
    failed.locator("summary", has_text="log tail").click()
    assert "poolapp" in failed.locator(".cf-pool-log").inner_text()
    assert page.locator(".cf-studio-nav a[aria-current='page']").inner_text() == "Pools"
    page.set_viewport_size({"width": 1500, "height": 950})
    shoot(page, artifacts, "pools")
    no_page_errors(page)

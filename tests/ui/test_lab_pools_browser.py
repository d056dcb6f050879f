"""The Lab panel's Pools section in Chromium: a real JupyterLab with the coflux server extension;
pools created and disabled with the `coflux pools` CLI against it appear, and change, in the
panel by themselves (pool events on the `workers` topic). Jupyter's server runs no launcher, so
nothing is launched here (tests/test_pools.py launches through `coflux server --launcher`)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from harness import APPS_DIR, base_env
from test_lab_panel_browser import LABEXTENSION, WAIT_MS, open_lab, open_panel_from_sidebar

pytestmark = pytest.mark.ui


def pools_cli(lab, *args: str) -> subprocess.CompletedProcess:
    env = base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token)
    return subprocess.run([sys.executable, "-m", "coflux", "pools", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_panel_lists_pools_and_follows_their_changes(lab, page, artifacts: pathlib.Path):
    from playwright.sync_api import expect

    if not LABEXTENSION.exists():
        pytest.skip("the labextension is not built (npm --prefix jupyter_ext/frontend run build)")
    created = pools_cli(lab, "create", "labpool", "--type", "process", "--set", f"directory={APPS_DIR}",
                        "--modules", "poolapp.flows")
    assert created.returncode == 0, created.stderr
    open_lab(page, lab)
    panel = open_panel_from_sidebar(page)
    pool = panel.locator('[data-pool="labpool"]')
    expect(pool).to_be_visible(timeout=WAIT_MS)
    expect(pool).to_contain_text("process")
    expect(pool).to_contain_text("enabled")
    expect(pool).to_contain_text("0 launched")
    assert pools_cli(lab, "disable", "labpool").returncode == 0
    expect(pool).to_contain_text("disabled", timeout=WAIT_MS)  # live: the pool event, no reload
    expect(panel.locator(".coflux-lab-pools-link")).to_have_attribute("href", lab.url + "coflux/#/pools")
    page.screenshot(path=str(artifacts / "lab-pools.png"))
    assert not page.errors, page.errors
    pools_cli(lab, "delete", "labpool")

"""Fixtures for the browser tests: a JupyterLab subprocess per module, a headless Chromium per test.

The tests are marked `ui`. They skip when /usr/bin/chromium or the playwright package is missing,
unless COFLUX_UI_REQUIRED=1 (set by .ci/run, which installs both), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ui_helpers import (
    ARTIFACTS_ENV,
    CHROMIUM,
    CHROMIUM_FLAGS,
    REQUIRE_ENV,
    JupyterLab,
    artifacts_dir,
    missing_requirements,
)


@pytest.fixture(scope="module")
def ui_requirements() -> None:
    reason = missing_requirements()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"browser tests are required here ({REQUIRE_ENV}=1) but {reason}")
    pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture(scope="module")
def lab(ui_requirements, tmp_path_factory) -> Iterator[JupyterLab]:
    server = JupyterLab(tmp_path_factory.mktemp("lab"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(ui_requirements):
    """Per test, on purpose: Playwright's sync API keeps its own event loop marked as running in
    this thread while it is open, so it must be closed before pytest-jupyter's autouse loop
    fixtures (set up first, torn down last) run their teardown on the thread's loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Screenshots (not committed): $COFLUX_UI_ARTIFACTS, else under pytest's temporary directory."""
    return artifacts_dir(tmp_path_factory.getbasetemp() / "ui-artifacts")


@pytest.fixture
def page(browser, artifacts, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []  # uncaught exceptions in the page, for the assertions' messages
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            path = artifacts / f"{request.node.name}-failure.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"failure screenshot: {path} (set {ARTIFACTS_ENV} to keep it elsewhere)")
            except Exception as exc:  # the page may be gone
                print(f"no failure screenshot: {exc}")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

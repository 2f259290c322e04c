"""
Fixtures for the browser suite: the real C{twistd txpulse} in a subprocess on
a loopback port, and Debian's headless Chromium driven by Playwright.

Playwright's own browser builds are never downloaded: the tests launch
C{/usr/bin/chromium} through C{executable_path}. C{scripts/install-browser.sh}
installs both the browser and the Python package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.processes import TwistdServer

#: Debian's chromium (override with TXPULSE_CHROMIUM).
CHROMIUM = Path(os.environ.get("TXPULSE_CHROMIUM", "/usr/bin/chromium"))

#: Flags for a quiet, sandbox-less headless browser that talks to nothing but
#: the test server. Playwright gives each launch a fresh temporary profile
#: (its own --user-data-dir), so none is passed here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Upper bound for one wait in the browser, in milliseconds. Everything
#: normally happens within a few hundred.
WAIT_MS = 8000

#: Reconnect quickly in tests: the page reads these from its query string.
TUNING = "?backoff=100&backoffMax=500"


def browser_missing() -> str | None:
    """
    Why the browser tests cannot run here, or L{None} if they can.
    """
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (run scripts/install-browser.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (run scripts/install-browser.sh)"
    return None


def skip_without_browser() -> None:
    """
    At import of a browser test module: skip it (with the reason) when
    Chromium or playwright is missing, except in CI (C{CI} set), where that
    is a failure.
    """
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {missing}", pytrace=False)
        pytest.skip(missing, allow_module_level=True)


def twistd(log: Path, *options: str) -> TwistdServer:
    """
    C{twistd -n txpulse} as the browser tests run it: a 0.3 s heartbeat,
    then C{options}.
    """
    return TwistdServer(log, "--heartbeat", "0.3", *options)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TwistdServer]:
    """
    A L{twistd} server for one test (which may stop and restart it).
    """
    with twistd(tmp_path / "twistd.log") as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """
    A page in a fresh context; fails the test if the page threw an uncaught
    exception.
    """
    context = browser.new_context(viewport={"width": 960, "height": 520})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"

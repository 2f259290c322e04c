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

from ..support.browser import WAIT_MS, browser_missing, checked_page  # noqa: F401  (WAIT_MS: the test modules import it from here)
from ..support.processes import TwistdServer

#: Reconnect quickly in tests: the page reads these from its query string.
TUNING = "?backoff=100&backoffMax=500"


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


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """
    A page in a fresh context; fails the test if the page threw an uncaught
    exception.
    """
    yield from checked_page(browser, viewport={"width": 960, "height": 520})

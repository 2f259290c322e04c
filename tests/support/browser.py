"""
Headless Chromium for the tests that drive a browser (tests/browser, and
the chaos test in tests/deploy): where Debian's chromium is, how it is
launched, and why it cannot be here. The one Playwright session they share
is the C{browser} fixture of tests/conftest.py: Playwright's sync API runs
one event loop per process, so two suites must not start their own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "WAIT_MS", "browser_missing"]

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

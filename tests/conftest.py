"""
Session-wide setup. Subprocesses (C{twistd -n txpulse}, C{txpulse-client},
C{python -c ...}) import txpulse from this working tree's C{src}, like the
tests themselves, not whatever copy C{make install} last put in the
virtualenv: a test always exercises the code beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.browser import CHROMIUM, CHROMIUM_ARGS

_SRC = str(Path(__file__).resolve().parent.parent / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()

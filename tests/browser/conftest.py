"""
Fixtures for the browser suite: the real C{twistd txpulse} in a subprocess on
a loopback port, and Debian's headless Chromium driven by Playwright.

Playwright's own browser builds are never downloaded: the tests launch
C{/usr/bin/chromium} through C{executable_path}. C{scripts/install-browser.sh}
installs both the browser and the Python package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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

#: Seconds allowed for twistd to start accepting connections, or to exit.
SERVER_WAIT = 15.0


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TwistdServer:
    """
    C{twistd -n txpulse} listening on one fixed loopback port, which can be
    stopped and started again on the same port.
    """

    def __init__(self, port: int, log: Path, heartbeat: float = 0.3) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self._log = log
        self._heartbeat = heartbeat
        self._process: subprocess.Popen[bytes] | None = None

    def _twistd(self) -> str:
        beside = Path(sys.executable).with_name("twistd")
        if beside.exists():
            return str(beside)
        found = shutil.which("twistd")
        if found is None:
            pytest.fail("twistd not found beside the interpreter or on PATH")
        return found

    def start(self) -> None:
        assert self._process is None, "already running"
        command = [
            self._twistd(),
            "--pidfile=",
            "-n",
            "txpulse",
            "--listen",
            f"tcp:{self.port}:interface=127.0.0.1",
            "--heartbeat",
            str(self._heartbeat),
        ]
        with self._log.open("ab") as log:
            log.write(f"\n$ {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + SERVER_WAIT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                pytest.fail(f"twistd exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"twistd did not accept connections within {SERVER_WAIT} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """
        SIGTERM, then wait (SIGKILL after L{SERVER_WAIT}); returns the exit status.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        process.terminate()
        try:
            return process.wait(SERVER_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"twistd ignored SIGTERM for {SERVER_WAIT} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TwistdServer]:
    twistd = TwistdServer(free_port(), tmp_path / "twistd.log")
    twistd.start()
    try:
        yield twistd
    finally:
        twistd.stop()


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

"""
Headless Chromium for the tests that drive a browser (tests/browser, and
the chaos test in tests/deploy): where Debian's chromium is, how it is
launched, and why it cannot be here. The one Playwright session they share
is the C{browser} fixture of tests/conftest.py: Playwright's sync API runs
one event loop per process, so two suites must not start their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "WAIT_MS", "browser_missing", "checked_page", "echo_script"]

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


def checked_page(browser: Any, **contextOptions: Any) -> Iterator[Any]:
    """
    For a fixture to C{yield from}: a page in a fresh browser context (made
    with C{contextOptions}, its waits bounded by L{WAIT_MS}), closed after
    the test; the test fails if the page threw an uncaught exception.
    """
    context = browser.new_context(**contextOptions)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


#: See L{echo_script}.
_ECHO_SCRIPT = """async () => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/echo");
    ws.binaryType = "arraybuffer";
    const next = () => new Promise((resolve, reject) => {
        ws.onmessage = (event) => resolve(event.data);
        ws.onclose = (event) => reject(new Error("closed " + event.code));
    });
    await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("the /echo connection failed"));
    });
    const text = TEXT.repeat(REPEAT);
    ws.send(text);
    const textEcho = await next();
    const bytes = new Uint8Array(SIZE).map((_, i) => (i * 7) % 251);
    ws.send(bytes);
    const bytesEcho = new Uint8Array(await next());
    const result = {
        extensions: ws.extensions,
        textOk: textEcho === text,
        bytesOk: bytesEcho.length === bytes.length && bytesEcho.every((b, i) => b === bytes[i]),
    };
CLOSE
    return result;
}"""

_CLOSE = "    ws.close(1000);"

_CLOSE_AND_WAIT = """    const closed = new Promise((resolve) => { ws.onclose = (event) => resolve(event.code); });
    ws.close(1000);
    result.closeCode = await closed;"""


def echo_script(text: str, repeat: int, size: int, *, awaitClose: bool = False) -> str:
    """
    A function for C{page.evaluate}: it opens a WebSocket to the page's
    server's C{/echo}, sends C{text} repeated C{repeat} times and waits for
    its echo, then a binary message of C{size} bytes and its echo, closes
    with 1000, and returns C{{extensions, textOk, bytesOk}}: what was
    negotiated and whether each echo came back unchanged. With
    C{awaitClose}, it waits for the closing handshake to finish and adds
    the close code the browser saw (C{closeCode}).
    """
    return (
        _ECHO_SCRIPT.replace("REPEAT", str(repeat))
        .replace("SIZE", str(size))
        .replace("CLOSE", _CLOSE_AND_WAIT if awaitClose else _CLOSE)
        .replace("TEXT", json.dumps(text))  # last: the text is not searched
    )

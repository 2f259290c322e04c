"""
WebSockets over HTTP/2 (RFC 8441) with a real browser: C{twistd -n txpulse}
listening on TLS (the test CA's certificate for C{localhost}) offers C{h2}
in ALPN and C{SETTINGS_ENABLE_CONNECT_PROTOCOL}; Chromium then opens the
page's WebSockets as extended CONNECT streams of the page's own HTTP/2
connection. That the WebSocket ran over HTTP/2 is shown by the server (its
C{/metrics} counter C{txpulse_http2_websockets_total} and its log line
C{WebSocket open: ... (HTTP/2)}), not assumed; with C{--no-http2} the same
page runs over HTTP/1.1 and the counter stays at 0. Both with and without
permessage-deflate (C{--deflate}).

Chromium does not trust the test CA: the context ignores certificate errors
(Playwright's C{ignore_https_errors}, which keeps HTTP/2 and its
connection pooling).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.browser import checked_page, echo_script
from ..support.net import free_port
from ..support.pki import PKI, make_pki
from ..support.processes import TwistdServer
from .conftest import TUNING, WAIT_MS, skip_without_browser

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.timeout(90)

#: Opens a WebSocket to /echo from the page, echoes a compressible text and
#: a binary message, and reports what came back and how it closed.
ECHO_SCRIPT = echo_script("over HTTP/2 ", 8000, 200000, awaitClose=True)


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    return make_pki(tmp_path / "pki", dnsNames=["localhost"])


def tls_server(tmp_path: Path, pki: PKI, *options: str) -> tuple[TwistdServer, str]:
    """
    C{twistd -n txpulse} with an ssl listener too; its C{https://} root.
    """
    port = free_port()
    listen = f"ssl:{port}:interface=127.0.0.1:privateKey={pki.keyFile}:certKey={pki.certFile}"
    server = TwistdServer(tmp_path / "twistd.log", "--heartbeat", "0.3", "--listen", listen, *options, morePorts=[port])
    return server, f"https://localhost:{port}/"


@pytest.fixture
def tls_page(browser: Any) -> Iterator[Any]:
    """
    A page in a fresh context that accepts the test CA's certificate.
    """
    yield from checked_page(browser, ignore_https_errors=True)


def http2_websockets(page: Any, root: str) -> dict[str, float]:
    """
    The server's C{txpulse_http2_websockets_total}, by path (fetched by the
    page, over its own connection).
    """
    text = page.request.get(root + "metrics").text()
    return {
        match[1]: float(match[2])
        for match in re.finditer(r'^txpulse_http2_websockets_total\{path="([^"]+)"\} (\S+)$', text, re.M)
    }


@pytest.mark.parametrize("deflate", [False, True], ids=["no-deflate", "deflate"])
def test_page_websockets_run_over_http2(tmp_path: Path, pki: PKI, tls_page: Any, deflate: bool) -> None:
    """
    Over https://, the heartbeat page's WebSocket and an echo WebSocket the
    page opens run over HTTP/2: the server counts them as extended CONNECT
    streams and logs them as such; heartbeats, a reply, a 32 KiB text and a
    200 KB binary echo, and a clean 1000 close all work, compressed or not.
    """
    server, root = tls_server(tmp_path, pki, *(["--deflate"] if deflate else []))
    with server:
        page = tls_page
        page.goto(root + TUNING)
        expect(page.locator("#status")).to_have_attribute("data-state", "open")
        expect(page.locator("#log li.msg").nth(2)).to_be_attached()
        message = f"hello {uuid.uuid4().hex[:8]}"
        page.fill("#message", message)
        page.click("#send")
        expect(page.locator("#reply")).to_have_text(f"reply to {message}")
        result = page.evaluate(ECHO_SCRIPT)
        assert result["textOk"] and result["bytesOk"], result
        assert result["closeCode"] == 1000
        assert ("permessage-deflate" in result["extensions"]) == deflate, result
        counts = http2_websockets(page, root)
        assert counts.get("/ws") == 1.0 and counts.get("/echo") == 1.0, counts
        log = server.output()
        assert re.search(r"WebSocket open: \S+ /ws \(HTTP/2\)", log), server.log_tail()
        assert re.search(r"WebSocket closed: \S+ /echo code=1000", log), server.log_tail()


def test_no_http2_keeps_browsers_on_http11(tmp_path: Path, pki: PKI, tls_page: Any) -> None:
    """
    With C{--no-http2} the same page runs its WebSockets over HTTP/1.1
    upgrades: the counter stays at 0.
    """
    server, root = tls_server(tmp_path, pki, "--no-http2")
    with server:
        page = tls_page
        page.goto(root + TUNING)
        expect(page.locator("#status")).to_have_attribute("data-state", "open")
        result = page.evaluate(ECHO_SCRIPT)
        assert result["textOk"] and result["bytesOk"], result
        counts = http2_websockets(page, root)
        assert counts.get("/ws") == 0.0 and counts.get("/echo") == 0.0, counts
        assert "(HTTP/2)" not in server.output()


def test_chat_between_two_browsers_over_http2(tmp_path: Path, pki: PKI, browser: Any) -> None:
    """
    The chat page (C{/chat}) over https://: two users in their own browser
    contexts join a room and talk; both WebSockets were HTTP/2 streams.
    """
    server, root = tls_server(tmp_path, pki)
    contexts = [browser.new_context(ignore_https_errors=True) for _ in range(2)]
    try:
        with server:
            room = f"room-{uuid.uuid4().hex[:8]}"
            pages = []
            for context, name in zip(contexts, ("alice", "bob"), strict=True):
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(root + "chat.html" + TUNING)
                page.fill("#name", name)
                page.fill("#room", room)
                page.click("#join")
                expect(page.locator("#room-card")).to_be_visible()
                pages.append(page)
            alice, bob = pages
            expect(alice.locator("#messages li.notice .text", has_text="bob joined")).to_have_count(1)
            expect(alice.locator("#send")).to_be_enabled()
            alice.fill("#text", "hello over h2")
            alice.click("#send")
            expect(bob.locator("#messages li.message .text", has_text="hello over h2")).to_have_count(1)
            assert http2_websockets(alice, root).get("/chat") == 2.0
    finally:
        for context in contexts:
            context.close()

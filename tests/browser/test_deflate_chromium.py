"""
permessage-deflate with a real browser: Chromium offers it on every
WebSocket; C{twistd -n txpulse} accepts it with C{--deflate} and declines it
by default. The plugin's page must work either way.

What the server answered is read from Chromium's DevTools protocol (the
handshake response headers of each WebSocket, C{Network.webSocketHandshake
ResponseReceived}) and from the page (C{WebSocket.extensions}).

Skipped like the rest of the browser suite when Chromium or playwright is
missing (a failure in CI).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.browser import echo_script
from ..support.processes import TwistdServer
from .conftest import TUNING, skip_without_browser, twistd

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.timeout(60)

#: Opens a WebSocket to /echo from the page, echoes a compressible text and
#: a binary message, and reports what was negotiated and what came back.
ECHO_SCRIPT = echo_script("permessage-deflate from Chromium ", 2000, 70000)


@pytest.fixture(params=[True, False], ids=["deflate", "no-deflate"])
def deflate(request: pytest.FixtureRequest) -> bool:
    """
    Whether the server runs with C{--deflate}.
    """
    on: bool = request.param
    return on


@pytest.fixture
def flagged_server(deflate: bool, tmp_path: Path) -> Iterator[TwistdServer]:
    """
    C{twistd -n txpulse}, with C{--deflate} or with the default (off).
    """
    with twistd(tmp_path / "twistd.log", *(["--deflate"] if deflate else [])) as server:
        yield server


def record_handshakes(page: Any) -> dict[str, dict[str, str]]:
    """
    Record, through the DevTools protocol, the request and response headers
    (lowercased names) of every WebSocket handshake the page makes, by URL
    path: C{{"/ws": {"request:sec-websocket-extensions": ...,
    "response:sec-websocket-extensions": ...}}}.
    """
    session = page.context.new_cdp_session(page)
    paths: dict[str, str] = {}
    handshakes: dict[str, dict[str, str]] = {}

    def created(event: dict[str, Any]) -> None:
        paths[event["requestId"]] = re.sub(r"^wss?://[^/]+", "", event["url"]).split("?")[0]

    def headers(kind: str, event: dict[str, Any]) -> None:
        path = paths.get(event["requestId"], "?")
        record = handshakes.setdefault(path, {})
        for name, value in event[kind]["headers"].items():
            record[f"{kind}:{name.lower()}"] = value

    session.on("Network.webSocketCreated", created)
    session.on("Network.webSocketWillSendHandshakeRequest", lambda event: headers("request", event))
    session.on("Network.webSocketHandshakeResponseReceived", lambda event: headers("response", event))
    session.send("Network.enable")
    return handshakes


def test_page_works_with_and_without_deflate(flagged_server: TwistdServer, page: Any, deflate: bool) -> None:
    """
    The plugin's page shows heartbeats and answers replies whether the
    server accepts Chromium's permessage-deflate offer (C{--deflate}) or
    declines it (the default); the server's 101 carries the extension
    exactly when it is on, and an /echo connection from the page echoes a
    64 KiB text and a 70 kB binary message either way.
    """
    handshakes = record_handshakes(page)
    page.goto(flagged_server.url + TUNING)
    expect(page.locator("#status")).to_have_attribute("data-state", "open")
    expect(page.locator("#log li.msg").nth(1)).to_be_attached()  # (the page's CSP forbids wait_for_function)
    message = f"hello {uuid.uuid4().hex[:8]}"
    page.fill("#message", message)
    page.click("#send")
    expect(page.locator("#reply")).to_have_text(f"reply to {message}")

    result = page.evaluate(ECHO_SCRIPT)
    assert result["textOk"] and result["bytesOk"], result
    if deflate:
        assert result["extensions"].startswith("permessage-deflate"), result
    else:
        assert result["extensions"] == "", result

    # What the server answered, as Chromium saw it on the wire.
    for path in ("/ws", "/echo"):
        record = handshakes.get(path, {})
        assert "permessage-deflate" in record.get("request:sec-websocket-extensions", ""), (path, handshakes)
        answer = record.get("response:sec-websocket-extensions")
        if deflate:
            # The plugin's bounded windows (12 bits both ways), which Chromium honours.
            expected = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
            assert answer == expected, (path, handshakes)
        else:
            assert answer is None, (path, handshakes)

"""
Hostile opening handshakes against a live L{WebSocketSite}: slow, huge,
over-long or malformed upgrade requests get the right HTTP status (or the
first-request deadline's 408), leave a log line naming the peer, and do not
disturb a well-behaved client connected throughout.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from ..support.logs import LogLines
from ..support.rawsocket import RawSocket, client_frame, dribble
from ..support.requests import request_bytes
from ..support.waits import within
from .conftest import STATIC_PAGE, HardenedServer, peer_of, undisturbed

#: Twisted's C{HTTPChannel.maxHeaders}: more header lines than this get 400.
MAX_HEADERS = 500
#: Twisted's line and total header limits (C{LineReceiver.MAX_LENGTH},
#: C{HTTPChannel.totalHeadersSize}).
MAX_HEADER_BYTES = 16384


async def refused(raw: Any, server: HardenedServer, request: bytes) -> tuple[RawSocket, str, Any]:
    """
    Send C{request} on a fresh connection and read the answer (not a 101).

    @return: the socket, its name in the server's logs, and the response.
    """
    sock = await raw.connect(server.port)
    peer = peer_of(sock)
    await sock.send(request)
    try:
        response = await sock.read_response()
    except ConnectionError as error:
        raise AssertionError(f"the server closed the connection without an HTTP answer ({error})") from None
    assert response.status != 101, response.raw
    assert "sec-websocket-accept" not in response.headers
    return sock, peer, response


async def closed(sock: RawSocket) -> None:
    """
    The server closes the connection (EOF, or a reset when it closed with
    our bytes unread) and sends nothing more.
    """
    assert await sock.read_until_eof() == b""


# -- slow headers -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_slow_headers_get_408_at_the_request_deadline(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    A slowloris client sending one header byte every 0.1 s (each byte would
    reset Site's idle timer) is answered 408 and disconnected once
    C{requestTimeout} (0.5 s) has passed since it connected, and the server
    logs it.
    """
    server = hardened(requestTimeout=0.5)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        sent, elapsed = await within(deferToThread(dribble, sock, request_bytes(server.port), 0.1))
        response = await sock.read_response()
        assert response.status == 408
        assert response.headers["connection"] == "close"
        await closed(sock)
        assert sent >= 3  # it did keep sending ...
        assert 0.4 <= elapsed < 1.5  # ... and the deadline still held
        await logs.expect(peer, "no complete request within 0.5s (408)")


# -- oversized and over-numerous headers --------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_header_line_over_16kib_gets_400(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    A single header line longer than Twisted's 16 KiB line limit is
    answered 400 and the connection closed, with a log line naming the
    peer.
    """
    server = hardened()
    async with undisturbed(server):
        request = request_bytes(server.port, extra=[("X-Huge", "a" * (MAX_HEADER_BYTES + 1))])
        sock, peer, response = await refused(raw, server, request)
        assert response.status == 400
        await closed(sock)
        await logs.expect(peer, "400")


@pytest_twisted.ensureDeferred
async def test_headers_over_16kib_in_total_get_400(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    Headers of reasonable size each but more than 16 KiB together are
    answered 400 and the connection closed, with a log line naming the
    peer.
    """
    server = hardened()
    async with undisturbed(server):
        extra = [(f"X-Filler-{i}", "b" * 1000) for i in range(17)]
        sock, peer, response = await refused(raw, server, request_bytes(server.port, extra=extra))
        assert response.status == 400
        await closed(sock)
        await logs.expect(peer, "400")


@pytest_twisted.ensureDeferred
async def test_large_headers_within_the_limits_are_accepted(hardened: Any, raw: Any) -> None:
    """
    The limits are limits, not a ban on big requests: an upgrade with
    12 KiB of headers (e.g. large cookies) still opens, and echoes.
    """
    server = hardened()
    async with undisturbed(server):
        extra = [(f"Cookie-{i}", "c" * 1000) for i in range(12)]
        sock = await raw.upgrade(server.port, extra=extra)
        await sock.send(client_frame(0x1, b"still fine"))
        echo = await sock.read_message()
        assert echo is not None and echo.payload == "still fine"


@pytest.mark.parametrize(
    ("headerCount", "status"),
    [pytest.param(MAX_HEADERS, 101, id="at-the-limit"), pytest.param(MAX_HEADERS + 1, 400, id="one-over")],
)
@pytest_twisted.ensureDeferred
async def test_too_many_headers_get_400(hardened: Any, raw: Any, logs: LogLines, headerCount: int, status: int) -> None:
    """
    An upgrade request with Twisted's C{maxHeaders} (500) header lines is
    accepted; one more line is answered 400, the connection closed and the
    peer logged.
    """
    server = hardened()
    async with undisturbed(server):
        base = 5  # Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        extra = [(f"X-H{i}", "v") for i in range(headerCount - base)]
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        await sock.send(request_bytes(server.port, key=key, extra=extra))
        response = await sock.read_response()
        assert response.status == status, response.raw
        if status == 400:
            await closed(sock)
            await logs.expect(peer, "400")


# -- invalid upgrades ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keyHeaders",
    [
        pytest.param([], id="missing"),
        pytest.param(["not base64 at all!!!!!!!"], id="not-base64"),
        pytest.param([base64.b64encode(b"x" * 15).decode()], id="15-bytes"),
        pytest.param([base64.b64encode(b"x" * 17).decode()], id="17-bytes"),
        pytest.param([""], id="empty"),
        pytest.param(["dGhlIHNhbXBsZSBub25jZQ==", "AQIDBAUGBwgJCgsMDQ4PEA=="], id="two-keys"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_or_missing_key_gets_400(hardened: Any, raw: Any, logs: LogLines, keyHeaders: list[str]) -> None:
    """
    A missing, empty, duplicated or malformed C{Sec-WebSocket-Key} (RFC 6455
    §4.2.1: base64 of 16 bytes, exactly once) is answered 400, with a log
    line naming the peer.
    """
    server = hardened()
    async with undisturbed(server):
        extra = [("Sec-WebSocket-Key", key) for key in keyHeaders]
        sock, peer, response = await refused(raw, server, request_bytes(server.port, key=None, extra=extra))
        assert response.status == 400
        assert b"Sec-WebSocket-Key" in response.body
        await logs.expect("handshake refused", peer, "400")


@pytest.mark.parametrize("wsVersion", ["8", "14", "13, 8", None], ids=["8", "14", "list", "missing"])
@pytest_twisted.ensureDeferred
async def test_wrong_version_gets_426_naming_version_13(
    hardened: Any, raw: Any, logs: LogLines, wsVersion: str | None
) -> None:
    """
    Any C{Sec-WebSocket-Version} but 13 (or none) is answered 426 with
    C{Sec-WebSocket-Version: 13} (RFC 6455 §4.4), with a log line naming
    the peer.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, response = await refused(raw, server, request_bytes(server.port, wsVersion=wsVersion))
        assert response.status == 426
        assert response.headers["sec-websocket-version"] == "13"
        await logs.expect("handshake refused", peer, "426")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
@pytest_twisted.ensureDeferred
async def test_non_get_upgrade_gets_405(hardened: Any, raw: Any, logs: LogLines, method: str) -> None:
    """
    An upgrade request with any method but GET (RFC 6455 §4.1) is answered
    405 with C{Allow: GET}, with a log line naming the peer.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, response = await refused(raw, server, request_bytes(server.port, method=method))
        assert response.status == 405
        assert response.headers["allow"] == "GET"
        await logs.expect("handshake refused", peer, "405")


@pytest_twisted.ensureDeferred
async def test_http_1_0_upgrade_gets_400(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    An otherwise valid upgrade over HTTP/1.0 (RFC 6455 §4.1 requires 1.1)
    is answered 400 and the connection closed (HTTP/1.0 is not
    persistent), with a log line naming the peer.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, response = await refused(raw, server, request_bytes(server.port, version="HTTP/1.0"))
        assert response.status == 400
        await closed(sock)
        await logs.expect("handshake refused", peer, "400")


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [pytest.param("/static", 200, STATIC_PAGE, id="static-page"), pytest.param("/nowhere", 404, None, id="missing")],
)
@pytest_twisted.ensureDeferred
async def test_upgrade_on_a_plain_path_is_not_upgraded(
    hardened: Any, raw: Any, logs: LogLines, path: str, status: int, body: bytes | None
) -> None:
    """
    C{Upgrade: websocket} on a path that is not a WebSocket resource gets
    the ordinary answer (the page, or 404), never a 101; the connection
    still speaks HTTP afterwards, and the access log records the request.
    """
    server = hardened()
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        for _ in range(2):  # the same connection, still HTTP after the first answer
            await sock.send(request_bytes(server.port, path))
            response = await sock.read_response()
            assert response.status == status, response.raw
            assert "upgrade" not in response.headers
            if body is not None:
                assert response.body == body
        await logs.expect(f'"GET {path} HTTP/1.1" {status}')

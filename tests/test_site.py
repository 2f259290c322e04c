"""
Tests for L{txpulse.site.WebSocketSite}: the first-request deadline that
stops slow-header clients.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.static import Data

from txpulse import WebSocketResource
from txpulse.apps import EchoFactory
from txpulse.core.frames import Opcode
from txpulse.site import WebSocketSite

from .helpers import CountingTransport, captured_logs, client_frame, server_frames
from .test_resource import upgrade_request


def connection(requestTimeout: float = 10.0) -> tuple[object, CountingTransport, Clock]:
    clock = Clock()
    root = Resource()
    root.putChild(b"ws", WebSocketResource(EchoFactory(), clock=clock, pingInterval=None))
    root.putChild(b"page", Data(b"hello", "text/plain"))
    site = WebSocketSite(root, requestTimeout=requestTimeout, reactor=clock)
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
    transport = CountingTransport()
    protocol.makeConnection(transport)
    return protocol, transport, clock


def test_slow_headers_get_408_at_the_deadline() -> None:
    """
    A client dribbling header bytes (each resetting Site's idle timer) is
    answered 408 and closed when the first-request deadline passes, with a
    log line.
    """
    protocol, transport, clock = connection(10)
    request = upgrade_request()
    for i in range(9):
        protocol.dataReceived(request[i : i + 1])  # type: ignore[attr-defined]
        clock.advance(1)
    assert transport.value() == b""
    with captured_logs() as logs:
        clock.advance(1)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout")
    assert transport.disconnecting
    assert any("408" in line for line in logs)


def test_prompt_request_is_not_affected() -> None:
    """
    A request completed in time is served, and the deadline is disarmed.
    """
    protocol, transport, clock = connection(10)
    protocol.dataReceived(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[attr-defined]
    assert b"hello" in transport.value()
    clock.advance(30)
    assert b"408" not in transport.value()


def test_websocket_outlives_the_request_deadline() -> None:
    """
    An upgraded connection is not touched by the deadline (nor by
    Site.timeOut).
    """
    protocol, transport, clock = connection(10)
    protocol.dataReceived(upgrade_request())  # type: ignore[attr-defined]
    clock.advance(3600)
    protocol.dataReceived(client_frame(Opcode.TEXT, b"still here"))  # type: ignore[attr-defined]
    _, _, rest = transport.value().partition(b"\r\n\r\n")
    assert [f.payload for f in server_frames(rest)] == ["still here"]
    assert not transport.disconnecting


def test_no_deadline_when_disabled() -> None:
    """
    C{requestTimeout=0} disables the deadline.
    """
    protocol, transport, clock = connection(0)
    protocol.dataReceived(b"GET")  # type: ignore[attr-defined]
    clock.advance(30)
    assert transport.value() == b""

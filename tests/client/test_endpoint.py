"""
Tests for L{txpulse.client} in memory: URL parsing and the client's
handshake protocol on a L{StringTransport} with a fake clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import readBody

from txpulse.client import HandshakeTimeout, InvalidURL, WebSocketClientEndpoint, parseURL
from txpulse.client.endpoint import ConnectionRejected
from txpulse.core.connection import Connection, Side
from txpulse.core.deflate import DeflateSettings
from txpulse.core.exceptions import NegotiationError
from txpulse.core.frames import Opcode, encode_frame
from txpulse.core.handshake import accept_key, validate_request
from txpulse.settings import ConnectionSettings

from ..support.apps import RecordingApp
from ..support.transports import CountingTransport
from ..support.waits import failureOf


class Factory:
    def __init__(self) -> None:
        self.apps: list[RecordingApp] = []

    def buildProtocol(self, url: str) -> RecordingApp:
        app = RecordingApp()
        self.apps.append(app)
        return app


def start(
    url: str = "ws://example.com:8080/chat?x=1", **options: Any
) -> tuple[Any, CountingTransport, MemoryReactorClock, Factory, str]:
    """
    A client handshake protocol connected to a string transport; returns it
    with the key it sent.
    """
    reactor = MemoryReactorClock()
    endpoint = WebSocketClientEndpoint.new(reactor, url, **options)
    factory = Factory()
    protocol = endpoint.protocolFactory(factory).buildProtocol(None)
    transport = CountingTransport()
    protocol.makeConnection(transport)
    head = transport.value().decode()
    lines = head.split("\r\n\r\n")[0].split("\r\n")
    request = validate_request("GET", "HTTP/1.1", [tuple(line.split(": ", 1)) for line in lines[1:]])  # type: ignore[misc]
    return protocol, transport, reactor, factory, request.key


def answer(key: str, *extra: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("url", "secure", "host", "port", "resource", "hostHeader"),
    [
        ("ws://example.com", False, "example.com", 80, "/", "example.com"),
        ("wss://example.com/a/b?c=d", True, "example.com", 443, "/a/b?c=d", "example.com"),
        ("ws://127.0.0.1:8080/ws", False, "127.0.0.1", 8080, "/ws", "127.0.0.1:8080"),
        ("WS://Example.com:443/", False, "example.com", 443, "/", "example.com:443"),
        ("ws://[::1]:9000/x", False, "::1", 9000, "/x", "[::1]:9000"),
        ("http://localhost:80/connect", False, "localhost", 80, "/connect", "localhost"),
        ("HTTPS://example.com/a?b", True, "example.com", 443, "/a?b", "example.com"),
        ("https://example.com:8443/", True, "example.com", 8443, "/", "example.com:8443"),
    ],
)
def test_parse_url(url: str, secure: bool, host: str, port: int, resource: str, hostHeader: str) -> None:
    """
    ws:// and wss:// URLs give the host, the port (80/443 by default), the
    request target and the Host header; http:// and https:// are taken as
    ws:// and wss:// (as Twisted's endpoint and browsers take them).
    """
    target = parseURL(url)
    assert (target.secure, target.host.lower(), target.port, target.resource, target.hostHeader.lower()) == (
        secure,
        host,
        port,
        resource,
        hostHeader,
    )


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com", "ws://", "ws://example.com/#frag", "ws://example.com:99999/"]
)
def test_invalid_urls(url: str) -> None:
    """
    Other schemes, missing hosts, fragments and bad ports are refused.
    """
    with pytest.raises(InvalidURL):
        parseURL(url)


def test_request_is_sent_on_connect() -> None:
    """
    The upgrade request goes out at once, with the target, the Host header,
    the offered subprotocols, the origin and the extra headers.
    """
    protocol, transport, reactor, factory, key = start(
        subprotocols=["v2", "v1"], origin="https://me.example", headers={"Authorization": "Bearer t"}
    )
    request = transport.value().decode()
    assert request.startswith("GET /chat?x=1 HTTP/1.1\r\n")
    assert "Host: example.com:8080\r\n" in request
    assert "Sec-WebSocket-Protocol: v2, v1\r\n" in request
    assert "Origin: https://me.example\r\n" in request
    assert "Authorization: Bearer t\r\n" in request


def test_101_opens_the_connection_and_keeps_following_bytes() -> None:
    """
    A correct 101 opens the WebSocket; a frame in the same read as the 101
    is delivered; what the client sends is masked.
    """
    protocol, transport, reactor, factory, key = start(subprotocols=["v1"])
    opened = protocol.whenOpened()
    transport.clear()
    protocol.dataReceived(answer(key, "Sec-WebSocket-Protocol: v1") + encode_frame(Opcode.TEXT, b"welcome"))
    app = factory.apps[0]
    assert opened.result is app
    assert app.transport.subprotocol == "v1"
    assert app.events[-1] == ("text", "welcome")
    app.transport.sendTextMessage("hi")
    sent = transport.value()
    assert sent[1] & 0x80, "client frames are masked"
    server = Connection(Side.SERVER)
    server.receive_data(sent)
    assert server.events_received() == ["hi"]


def test_response_split_anywhere_is_parsed() -> None:
    """
    The 101 may arrive in pieces.
    """
    protocol, transport, reactor, factory, key = start()
    data = answer(key)
    for i in range(len(data)):
        protocol.dataReceived(data[i : i + 1])
    assert protocol.whenOpened().result is factory.apps[0]


def test_refusal_carries_status_headers_and_body() -> None:
    """
    A non-101 answer fails with L{ConnectionRejected}: status, headers, the
    body (by Content-Length) and a readable Twisted C{Response}.
    """
    protocol, transport, reactor, factory, key = start()
    opened = protocol.whenOpened()
    protocol.dataReceived(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\nWWW-Authenticate: Bearer\r\n\r\nbad token"
    )
    failure = failureOf(opened)
    assert isinstance(failure, Failure) and isinstance(failure.value, ConnectionRejected)
    rejected = failure.value
    assert rejected.statusCode == 401 and rejected.body == b"bad token"
    assert ("WWW-Authenticate", "Bearer") in rejected.headers
    assert rejected.response is not None and rejected.response.code == 401
    body = readBody(rejected.response)
    assert body.result == b"bad token"
    assert transport.disconnecting


def test_refusal_body_until_connection_closes() -> None:
    """
    Without Content-Length, the body is whatever arrives before the
    connection closes.
    """
    protocol, transport, reactor, factory, key = start()
    opened = protocol.whenOpened()
    protocol.dataReceived(b"HTTP/1.1 404 Not Found\r\n\r\nno such")
    protocol.dataReceived(b" path")
    protocol.connectionLost(Failure(ConnectionDone()))
    rejected = failureOf(opened).value
    assert rejected.statusCode == 404
    assert rejected.body == b"no such path"


@pytest.mark.parametrize(
    "bad",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
        b"not http at all\r\n\r\n",
    ],
)
def test_invalid_101_fails_the_handshake(bad: bytes) -> None:
    """
    A 101 with the wrong accept key, or garbage, fails with
    L{NegotiationError} and the connection is aborted.
    """
    protocol, transport, reactor, factory, key = start()
    opened = protocol.whenOpened()
    protocol.dataReceived(bad)
    assert isinstance(failureOf(opened).value, NegotiationError)
    assert transport.aborted


def test_unoffered_subprotocol_fails_the_handshake() -> None:
    """
    RFC 6455 §4.1: a subprotocol the client did not offer fails.
    """
    protocol, transport, reactor, factory, key = start(subprotocols=["v1"])
    opened = protocol.whenOpened()
    protocol.dataReceived(answer(key, "Sec-WebSocket-Protocol: v9"))
    assert isinstance(failureOf(opened).value, NegotiationError)


def test_handshake_timeout() -> None:
    """
    No answer within C{handshakeTimeout}: L{HandshakeTimeout} and abort.
    """
    protocol, transport, reactor, factory, key = start(handshakeTimeout=5)
    opened = protocol.whenOpened()
    reactor.advance(4.9)
    assert not opened.called
    reactor.advance(0.1)
    assert isinstance(failureOf(opened).value, HandshakeTimeout)
    assert transport.aborted


def test_connection_lost_before_answer() -> None:
    """
    The connection dropping mid-handshake fails with the transport's reason.
    """
    protocol, transport, reactor, factory, key = start()
    opened = protocol.whenOpened()
    protocol.connectionLost(Failure(ConnectionLost()))
    assert failureOf(opened).check(ConnectionLost)
    assert reactor.getDelayedCalls() == []


def test_client_keepalive_pings_a_silent_server() -> None:
    """
    With C{pingInterval}, a silent server is pinged and dropped (1011)
    when nothing comes back within C{pingTimeout}.
    """
    protocol, transport, reactor, factory, key = start(pingInterval=10, pingTimeout=5)
    protocol.dataReceived(answer(key))
    transport.clear()
    reactor.advance(10)
    server = Connection(Side.SERVER)
    server.receive_data(transport.value())
    assert [type(e).__name__ for e in server.events_received()] == ["Ping"]
    reactor.advance(5)
    assert transport.disconnecting
    app = factory.apps[0]
    protocol.connectionLost(Failure(ConnectionDone()))
    assert app.reason.value.codeSent == 1011


def test_server_close_is_echoed_and_client_waits_for_tcp() -> None:
    """
    The client echoes the server's close and leaves closing TCP to the
    server, within C{closeTimeout}.
    """
    protocol, transport, reactor, factory, key = start(closeTimeout=3)
    protocol.dataReceived(answer(key))
    transport.clear()
    protocol.dataReceived(encode_frame(Opcode.CLOSE, b"\x03\xe9bye"))
    server = Connection(Side.SERVER)
    server.receive_data(transport.value())
    assert server.close_received is not None and server.close_received.code == 1001
    assert not transport.disconnecting
    reactor.advance(3)
    assert transport.aborted


def test_response_head_too_large_is_refused() -> None:
    """
    A server sending an endless response head cannot make the client buffer
    without bound.
    """
    protocol, transport, reactor, factory, key = start()
    opened = protocol.whenOpened()
    protocol.dataReceived(b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 20_000)
    assert isinstance(failureOf(opened).value, NegotiationError)


def test_client_idle_timeout_closes_with_1001() -> None:
    """
    With C{idleTimeout} (new on the client), a server that sends no message
    for that long gets close 1001; a message restarts the count.
    """
    protocol, transport, reactor, factory, key = start(idleTimeout=30)
    protocol.dataReceived(answer(key))
    reactor.advance(20)
    protocol.dataReceived(encode_frame(Opcode.TEXT, b"still here"))
    transport.clear()
    reactor.advance(20)
    assert transport.value() == b""
    reactor.advance(10)
    server = Connection(Side.SERVER)
    server.receive_data(transport.value())
    assert server.close_received is not None and server.close_received.code == 1001


def test_client_max_frame_size_closes_with_1009() -> None:
    """
    With C{maxFrameSize} (new on the client), a frame larger than it closes
    the connection with 1009 even when the message limit would allow it.
    """
    protocol, transport, reactor, factory, key = start(maxFrameSize=16, maxMessageSize=1024)
    protocol.dataReceived(answer(key))
    transport.clear()
    protocol.dataReceived(encode_frame(Opcode.TEXT, b"x" * 17))
    server = Connection(Side.SERVER)
    server.receive_data(transport.value())
    assert server.close_received is not None and server.close_received.code == 1009
    assert not any(event[0] == "text" for event in factory.apps[0].events)


def test_endpoint_takes_a_settings_object() -> None:
    """
    C{new(settings=...)} uses a L{ConnectionSettings}; keyword arguments
    override it; without either the client's defaults hold (no keepalive).
    """
    reactor = MemoryReactorClock()
    url = "ws://example.com/"
    assert WebSocketClientEndpoint.new(reactor, url).settings == ConnectionSettings.defaults(Side.CLIENT)
    shared = ConnectionSettings(pingInterval=5.0, maxFrameSize=4096, subprotocols=["v1"])
    endpoint = WebSocketClientEndpoint.new(reactor, url, settings=shared, closeTimeout=2)
    assert endpoint.settings == shared.override(closeTimeout=2.0)
    assert endpoint.subprotocols == ("v1",)
    assert endpoint.wireOptions.pingInterval == 5.0 and endpoint.wireOptions.closeTimeout == 2.0
    assert WebSocketClientEndpoint.new(reactor, url, compression=True).compression == DeflateSettings()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pingInterval": -3}, "pingInterval must not be negative: -3"),
        ({"handshakeTimeout": 0}, "handshakeTimeout must be positive: 0"),
        ({"settings": ConnectionSettings(allowedOrigins=["*"])}, "allowedOrigins is not a client setting"),
    ],
)
def test_endpoint_refuses_bad_settings(options: dict[str, Any], message: str) -> None:
    """
    A bad setting, or one only a server uses, is a L{ValueError} naming it,
    raised by C{new()} before any I/O.
    """
    with pytest.raises(ValueError) as raised:
        WebSocketClientEndpoint.new(MemoryReactorClock(), "ws://example.com/", **options)
    assert str(raised.value).startswith(message)

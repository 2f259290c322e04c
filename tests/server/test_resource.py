"""
Tests for L{txpulse.server.resource.WebSocketResource} in memory: a real
C{twisted.web} L{Site} on a L{StringTransport}, fed raw HTTP and frames;
where a well-behaved client's view is enough, through the public harness
(L{txpulse.testing}, on a L{WebSocketSite}).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from txpulse import AssemblyBudget, WebSocketResource
from txpulse.core.exceptions import ConnectionClosed, HandshakeError
from txpulse.core.frames import Opcode
from txpulse.core.handshake import accept_key
from txpulse.demos.apps import EchoFactory
from txpulse.server.site import WebSocketSite
from txpulse.settings import ConnectionSettings
from txpulse.testing import connectFactory

from ..support.apps import RecordingApp
from ..support.frames import client_frame, server_frames
from ..support.logs import AccessLog, captured_logs
from ..support.requests import KEY, upgrade_request
from ..support.transports import CountingTransport


class Server:
    """
    A Site with C{resource} at C{/ws}, on an in-memory transport.
    """

    def __init__(self, resource: Resource, clock: Clock) -> None:
        root = Resource()
        root.putChild(b"ws", resource)
        self.site = Site(root, reactor=clock)
        self.clock = clock
        self.channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        self.transport = CountingTransport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def response(self) -> tuple[bytes, bytes]:
        """
        Split what was written into the HTTP head and the bytes after it.
        """
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        return head, rest


class AppFactory:
    def __init__(self, app: Any = None) -> None:
        self.apps: list[Any] = []
        self.app = app

    def buildProtocol(self, request: Any) -> Any:
        app = self.app if self.app is not None else RecordingApp(echo=True)
        app.request = request
        self.apps.append(app)
        return app


def make_server(factory: Any = None, **options: Any) -> tuple[Server, Any]:
    clock = Clock()
    factory = factory if factory is not None else AppFactory()
    options.setdefault("clock", clock)
    return Server(WebSocketResource(factory, **options), clock), factory


def test_upgrade_answers_101_with_accept_key() -> None:
    """
    A valid upgrade gets C{101 Switching Protocols} and the right
    C{Sec-WebSocket-Accept}.
    """
    server, factory = make_server()
    server.send(upgrade_request())
    head, rest = server.response()
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b"Sec-WebSocket-Accept: " + accept_key(KEY).encode() in head
    assert b"Upgrade: websocket" in head
    assert rest == b""
    assert factory.apps[0].events == [("started", None), ("finished", None)]


def test_frames_split_at_odd_offsets_are_reassembled() -> None:
    """
    After the upgrade, frames arriving in arbitrary pieces are echoed.
    """
    server, factory = make_server()
    server.send(upgrade_request())
    stream = (
        client_frame(Opcode.TEXT, b"hello")
        + client_frame(Opcode.BINARY, b"\x00" * 300)
        + client_frame(Opcode.TEXT, "€".encode())
    )
    for start in range(0, len(stream), 7):
        server.send(stream[start : start + 7])
    _, rest = server.response()
    assert [f.payload for f in server_frames(rest)] == ["hello", b"\x00" * 300, "€"]


def test_bytes_in_the_same_read_as_the_upgrade_are_not_lost() -> None:
    """
    Frames that arrive in the same read as the upgrade request belong to the
    WebSocket and are delivered.
    """
    server, factory = make_server()
    server.send(upgrade_request() + client_frame(Opcode.TEXT, b"early") + client_frame(Opcode.TEXT, b"bird"))
    _, rest = server.response()
    assert [f.payload for f in server_frames(rest)] == ["early", "bird"]


def test_upgraded_connection_outlives_the_site_idle_timeout() -> None:
    """
    C{Site.timeOut} (60 s) must not close an upgraded connection.
    """
    server, factory = make_server(pingInterval=None)
    server.send(upgrade_request())
    server.clock.advance(server.site.timeOut * 3)
    assert not server.transport.disconnecting
    server.send(client_frame(Opcode.TEXT, b"still here"))
    _, rest = server.response()
    assert [f.payload for f in server_frames(rest)] == ["still here"]


def test_twisted_websocket_demo_runs_unchanged() -> None:
    """
    Twisted's documented example shape (a class with a C{buildProtocol}
    classmethod, C{negotiationStarted} storing the transport, ...) works as
    the factory, with nothing txpulse-specific in it.
    """
    from twisted.web.server import Request
    from twisted.web.websocket import WebSocketTransport

    log: list[str] = []

    class WebSocketDemo:
        @classmethod
        def buildProtocol(cls, request: Request) -> WebSocketDemo:
            return cls()

        def negotiationStarted(self, transport: WebSocketTransport) -> None:
            self.transport = transport

        def negotiationFinished(self) -> None:
            self.transport.sendTextMessage("heartbeat 1")

        def textMessageReceived(self, data: str) -> None:
            self.transport.sendTextMessage(f"reply to {data}")

        def bytesMessageReceived(self, data: bytes) -> None:
            pass

        def pongReceived(self, payload: bytes) -> None:
            pass

        def connectionLost(self, reason: Failure) -> None:
            log.append("lost")

    peer = connectFactory(WebSocketDemo, path="/ws")
    peer.sendText("hello")
    peer.close()
    assert peer.received == ["heartbeat 1", "reply to hello"]
    assert peer.closeCode == 1000 and peer.disconnected
    assert log == ["lost"]


def test_transport_exposes_request_subprotocol_and_identity() -> None:
    """
    The application's transport carries the request, the negotiated
    subprotocol (server's preference wins) and the accept hook's identity.
    """
    factory = AppFactory()
    peer = connectFactory(
        factory, subprotocols=["v2", "v1"], accept=lambda request: "alice", path="/ws", offer=["v1", "v2"]
    )
    assert ("Sec-WebSocket-Protocol", "v2") in peer.responseHeaders
    transport = factory.apps[0].transport
    assert transport.subprotocol == peer.subprotocol == "v2"
    assert transport.identity == "alice"
    assert transport.request.path == b"/ws"


def test_no_common_subprotocol_opens_without_one() -> None:
    """
    RFC 6455 §4.2.2: with no overlap the server omits the header.
    """
    server, factory = make_server(subprotocols=["v2"])
    server.send(upgrade_request(Sec_WebSocket_Protocol="other"))
    head, _ = server.response()
    assert head.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Protocol" not in head
    assert factory.apps[0].transport.subprotocol is None


@pytest.mark.parametrize(
    ("extra", "status", "header"),
    [
        ({"Sec_WebSocket_Version": "8"}, b"426", b"Sec-WebSocket-Version: 13"),
        ({"Upgrade": ""}, b"426", b"Upgrade: websocket"),
        ({"Sec_WebSocket_Key": "bad"}, b"400", b""),
        ({"Origin": "https://evil.example"}, b"403", b""),
    ],
)
def test_bad_upgrades_get_an_http_error(extra: dict[str, str], status: bytes, header: bytes) -> None:
    """
    Invalid upgrades get the right HTTP status (and headers), a log line,
    and no application protocol.
    """
    server, factory = make_server(allowedOrigins=["https://good.example"])
    with captured_logs() as logs:
        server.send(upgrade_request(**extra))
    head, body = server.response()
    assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 " + status)
    assert header.lower() in head.lower()
    assert body
    assert factory.apps == []
    assert any("refused" in line for line in logs)


def test_allowed_origin_and_missing_origin_are_accepted() -> None:
    """
    An allow-listed origin, and a request without Origin, both upgrade.
    """
    for extra in ({"Origin": "https://good.example"}, {}):
        server, _ = make_server(allowedOrigins=["https://good.example"])
        server.send(upgrade_request(**extra))
        assert server.response()[0].startswith(b"HTTP/1.1 101")


def test_plain_get_gets_426() -> None:
    """
    A browser navigating to the WebSocket URL gets 426 Upgrade Required.
    """
    server, _ = make_server()
    server.send(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert server.response()[0].startswith(b"HTTP/1.1 426 Upgrade Required")


def test_post_gets_405() -> None:
    """
    Methods other than GET are not allowed.
    """
    server, _ = make_server()
    server.send(upgrade_request().replace(b"GET", b"POST", 1))
    assert server.response()[0].startswith(b"HTTP/1.1 405")


def test_http_10_gets_400() -> None:
    """
    RFC 6455 §4.1: HTTP/1.1 or later is required.
    """
    server, _ = make_server()
    server.send(upgrade_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    assert b" 400 " in server.response()[0].split(b"\r\n")[0]


def test_async_accept_hook_can_refuse_with_401_before_any_101() -> None:
    """
    An accept hook returning a Deferred holds the answer; failing it with a
    L{HandshakeError} answers that status and body, and no 101 was sent.
    """
    pending: Deferred[object] = Deferred()
    factory = AppFactory()
    peer = connectFactory(factory, accept=lambda request: pending, path="/ws")
    assert peer.status is None
    pending.errback(HandshakeError("bad token", 401))
    peer.flush()
    assert peer.status == 401
    assert peer.responseBody.endswith(b"bad token\n")
    assert peer.disconnected
    assert factory.apps == []


def test_async_accept_hook_accepts_with_identity_and_keeps_early_frames() -> None:
    """
    When the hook's Deferred fires, the 101 goes out, the identity is
    attached, and frames that arrived meanwhile are delivered in order.
    """
    pending: Deferred[object] = Deferred()
    server, factory = make_server(accept=lambda request: pending)
    server.send(upgrade_request() + client_frame(Opcode.TEXT, b"one"))
    server.send(client_frame(Opcode.TEXT, b"two"))
    pending.callback({"user": "bob"})
    head, rest = server.response()
    assert head.startswith(b"HTTP/1.1 101")
    assert [f.payload for f in server_frames(rest)] == ["one", "two"]
    assert factory.apps[0].transport.identity == {"user": "bob"}


def test_async_def_accept_hook() -> None:
    """
    An C{async def} hook is awaited: awaiting, then accepting or refusing.
    """
    gate: Deferred[None] = Deferred()

    async def hook(request: Any) -> str:
        await gate
        if request.getHeader("authorization") != "Bearer ok":
            raise HandshakeError("missing or invalid token", 401)
        return "carol"

    server, factory = make_server(accept=hook)
    server.send(upgrade_request(Authorization="Bearer ok"))
    assert server.transport.value() == b""
    gate.callback(None)
    assert server.response()[0].startswith(b"HTTP/1.1 101")
    assert factory.apps[0].transport.identity == "carol"
    refused, _ = make_server(accept=hook)
    refused.send(upgrade_request(Authorization="Bearer nope"))
    head, body = refused.response()
    assert head.startswith(b"HTTP/1.1 401") and body == b"missing or invalid token\n"


def test_sync_accept_hook_refusal() -> None:
    """
    A hook that raises L{HandshakeError} refuses synchronously.
    """

    def deny(request: Any) -> None:
        raise HandshakeError("forbidden here", 403)

    server, factory = make_server(accept=deny)
    server.send(upgrade_request())
    assert server.response()[0].startswith(b"HTTP/1.1 403")


def test_accept_hook_crash_is_500_and_logged() -> None:
    """
    Any other exception from the hook is a 500 with no details, logged.
    """
    server, factory = make_server(accept=lambda request: fail(ValueError("db down")))
    with captured_logs() as logs:
        server.send(upgrade_request())
    head, body = server.response()
    assert head.startswith(b"HTTP/1.1 500")
    assert b"db down" not in body
    assert any("db down" in line for line in logs)


def test_accept_hook_timeout_is_503() -> None:
    """
    A hook that does not answer within C{handshakeTimeout} gets 503.
    """
    server, factory = make_server(accept=lambda request: Deferred(), handshakeTimeout=5)
    server.send(upgrade_request())
    server.clock.advance(4.9)
    assert server.transport.value() == b""
    with captured_logs():
        server.clock.advance(0.1)
    assert server.response()[0].startswith(b"HTTP/1.1 503")


def test_factory_returning_none_is_403() -> None:
    """
    C{buildProtocol} returning C{None} refuses the connection.
    """

    class Refusing:
        def buildProtocol(self, request: Any) -> None:
            return None

    server, _ = make_server(Refusing())
    with captured_logs():
        server.send(upgrade_request())
    assert server.response()[0].startswith(b"HTTP/1.1 403")


def test_connection_lost_reaches_the_application_and_the_request() -> None:
    """
    When TCP goes, the application gets C{ConnectionClosed} (1006 without a
    close frame) and the request's C{notifyFinish} fires with an error.
    """
    server, factory = make_server()
    server.send(upgrade_request())
    app = factory.apps[0]
    finished: list[Any] = []
    app.request.notifyFinish().addBoth(finished.append)
    server.channel.connectionLost(Failure(ConnectionLost()))
    assert isinstance(app.reason.value, ConnectionClosed) and app.reason.value.code == 1006
    assert len(finished) == 1


def test_message_limit_option_is_enforced() -> None:
    """
    C{maxMessageSize} reaches the core: one byte over closes with 1009.
    """
    server, _ = make_server(maxMessageSize=10)
    server.send(upgrade_request())
    with captured_logs():
        server.send(client_frame(Opcode.BINARY, b"x" * 11))
    _, rest = server.response()
    assert server_frames(rest)[-1].payload[0] == 1009


def test_incomplete_message_budget_is_shared_and_released_on_connection_lost() -> None:
    """
    One L{AssemblyBudget} passed as C{maxIncompleteSize} to two resources
    bounds their incomplete messages together: the fragment that would pass
    it closes its connection with 1013, and a connection lost in the middle
    of a message gives its charge back.
    """
    budget = AssemblyBudget(10)
    holder, _ = make_server(maxIncompleteSize=budget)
    other, _ = make_server(maxIncompleteSize=budget)
    holder.send(upgrade_request() + client_frame(Opcode.BINARY, b"x" * 8, fin=False))
    assert budget.used == 8
    other.send(upgrade_request())
    with captured_logs() as lines:
        other.send(client_frame(Opcode.BINARY, b"y" * 4, fin=False))
    _, rest = other.response()
    assert server_frames(rest)[-1].payload[0] == 1013
    assert any("incomplete messages over the server's budget (closing with 1013)" in line for line in lines)
    holder.channel.connectionLost(Failure(ConnectionLost()))
    assert budget.used == 0


@pytest.mark.parametrize("size", [0, -1])
def test_incomplete_message_budget_must_be_positive(size: int) -> None:
    """
    C{maxIncompleteSize} is a positive size, an L{AssemblyBudget} or
    C{None}.
    """
    with pytest.raises(ValueError):
        WebSocketResource(AppFactory(), maxIncompleteSize=size)


def test_echo_factory() -> None:
    """
    The built-in echo app answers text with text and bytes with bytes.
    """
    server, _ = make_server(EchoFactory())
    server.send(upgrade_request() + client_frame(Opcode.TEXT, b"t") + client_frame(Opcode.BINARY, b"b"))
    _, rest = server.response()
    assert [f.payload for f in server_frames(rest)] == ["t", b"b"]


@pytest.mark.parametrize(
    "bad", [{"maxMessageSize": 0}, {"handshakeTimeout": 0}, {"pingInterval": -1}, {"closeTimeout": 0}]
)
def test_invalid_options_are_rejected(bad: dict[str, Any]) -> None:
    """
    Nonsensical option values raise L{ValueError} at construction.
    """
    with pytest.raises(ValueError):
        WebSocketResource(EchoFactory(), **bad)


def test_refused_upgrades_are_logged_in_aggregate_per_address() -> None:
    """
    Refused upgrades (426, 400, ...) from one client address make one log
    line at once, then one summary per interval while they go on (before:
    one line per refusal, a log flood for the asking); another address gets
    its own first line.
    """
    clock = Clock()
    resource = WebSocketResource(AppFactory(), clock=clock)
    root = Resource()
    root.putChild(b"ws", resource)
    site = Site(root, reactor=clock)

    def refuse(host: str, request: bytes) -> None:
        channel = site.buildProtocol(IPv4Address("TCP", host, 40000))
        transport = CountingTransport()
        transport.peerAddr = IPv4Address("TCP", host, 40000)
        channel.makeConnection(transport)
        channel.dataReceived(request)
        assert transport.value().startswith(b"HTTP/1.1 4")

    with captured_logs() as lines:
        for _ in range(100):
            refuse("192.0.2.1", upgrade_request(Sec_WebSocket_Version="8"))
            refuse("192.0.2.1", upgrade_request(Sec_WebSocket_Key="bad"))
        refuse("192.0.2.2", b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert len([line for line in lines if "refused" in line]) == 2
        clock.advance(10)
    refusals = [line for line in lines if "refused" in line]
    assert len(refusals) == 3, refusals
    assert "handshake refused for 192.0.2.1:40000" in refusals[0] and "426" in refusals[0]
    assert "192.0.2.2:40000" in refusals[1]
    assert "refused for 192.0.2.1: 199 more in the last 10s (100 x 400, 99 x 426)" in refusals[2]


def test_refused_upgrades_with_long_uris_make_a_bounded_log() -> None:
    """
    1,000 refused upgrades from one address, each with a 12 KB request
    target (half with a bad C{Sec-WebSocket-Key}: 400; half with a 2 KB
    C{Origin} that is not allowed, which the refusal's message quotes:
    403), on L{WebSocketSite}: one refusal line in full, clipped (target
    and message cut to 200 characters, with their lengths), one summary
    line after the interval, and one access-log line per request, clipped
    too. In all, well under 1 KiB of log per request (before: two lines of
    about 12 KB each per request, 235 MB of log for 9,600 of them in the
    hostile test of issue 14).
    """
    clock = Clock()
    root = Resource()
    root.putChild(b"ws", WebSocketResource(AppFactory(), clock=clock, allowedOrigins=["https://example.com"]))
    site = WebSocketSite(root, reactor=clock)
    access = AccessLog()
    site.logFile = access  # type: ignore[assignment]
    target = "/ws?" + "a" * 12000
    badKey = upgrade_request(target, Sec_WebSocket_Key="x", Origin="https://example.com")
    badOrigin = upgrade_request(target, Origin="https://" + "o" * 2000)
    sent = 0
    with captured_logs() as lines:
        for port in range(1000):
            channel = site.buildProtocol(IPv4Address("TCP", "192.0.2.1", 40000 + port))
            transport = CountingTransport()
            transport.peerAddr = IPv4Address("TCP", "192.0.2.1", 40000 + port)
            channel.makeConnection(transport)
            request = badKey if port % 2 else badOrigin
            channel.dataReceived(request)
            sent += len(request)
            assert transport.value().startswith(b"HTTP/1.1 4") and transport.disconnecting
            channel.connectionLost(Failure(ConnectionDone()))
        clock.advance(10)
    refusals = [line for line in lines if "refused" in line]
    assert len(refusals) == 2, refusals
    assert "/ws?" + "a" * 196 + "... (12004 characters)" in refusals[0]
    assert "origin 'https://ooo" in refusals[0] and "... (2032 characters)" in refusals[0]
    assert "999 more in the last 10s (500 x 400, 499 x 403)" in refusals[1]
    assert len(access.lines) == 1000
    assert "/ws?" + "a" * 196 + "... (12004 characters)" in access.lines[0]
    logged = sum(len(line.encode()) for line in lines + access.lines)
    assert max(len(line) for line in lines + access.lines) < 1024
    assert logged < 1000 * 400 and logged < sent / 30


def test_settings_object_is_used_and_keywords_override_it() -> None:
    """
    C{WebSocketResource(factory, settings=...)} takes a L{ConnectionSettings}
    (its message limit reaches the core: 1009 above it); a keyword argument
    overrides one setting; keywords alone build the same settings object.
    """
    shared = ConnectionSettings(maxMessageSize=10, pingInterval=None)
    resource = WebSocketResource(AppFactory(), settings=shared, clock=Clock())
    assert resource.settings is shared
    server = Server(resource, Clock())
    server.send(upgrade_request())
    with captured_logs():
        server.send(client_frame(Opcode.BINARY, b"x" * 11))
    _, rest = server.response()
    assert server_frames(rest)[-1].payload[0] == 1009
    assert WebSocketResource(AppFactory(), settings=shared, maxMessageSize=20).settings == shared.override(
        maxMessageSize=20
    )
    assert WebSocketResource(AppFactory(), maxMessageSize=10, pingInterval=None).settings == shared
    assert WebSocketResource(AppFactory()).settings == ConnectionSettings()


def test_settings_origins_are_enforced() -> None:
    """
    The origin allow-list of a settings object is the resource's: another
    browser origin gets 403.
    """
    server, _ = make_server(settings=ConnectionSettings(allowedOrigins="https://good.example"))
    server.send(upgrade_request(Origin="https://evil.example"))
    head, _ = server.response()
    assert head.startswith(b"HTTP/1.1 403")


def test_bad_option_messages_name_the_setting() -> None:
    """
    A bad keyword argument raises a L{ValueError} naming the setting and
    showing the value.
    """
    with pytest.raises(ValueError, match="^pingInterval must not be negative: -3$"):
        WebSocketResource(AppFactory(), pingInterval=-3)

# -*- test-case-name: tests.test_testing -*-
"""
Tests for L{txpulse.testing}, the public in-memory harness: a scripted peer
against server code (L{connectProtocol} and friends) and an in-memory
network for real clients (L{InMemoryServer}).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from txpulse import (
    CloseCode,
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    InvalidState,
    Opcode,
    WebSocketResource,
)
from txpulse.testing import InMemoryServer, connectFactory, connectProtocol, connectResource


class Recorder:
    """
    An application protocol that records what it is told and, optionally,
    echoes every message.
    """

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.transport: Any = None
        self.messages: list[str | bytes] = []
        self.pongs: list[bytes] = []
        self.lost: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> object:
        self.messages.append(message)
        if self.echo:
            self.transport.sendTextMessage(message)
        return None

    def bytesMessageReceived(self, data: bytes) -> None:
        self.messages.append(data)
        if self.echo:
            self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.append(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.lost = reason

    @property
    def closed(self) -> ConnectionClosed:
        assert self.lost is not None, "the connection is still open"
        value = self.lost.value
        assert isinstance(value, ConnectionClosed)
        return value


class Factory:
    """
    Builds a L{Recorder} per connection and keeps them.
    """

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.apps: list[Recorder] = []

    def buildProtocol(self, request: object) -> Recorder:
        app = Recorder(self.echo)
        self.apps.append(app)
        return app


def test_echo_round_trip() -> None:
    """
    Text and binary messages the peer sends reach the application, and what
    the application sends back lands in C{received}, decoded, in order.
    """
    app = Recorder()
    peer = connectProtocol(app)
    assert peer.status == 101 and peer.isOpen
    peer.sendText("héllo")
    peer.sendBinary(b"\x00\xff")
    assert app.messages == ["héllo", b"\x00\xff"]
    assert peer.received == ["héllo", b"\x00\xff"]


def test_fragments_and_split_bytes_are_reassembled() -> None:
    """
    Hand-made fragments and a frame split into single bytes are delivered
    as whole messages.
    """
    app = Recorder()
    peer = connectProtocol(app)
    peer.sendFrame(Opcode.TEXT, b"frag", fin=False)
    peer.sendFrame(Opcode.CONT, b"ment")
    assert app.messages == ["fragment"]
    app.messages.clear()
    peer.sendFrame(Opcode.BINARY, b"")  # an empty message
    assert app.messages == [b""]


def test_application_ping_is_answered_and_recorded() -> None:
    """
    A ping from the application is recorded in C{pings} and answered (the
    application's C{pongReceived} gets the payload once the peer's reply
    travels); a ping from the peer comes back in C{pongs}.
    """
    app = Recorder()
    peer = connectProtocol(app)
    app.transport.ping(b"app")
    assert peer.pings == [b"app"]
    assert app.pongs == []  # the reply travels on the next flush
    peer.flush()
    assert app.pongs == [b"app"]
    peer.ping(b"peer")
    assert peer.pongs == [b"peer"]


def test_keepalive_fires_after_advance() -> None:
    """
    After C{pingInterval} seconds of silence the server pings; the peer
    answers, so the connection stays open past C{pingTimeout}.
    """
    app = Recorder()
    peer = connectProtocol(app, pingInterval=20, pingTimeout=10)
    peer.advance(19)
    assert peer.pings == []
    peer.advance(1)
    assert peer.pings == [b""]
    peer.advance(15)
    assert peer.isOpen and app.lost is None
    assert app.transport.pingRoundTrip == 0


def test_silent_peer_times_out_with_1011() -> None:
    """
    A peer that stops answering (C{autoReply=False}) is closed with 1011
    C{pingTimeout} seconds after the unanswered ping, without waiting for
    its close frame.
    """
    app = Recorder()
    peer = connectProtocol(app, pingInterval=20, pingTimeout=10, autoReply=False)
    peer.advance(20)
    assert peer.pings == [b""]
    peer.advance(9.9)
    assert peer.closeCode is None
    peer.advance(0.1)
    assert peer.closeCode == CloseCode.INTERNAL_ERROR
    assert peer.disconnected
    assert app.closed.code == CloseCode.ABNORMAL_CLOSURE


def test_idle_timeout_closes_with_1001() -> None:
    """
    C{idleTimeout} seconds without a message closes with 1001; pongs to the
    keepalive do not count as activity, messages do.
    """
    app = Recorder()
    peer = connectProtocol(app, pingInterval=10, idleTimeout=60)
    peer.advance(50)
    peer.sendText("still here")
    peer.advance(59)
    assert peer.isOpen
    peer.advance(1)
    assert (peer.closeCode, peer.closeReason) == (CloseCode.GOING_AWAY, "idle timeout")
    assert peer.disconnected and not peer.aborted
    assert app.closed.code == CloseCode.GOING_AWAY


def test_peer_close_handshake() -> None:
    """
    The peer's close is echoed, the server closes TCP, and the application
    sees the peer's code and reason.
    """
    app = Recorder()
    peer = connectProtocol(app)
    peer.close(4000, "bye")
    assert peer.closeCode == 4000
    assert peer.disconnected and not peer.aborted
    assert (app.closed.code, app.closed.reason, app.closed.clean) == (4000, "bye", True)


def test_application_close_handshake() -> None:
    """
    The application's close reaches the peer at once; the peer's echo (and
    the end of TCP) on the next flush.
    """
    app = Recorder()
    peer = connectProtocol(app)
    app.transport.loseConnection(CloseCode.POLICY_VIOLATION, "no")
    assert (peer.closeCode, peer.closeReason) == (CloseCode.POLICY_VIOLATION, "no")
    assert not peer.disconnected
    peer.flush()
    assert peer.disconnected
    assert app.closed.code == CloseCode.POLICY_VIOLATION and app.closed.clean


def test_unanswered_close_is_aborted_after_close_timeout() -> None:
    """
    A peer that never echoes the close is dropped after C{closeTimeout}.
    """
    app = Recorder()
    peer = connectProtocol(app, closeTimeout=5, autoReply=False)
    app.transport.loseConnection()
    peer.advance(4.9)
    assert not peer.disconnected
    peer.advance(0.1)
    assert peer.disconnected and peer.aborted
    assert app.closed.code == CloseCode.ABNORMAL_CLOSURE


def test_disconnect_without_close_is_1006() -> None:
    """
    A peer that drops TCP leaves the application with 1006.
    """
    app = Recorder()
    peer = connectProtocol(app)
    peer.disconnect()
    assert app.closed.code == CloseCode.ABNORMAL_CLOSURE and not app.closed.clean


def test_protocol_violation_closes_with_1002() -> None:
    """
    An unmasked frame from a client breaks RFC 6455 §5.1: close 1002.
    """
    app = Recorder()
    peer = connectProtocol(app)
    peer.sendFrame(Opcode.TEXT, b"naked", masked=False)
    assert peer.closeCode == CloseCode.PROTOCOL_ERROR
    assert peer.disconnected
    assert app.messages == []


def test_message_limit_closes_with_1009() -> None:
    """
    Resource options pass through: over C{maxMessageSize}, 1009.
    """
    peer = connectFactory(Factory(), maxMessageSize=10)
    peer.sendText("x" * 11)
    assert peer.closeCode == CloseCode.MESSAGE_TOO_BIG


def test_accept_hook_refusal_status() -> None:
    """
    An accept hook's L{HandshakeError} becomes the HTTP answer: status,
    body, and no application protocol.
    """

    def accept(request: Any) -> None:
        raise HandshakeError("no token", 401)

    factory = Factory()
    peer = connectFactory(factory, accept=accept)
    assert peer.status == 401
    assert peer.responseBody == b"no token\n"
    assert ("Connection", "close") in peer.responseHeaders
    assert peer.disconnected and not peer.isOpen
    assert factory.apps == []


def test_asynchronous_accept_hook() -> None:
    """
    While an asynchronous accept hook decides, the peer has no answer; once
    it fires, the upgrade completes and the identity is on the transport.
    """
    decision: Deferred[str] = Deferred()
    factory = Factory()
    peer = connectFactory(factory, accept=lambda request: decision)
    assert peer.status is None
    decision.callback("alice")
    peer.flush()
    assert peer.status == 101
    assert factory.apps[0].transport.identity == "alice"


def test_accept_hook_timeout_is_503() -> None:
    """
    An accept hook that never answers gets 503 after C{handshakeTimeout}.
    """
    peer = connectFactory(Factory(), accept=lambda request: Deferred(), handshakeTimeout=3)
    peer.advance(3)
    assert peer.status == 503


def test_subprotocol_and_headers_reach_the_server() -> None:
    """
    Request headers, origin and path reach the application's request; the
    subprotocols the peer offers are negotiated against the resource's
    (C{connectFactory}'s own C{subprotocols} are the resource's, as for
    every keyword argument of L{WebSocketResource}).
    """
    factory = Factory()
    peer = connectFactory(
        factory,
        path="/rooms/blue?x=1",
        headers={"Authorization": "Bearer t"},
        origin="https://example.com",
    )
    request = factory.apps[0].transport.request
    assert request.uri == b"/rooms/blue?x=1"
    assert request.getHeader("authorization") == "Bearer t"
    assert request.getHeader("origin") == "https://example.com"
    assert peer.subprotocol is None

    peer = connectFactory(Factory(), subprotocols=["v2", "v1"], offer=["v1", "v2"])
    assert peer.subprotocol == "v2"
    assert ("Sec-WebSocket-Protocol", "v2") in peer.responseHeaders

    clock = Clock()
    resource = WebSocketResource(Factory(), subprotocols=["chat.v1", "chat.v2"], clock=clock)
    peer = connectResource(resource, clock=clock, path="/chat", offer=["chat.v2", "chat.v1"])
    assert peer.subprotocol == "chat.v1"


def test_origin_allow_list_refuses_with_403() -> None:
    """
    A cross-site origin outside C{allowedOrigins} gets 403.
    """
    peer = connectFactory(Factory(), allowedOrigins=["https://example.com"], origin="https://evil.example")
    assert peer.status == 403


def test_application_waiting_on_a_deferred_holds_reading() -> None:
    """
    While the application waits on a Deferred, what the peer sends is held
    (as the kernel would hold it); once it fires, delivery goes on.
    """
    waits: list[Deferred[None]] = []

    class Slow(Recorder):
        def textMessageReceived(self, message: str) -> Deferred[None]:
            super().textMessageReceived(message)
            waits.append(Deferred())
            return waits[-1]

    app = Slow()
    peer = connectProtocol(app)
    peer.sendText("one")
    peer.sendText("two")
    assert app.messages == ["one"]
    waits[0].callback(None)
    peer.flush()
    assert app.messages == ["one", "two"]
    assert peer.received == ["one", "two"]


def test_in_memory_client_server_round_trip() -> None:
    """
    A real L{txpulse.WebSocketClientEndpoint} client talks to a real
    resource over the in-memory network; closing ends both sides.
    """
    reactor = MemoryReactorClock()
    servers = Factory()
    server = InMemoryServer(WebSocketResource(servers, clock=reactor), path="/echo", reactor=reactor)
    clients = Factory(echo=False)
    connected = server.connect(clients, "/echo")
    client: list[Recorder] = []
    connected.addCallback(client.append)
    assert client == clients.apps
    client[0].transport.sendTextMessage("ping?")
    server.flush()
    assert servers.apps[0].messages == ["ping?"]
    assert client[0].messages == ["ping?"]
    client[0].transport.loseConnection(CloseCode.NORMAL_CLOSURE, "done")
    server.flush()
    assert servers.apps[0].closed.code == CloseCode.NORMAL_CLOSURE
    assert client[0].closed.code == CloseCode.NORMAL_CLOSURE


def test_in_memory_client_sees_keepalive_and_refusals() -> None:
    """
    Server keepalive pings are answered by the real client across
    L{InMemoryServer.advance}; a refused upgrade fails the client's
    Deferred with L{ConnectionRejected} and its status.
    """
    reactor = MemoryReactorClock()
    servers = Factory()

    def accept(request: Any) -> None:
        if request.getHeader("authorization") is None:
            raise HandshakeError("who are you?", 401)

    resource = WebSocketResource(servers, clock=reactor, pingInterval=5, pingTimeout=5, accept=accept)
    server = InMemoryServer(resource, reactor=reactor)
    refused = server.connect(Factory(), "/")
    failure: list[Failure] = []
    refused.addErrback(failure.append)
    rejection = failure[0].value
    assert isinstance(rejection, ConnectionRejected)
    assert rejection.statusCode == 401

    connected = server.connect(Factory(echo=False), "/", headers={"Authorization": "Bearer t"})
    opened: list[Recorder] = []
    connected.addCallback(opened.append)
    assert len(opened) == 1
    for _ in range(4):
        server.advance(5)
    assert servers.apps[0].lost is None
    assert servers.apps[0].transport.pingRoundTrip is not None


def test_connect_site_needs_a_clock() -> None:
    """
    A site on the global reactor cannot be driven by the peer: refused with
    a clear error rather than timers that never fire.
    """
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from txpulse.testing import connectSite

    with pytest.raises(TypeError):
        connectSite(Site(Resource(), reactor=object()))


def test_sending_before_the_upgrade_is_refused() -> None:
    """
    While the accept hook decides, the peer cannot send frames (a client
    never does before the 101).
    """
    peer = connectFactory(Factory(), accept=lambda request: Deferred())
    with pytest.raises(InvalidState):
        peer.sendText("too early")


def test_peers_sharing_a_clock_stay_alive_and_see_broadcasts() -> None:
    """
    Several peers of one resource share its clock: a message one sends to
    the others is in their C{received} at once, and each answers the
    keepalive pings when any of them advances the clock.
    """
    clock = Clock()
    members: list[Recorder] = []

    class Room(Recorder):
        def textMessageReceived(self, message: str) -> object:
            for member in members:
                member.transport.sendTextMessage(message)
            return None

    class RoomFactory:
        def buildProtocol(self, request: object) -> Room:
            member = Room()
            members.append(member)
            return member

    resource = WebSocketResource(RoomFactory(), clock=clock, pingInterval=10, pingTimeout=5)
    alice = connectResource(resource, clock=clock, path="/room")
    bob = connectResource(resource, clock=clock, path="/room")
    alice.sendText("hi all")
    assert alice.received == bob.received == ["hi all"]
    for _ in range(5):
        alice.advance(10)
    assert bob.pings == [b""] * 5
    assert bob.isOpen and all(member.lost is None for member in members)


def test_upgraded_peer_outlives_the_site_timeouts() -> None:
    """
    Once upgraded, only the WebSocket's own timers apply: an hour of
    silence (keepalive off) leaves the connection open, and no HTTP-layer
    timer is left on the clock.
    """
    app = Recorder()
    peer = connectProtocol(app, pingInterval=None)
    peer.advance(3600)
    assert peer.isOpen and app.lost is None
    peer.sendText("still here")
    assert peer.received == ["still here"]
    assert peer.clock.getDelayedCalls() == []


def test_in_memory_pair_negotiates_compression() -> None:
    """
    Compression, which the scripted peer does not speak, is tested with a
    real client: both sides offer permessage-deflate, a large repetitive
    message crosses compressed (the server wrote far fewer bytes than it
    echoed) and arrives intact.
    """
    reactor = MemoryReactorClock()
    servers = Factory()
    server = InMemoryServer(WebSocketResource(servers, clock=reactor, compression=True), reactor=reactor)
    opened: list[Recorder] = []
    server.connect(Factory(echo=False), "/", compression=True).addCallback(opened.append)
    opened[0].transport.sendTextMessage("x" * 10_000)
    server.flush()
    assert opened[0].messages == ["x" * 10_000]
    assert servers.apps[0].transport.bytesOut < 1_000

# -*- test-case-name: tests.wire.test_twistedinternals -*-
"""
Every reach into Twisted's private parts (L{txpulse.wire.twistedinternals}),
each touched against real Twisted objects of the installed version: CI runs
this on the oldest Twisted supported and on the newest release, so a
release that renames or changes one of them fails here, by name, not only
somewhere deep in an integration test.

Covered elsewhere as well, end to end: the channel hand-over
(C{detachChannel}, C{redirectPlainChannel}) by tests/server's C{Site.timeOut}
and same-read tests on a plain C{Site}; the write buffer (C{isAborting},
C{hasQueuedWrites}, C{takeSmallTail}, C{queuedInFileDescriptor},
C{tlsPendingCleartext}) by tests/wire's back-pressure tests and the
wss:// integration tests; the C{WebSocketChannel} state functions by
tests/server's site tests; C{clearExitSignal} by the plugin's graceful-shutdown tests.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from twisted.application.internet import ClientService
from twisted.internet import tcp
from twisted.internet.defer import fail, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.static import Data

from txpulse.wire import twistedinternals as ti


class _Hold(Resource):
    """
    Answers nothing (the request stays being handled), so the channel
    buffers whatever follows it.
    """

    isLeaf = True

    def render(self, request: Any) -> Any:
        return NOT_DONE_YET


def _channel() -> tuple[Any, HTTPChannel, StringTransport]:
    """
    A plain Site's connection protocol, its channel and transport.
    """
    protocol: Any = Site(_Hold()).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, ti.wrappedChannel(protocol), transport


def test_maybe_global_reactor_is_the_argument_or_the_reactor() -> None:
    """
    A clock given is used; C{None} means the global reactor.
    """
    from twisted.internet import reactor

    clock = Clock()
    assert ti.maybeGlobalReactor(clock) is clock
    assert ti.maybeGlobalReactor(None) is reactor


def test_generic_channel_protocol_wraps_the_channel() -> None:
    """
    C{Site.buildProtocol} returns a L{ti.GenericHTTPChannelProtocol}, and
    L{ti.wrappedChannel} is the channel behind it.
    """
    protocol, channel, _ = _channel()
    assert isinstance(protocol, ti.GenericHTTPChannelProtocol)
    assert isinstance(channel, HTTPChannel)


def test_detach_channel_returns_pipelined_bytes_and_drops_the_idle_timeout() -> None:
    """
    Bytes after a request being handled are buffered by the channel and
    handed over by L{ti.detachChannel}, which also clears the saved idle
    timeout and unregisters the channel as the transport's producer.
    """
    protocol, channel, transport = _channel()
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x81\x00")
    assert ti.handlingRequest(channel)
    assert transport.producer is channel
    assert ti.detachChannel(channel) == b"\x81\x00"
    assert transport.producer is None
    assert channel._savedTimeOut is None  # type: ignore[attr-defined]


def test_redirect_plain_channel_routes_bytes_and_loss() -> None:
    """
    After L{ti.redirectPlainChannel}, bytes the connection receives (in
    line mode and raw mode) reach the new receiver, and the loss reaches it
    before the channel.
    """
    protocol, channel, _ = _channel()
    received: list[bytes] = []
    lost: list[Failure] = []
    ti.redirectPlainChannel(channel, received.append, lost.append)
    protocol.dataReceived(b"abc")
    channel.rawDataReceived(b"def")
    protocol.connectionLost(Failure(ConnectionError("gone")))
    assert received == [b"abc", b"def"]
    assert len(lost) == 1


def test_request_disconnected_follows_connection_loss() -> None:
    """
    L{ti.requestDisconnected} turns true once the request's connection is
    lost.
    """
    protocol, channel, _ = _channel()
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    request = channel.requests[-1]  # type: ignore[attr-defined]
    assert not ti.requestDisconnected(request)
    protocol.connectionLost(Failure(ConnectionError("gone")))
    assert ti.requestDisconnected(request)


def test_channel_state_readers() -> None:
    """
    The flow-control and parser state of an C{HTTPChannel}: not paused, no
    producer, no body decoder; the target of a head being parsed; a body
    decoder once a head announces a body; abort timer armed once.
    """
    protocol, channel, transport = _channel()
    assert not ti.waitingForTransport(channel)
    assert not ti.handlingRequest(channel)
    assert ti.requestProducer(channel) is None
    assert ti.bodyDecoder(channel) is None
    protocol.dataReceived(b"POST /target?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n")
    assert ti.requestTarget(channel) == b"/target?q=1"
    protocol.dataReceived(b"\r\n")
    assert ti.bodyDecoder(channel) is not None
    channel.pauseProducing()
    ti.pauseChannelReading(channel)
    assert transport.producerState == "paused"
    clock = Clock()
    channel.callLater = clock.callLater  # type: ignore[method-assign]
    ti.armChannelAbort(channel)
    ti.armChannelAbort(channel)
    assert len(clock.getDelayedCalls()) == 1


def test_request_start_and_begin_request_mirror_the_line_parser() -> None:
    """
    L{ti.atRequestStart} is true only between requests with nothing
    buffered; a request begun with L{ti.beginRequest} and completed with
    the channel's own end-of-head calls is the request Twisted's parser
    makes: queued, with its line, headers and answer; after it the channel
    is at a request start again, and parses the next head itself.
    """
    page = Data(b"ok", "text/plain")
    page.isLeaf = True
    protocol: Any = Site(page).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    channel: Any = ti.wrappedChannel(protocol)
    assert ti.atRequestStart(channel)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHo")
    assert not ti.atRequestStart(channel)  # a partial line is buffered
    protocol.dataReceived(b"st: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 ")
    assert ti.atRequestStart(channel)
    transport.clear()
    request = ti.beginRequest(channel, b"GET", b"/?a=1", b"HTTP/1.1")
    assert channel.requests == [request]
    assert not ti.atRequestStart(channel)
    request.requestHeaders.addRawHeader(b"Host", b"x")
    channel.allHeadersReceived()
    channel.allContentReceived()
    assert (request.method, request.uri, request.args) == (b"GET", b"/?a=1", {b"a": [b"1"]})
    assert transport.value().startswith(b"HTTP/1.1 200 ")
    assert ti.atRequestStart(channel)
    transport.clear()
    protocol.dataReceived(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 ")


def test_escape_log_field_matches_twisted() -> None:
    """
    Quotes and backslashes are escaped as in Twisted's access log.
    """
    assert ti.escapeLogField(b'a"b\\c') == 'a\\"b\\\\c'


@pytest.fixture
def connection() -> Any:
    """
    A real C{tcp.Connection} over one end of a socket pair, with a reactor
    that never runs it.
    """

    class Reactor:
        def addWriter(self, _: object) -> None:
            pass

        def removeWriter(self, _: object) -> None:
            pass

        def addReader(self, _: object) -> None:
            pass

        def removeReader(self, _: object) -> None:
            pass

        def callLater(self, *_: object) -> None:
            pass

    ours, theirs = socket.socketpair()
    conn = tcp.Connection(ours, Protocol(), reactor=Reactor())
    conn.connected = True
    yield conn
    ours.close()
    theirs.close()


def test_write_buffer_readers(connection: Any) -> None:
    """
    Queued writes are seen, counted (bytes and objects), and the small
    tail of the queue can be taken back.
    """
    assert not ti.hasQueuedWrites(connection)
    assert ti.queuedInFileDescriptor(connection) == 0
    connection.write(b"abc")
    connection.write(b"x" * 10)
    assert ti.hasQueuedWrites(connection)
    assert ti.queuedInFileDescriptor(connection) == 13
    assert ti.chunksInFileDescriptor(connection) == 3
    assert ti.takeSmallTail(connection, 5) is None
    assert ti.takeSmallTail(connection, 4096) == b"x" * 10
    assert ti.queuedInFileDescriptor(connection) == 3
    assert not ti.isAborting(connection)
    connection.abortConnection()
    assert ti.isAborting(connection)


def test_tls_pending_cleartext_before_the_handshake() -> None:
    """
    Application bytes written before a TLS handshake completes wait as
    cleartext in the TLS protocol; other transports have none.
    """
    factory = TLSMemoryBIOFactory(optionsForClientTLS("example.com"), True, Factory.forProtocol(Protocol))
    tls: Any = factory.buildProtocol(None)
    tls.makeConnection(StringTransport())
    # Larger than what BufferingTLSTransport aggregates until the next turn.
    tls.write(b"x" * 100_000)
    pending = ti.tlsPendingCleartext(tls)
    assert pending is not None and sum(map(len, pending)) == 100_000
    assert ti.tlsPendingCleartext(StringTransport()) is None


def test_client_service_protocol_unwrap_and_log() -> None:
    """
    What C{ClientService} hands C{prepareConnection} unwraps to the
    factory's protocol; a service class from L{ti.clientServiceLoggingTo}
    logs its retry notices to the logger given.
    """
    built = Protocol()
    prepared: list[Any] = []
    events: list[dict[str, Any]] = []

    class Endpoint:
        attempts = 0

        def connect(self, factory: Any) -> Any:
            self.attempts += 1
            if self.attempts == 1:
                return fail(ConnectionRefusedError())
            protocol = factory.buildProtocol(None)
            protocol.makeConnection(StringTransport())
            return succeed(protocol)

    serviceClass = ti.clientServiceLoggingTo(Logger(observer=events.append))
    assert issubclass(serviceClass, ClientService)
    clock = Clock()
    service = serviceClass(
        Endpoint(),  # type: ignore[arg-type]
        Factory.forProtocol(lambda: built),
        retryPolicy=lambda _: 1.0,
        clock=clock,
        prepareConnection=prepared.append,
    )
    service.startService()
    clock.advance(1.0)
    assert [ti.unwrapClientServiceProtocol(p) for p in prepared] == [built]
    assert ti.unwrapClientServiceProtocol(built) is built
    assert any("retry" in str(event.get("log_format", "")).lower() for event in events)
    service.stopService()


def test_clear_exit_signal() -> None:
    """
    The signal a reactor recorded is forgotten; a reactor without one is
    left alone.
    """
    from twisted.internet.base import ReactorBase

    assert hasattr(ReactorBase, "_exitSignal")

    class Recorded:
        _exitSignal: int | None = 15

    reactor = Recorded()
    ti.clearExitSignal(reactor)
    assert reactor._exitSignal is None
    ti.clearExitSignal(object())


def test_bad_request_path_is_the_one_websocket_channel_overrides() -> None:
    """
    C{HTTPChannel} answers a malformed request line through its private
    C{_respondToBadRequestAndDisconnect} (400 and a close), the method
    C{WebSocketChannel} overrides to log it.
    """
    protocol, channel, transport = _channel()
    called: list[bool] = []
    original = channel._respondToBadRequestAndDisconnect  # type: ignore[attr-defined]

    def spy() -> None:
        called.append(True)
        original()

    channel._respondToBadRequestAndDisconnect = spy  # type: ignore[attr-defined]
    protocol.dataReceived(b"GARBAGE\r\n")
    assert called
    assert transport.value().startswith(b"HTTP/1.1 400")

"""
The life of WebSocket streams on an HTTP/2 connection beyond the
handshake: the connection's idle timeout, a stream whose peer stops
reading (its write limit, its reset, the other streams unaffected),
graceful shutdown (1001 on every stream, then GOAWAY) and the metrics that
tell HTTP/2 WebSockets apart. The peer is the raw C{h2} client of
L{tests.http2.peer}.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import h2.events
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from wsproto.frame_protocol import Opcode

from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.shutdown import GracefulShutdown
from txpulse.server.resource import WebSocketResource

from ..support.apps import RecordingFactory
from ..support.frames import client_frame, close_payload
from ..support.waits import until
from .peer import H2Peer

pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")

call = H2Peer.call


@pytest_twisted.ensureDeferred
async def test_websocket_streams_outlive_the_sites_idle_timeout(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    The HTTP/2 connection's idle timeout (C{Site.timeOut}, here 0.3 s) does
    not apply while a WebSocket stream is open: a WebSocket idle for three
    times as long still echoes.
    """
    server = serve(timeout=0.3)
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    await deferLater(reactor, 0.9)
    await call(peer.send, stream, client_frame(Opcode.TEXT, b"still there"))
    assert [f.payload for f in await call(peer.frames, stream, 1)] == ["still there"]
    assert not peer.closed


class _Flood:
    """
    Sends C{count} binary messages of C{size} bytes, one per call from the
    reactor, as soon as it opens (a server pushing to a peer that does not
    read).
    """

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size
        self.transport: Any = None
        self.reason: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        for i in range(self.count):
            reactor.callLater(0.001 * i, self.transport.sendBytesMessage, b"z" * self.size)

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendTextMessage(text)

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        self.reason = reason


@pytest_twisted.ensureDeferred
async def test_a_peer_that_stops_reading_one_stream_gets_only_that_stream_reset(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    Back-pressure through flow control: the peer grants no window to the
    flooded stream; the wire is paused and, past its C{maxWriteBuffer},
    resets that stream (RST_STREAM CANCEL; the application sees 1006)
    while an echo stream on the same connection keeps working.
    """
    floods: list[_Flood] = []

    class FloodFactory:
        def buildProtocol(self, request: Any) -> _Flood:
            floods.append(_Flood(60, 4096))
            return floods[-1]

    server = serve({"flood": WebSocketResource(FloodFactory(), pingInterval=None, maxWriteBuffer=64 * 1024)})
    peer = await peers(server)
    echo = await call(peer.connect)
    await call(peer.response, echo)
    peer.stalled.add(3)  # the next stream
    flood = await call(peer.connect, "/flood")
    assert flood == 3
    await call(peer.response, flood)
    reset = await call(peer.reset, flood)
    assert reset.error_code == h2.errors.ErrorCodes.CANCEL
    await until(lambda: floods[0].reason is not None, "the flood's end")
    assert floods[0].reason.value.code == 1006
    await call(peer.send, echo, client_frame(Opcode.TEXT, b"unaffected"))
    assert [f.payload for f in await call(peer.frames, echo, 1)] == ["unaffected"]


@pytest_twisted.ensureDeferred
async def test_graceful_shutdown_closes_every_stream_with_1001_then_sends_goaway(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    The plugin's graceful shutdown: every WebSocket stream gets a 1001
    close frame; once the peer answered them, the connection gets GOAWAY
    (NO_ERROR). The registry counted both WebSockets as HTTP/2 ones.
    """
    registry = ConnectionRegistry(logConnections=False)
    server = serve(
        {"tracked": WebSocketResource(recorder, pingInterval=None, observer=registry.observerFor("/tracked"))}
    )
    peer = await peers(server)
    streams = [await call(peer.connect, "/tracked") for _ in range(2)]
    for stream in streams:
        await call(peer.response, stream)
    await until(lambda: len(registry.openConnections()) == 2, "two open WebSockets")
    shutdown = GracefulShutdown(registry, 5, reactor=reactor, sites=[server.site])
    shutdown.startService()
    stopped = shutdown.stopService()
    for stream in streams:
        frames = await call(peer.frames, stream, 1)
        assert (frames[0].opcode, frames[0].payload[0]) == (Opcode.CLOSE, 1001)
        await call(peer.send, stream, client_frame(Opcode.CLOSE, close_payload(1001)), True)
    terminated = await call(peer.terminated)
    assert terminated.error_code == h2.errors.ErrorCodes.NO_ERROR
    await stopped
    if registry.metrics is not None:
        from prometheus_client import generate_latest

        text = generate_latest(registry.metrics).decode()
        assert 'txpulse_http2_websockets_total{path="/tracked"} 2.0' in text


@pytest_twisted.ensureDeferred
async def test_peer_end_stream_is_its_end_of_input(serve: Any, peers: Any, recorder: RecordingFactory) -> None:
    """
    The peer's END_STREAM without a close frame is a half-close: the server
    ends its side too and the application sees an abnormal closure (1006).
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    app = await recorder.next()
    await call(peer.send, stream, client_frame(Opcode.TEXT, b"last words"), True)
    assert await app.next() == "last words"
    closed = await app.closed()
    assert closed.code == 1006
    await call(peer.pump, lambda: any(isinstance(e, h2.events.StreamEnded) for e in peer.events), "END_STREAM")


@pytest_twisted.ensureDeferred
async def test_websocket_streams_count_against_the_connection_caps(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    Each WebSocket stream counts against C{maxConnectionsPerAddress} like
    an HTTP/1.1 connection (the HTTP/2 connection itself is one): with a
    cap of 3, the third WebSocket on one connection gets 503, and once one
    has closed a new one is taken.
    """
    server = serve(maxConnectionsPerAddress=3)
    peer = await peers(server)
    first, second = [await call(peer.connect) for _ in range(2)]
    for stream in (first, second):
        assert (await call(peer.response, stream))[b":status"] == b"200"
    third = await call(peer.connect)
    assert (await call(peer.response, third))[b":status"] == b"503"
    assert server.site.openConnections == 3
    await call(peer.send, first, client_frame(Opcode.CLOSE, close_payload(1000)), True)
    await recorder.built[0].closed()
    await until(lambda: server.site.openConnections == 2, "the closed WebSocket released")
    fourth = await call(peer.connect)
    assert (await call(peer.response, fourth))[b":status"] == b"200"


@pytest_twisted.ensureDeferred
async def test_idle_timeout_returns_once_the_last_websocket_closed(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    Once its last WebSocket stream closed, an idle HTTP/2 connection is
    timed out again after C{Site.timeOut} (GOAWAY, then the close).
    """
    server = serve(timeout=0.3)
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    await deferLater(reactor, 0.5)
    await call(peer.send, stream, client_frame(Opcode.CLOSE, close_payload(1000)), True)
    await recorder.built[0].closed()
    await call(peer.terminated)

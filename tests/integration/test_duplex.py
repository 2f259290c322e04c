"""
Full duplex on loopback: peers that send and receive at once, both of them
running txpulse's L{WebSocketWire} (a L{WebSocketClientEndpoint} talking to
a L{WebSocketResource} echo), and a raw peer that pipelines (writes
everything, then reads).

A full write buffer alone must not stop a wire from reading: if both ends
stopped reading as soon as their buffers filled, each would wait for the
other to drain its buffer, for ever (the echo of large messages stalled
until the keepalive closed it with 1006). Reading stops only once a peer
has really fallen behind (see L{txpulse.wire.protocol.WireOptions.maxWriteBuffer}).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from zope.interface import implementer

from txpulse import WebSocketResource
from txpulse.client import WebSocketClientEndpoint
from txpulse.demos.apps import EchoFactory

from ..support.rawsocket import client_frame
from ..support.requests import keyed_upgrade
from ..support.waits import until, within

#: How long the whole exchange may take (it takes well under a second).
DEADLINE = 20.0


@implementer(IPushProducer)
class Streamer:
    """
    Sends C{count} binary messages of C{size} bytes, one per reactor turn,
    as fast as the transport's back-pressure allows: it stops while paused
    and goes on when resumed.
    """

    def __init__(self, transport: Any, size: int, count: int) -> None:
        self.transport = transport
        self.size = size
        self.count = count
        self.sent = 0
        self.paused = False
        self.stopped = False
        self._call: Any = None
        self._schedule()

    @staticmethod
    def message(index: int, size: int) -> bytes:
        """
        Message C{index}: C{size} bytes starting with its number.
        """
        return index.to_bytes(4, "big") * (size // 4)

    def _schedule(self) -> None:
        if self._call is None and not (self.paused or self.stopped) and self.sent < self.count:
            self._call = reactor.callLater(0, self._pump)

    def _pump(self) -> None:
        self._call = None
        if self.paused or self.stopped or self.sent >= self.count:
            return
        self.transport.sendBytesMessage(self.message(self.sent, self.size))
        self.sent += 1
        self._schedule()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class StreamingClient:
    """
    A client application that streams through a L{Streamer} attached to its
    transport and records the echoes.
    """

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self.count = count
        self.transport: Any = None
        self.streamer: Streamer | None = None
        self.received: list[bytes] = []
        self.reason: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.streamer = Streamer(self.transport, self.size, self.count)
        self.transport.attachProducer(self.streamer)

    def textMessageReceived(self, message: str) -> None:
        raise AssertionError("text from a binary echo")

    def bytesMessageReceived(self, data: bytes) -> None:
        self.received.append(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason


class StreamingClientFactory:
    """
    Builds the one L{StreamingClient} of a test.
    """

    def __init__(self, size: int, count: int) -> None:
        self.app = StreamingClient(size, count)

    def buildProtocol(self, url: str) -> StreamingClient:
        return self.app


@pytest.mark.parametrize("size", [1 << 20, 2 << 20], ids=["1MiB", "2MiB"])
@pytest_twisted.ensureDeferred
async def test_txpulse_client_and_server_stream_large_messages_both_ways(serve: Any, size: int) -> None:
    """
    A txpulse client streams C{size}-byte messages (1 and 2 MiB, 32 MiB in
    all) to a txpulse echo through a producer that respects back-pressure,
    while reading the echoes. Both write buffers fill all the time; neither
    side may stop reading for that alone. Every echo arrives, intact and in
    order, and nobody closes the connection (before the fix: no echo at
    all, then 1006 when the keepalive gave up).
    """
    count = (32 << 20) // size
    server = serve(WebSocketResource(EchoFactory(), maxMessageSize=4 << 20, pingInterval=3.0, pingTimeout=3.0))
    factory = StreamingClientFactory(size, count)
    endpoint = WebSocketClientEndpoint.new(
        reactor, server.url(), maxMessageSize=4 << 20, pingInterval=3.0, pingTimeout=3.0
    )
    app = await within(endpoint.connect(factory))
    try:
        await until(
            lambda: len(app.received) == count or app.reason is not None,
            f"{count} echoes of {size} bytes",
            DEADLINE,
        )
        assert app.reason is None, app.reason
        assert len(app.received) == count
        assert all(data == Streamer.message(index, size) for index, data in enumerate(app.received))
    finally:
        if app.reason is None:
            app.transport.abortConnection()
            await until(lambda: app.reason is not None, "the connection to go")


def pipeline(port: int, messages: list[bytes]) -> bytes:
    """
    In a worker thread: upgrade a blocking socket to C{/echo}, send every
    message in C{messages} (as masked binary frames) before reading
    anything, then read until the echoes of all of them (unmasked binary
    frames) have arrived, and return what was read after the C{101}.
    """
    payloadSize = len(messages[0])
    assert all(len(m) == payloadSize for m in messages) and 126 <= payloadSize <= 0xFFFF
    expected = len(messages) * (4 + payloadSize)
    request, _ = keyed_upgrade(port)
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 "), head
        received = bytearray(head.split(b"\r\n\r\n", 1)[1])
        # A sendall the server does not take times out: the deadlock.
        sock.sendall(b"".join(client_frame(0x2, message) for message in messages))
        while len(received) < expected:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {len(received)} of {expected} bytes"
            received += chunk
        return bytes(received)


#: What the kernel's buffers on both sides of a loopback connection took
#: before a pipelining peer's C{sendall} stalled, with the server reading
#: nothing more (measured: about 9 MiB). A pipeline must be longer than this
#: to depend on the server reading on.
KERNEL_BUFFERS = 9 << 20


@pytest_twisted.ensureDeferred
async def test_a_peer_that_pipelines_megabytes_gets_every_echo(serve: Any) -> None:
    """
    A peer writes 16 MiB of masked messages (280 of 60,000 bytes) before
    it reads anything, then reads. The server (C{maxWriteBuffer} 32 MiB)
    reads on while the echoes pile up in its buffer, up to half of
    C{maxWriteBuffer}; together with the kernel's buffers that is room for
    the whole pipeline, so the peer's writes go through and every echo
    arrives, in order. (Before the fix the server stopped reading once 256
    KiB were queued: the peer's C{sendall} stalled after some 9 MiB, and
    neither side moved again.)
    """
    server = serve(WebSocketResource(EchoFactory(), maxWriteBuffer=32 << 20))
    messages = [index.to_bytes(2, "big") * 30_000 for index in range(280)]
    assert sum(map(len, messages)) > KERNEL_BUFFERS + (4 << 20)
    received = await within(deferToThread(pipeline, server.port, messages), DEADLINE + 5)
    header = bytes((0x82, 126)) + (60_000).to_bytes(2, "big")
    assert received == b"".join(header + message for message in messages)

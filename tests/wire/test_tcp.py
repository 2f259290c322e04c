"""
Tests for L{txpulse.wire.protocol.WebSocketWire} on a real TCP transport: Twisted's
own L{twisted.internet.tcp.Connection} over a connected socket pair, with a
L{MemoryReactorClock} so the test plays the reactor (calls C{doRead} and
C{doWrite} itself). This checks the paths a L{StringTransport} cannot:
writing straight to the socket, the handover of what the kernel did not
take to Twisted's buffer, the measured write backlog and the read size.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from wsproto.frame_protocol import Opcode as WOpcode

from txpulse.core.connection import Connection, Side
from txpulse.core.frames import Opcode
from txpulse.wire.tcp import CHUNK_OVERHEAD, LARGE_READ_SIZE, SMALL_READ_SIZE, heldBytes

from ..support.frames import client_frame, server_frames
from ..support.logs import captured_logs
from ..support.tcppair import TCPPair as Pair


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    p.close()


def test_a_send_goes_straight_to_the_socket(pair: Pair) -> None:
    """
    With Twisted's buffer empty, a message is on the wire before the
    reactor's write phase (nothing queued, no writer registered).
    """
    pair.app.transport.sendTextMessage("hello")
    assert pair.queued() == 0
    assert pair.transport not in pair.reactor.getWriters()
    assert [f.payload for f in server_frames(pair.readAll())] == ["hello"]
    assert pair.wire.bytesOut == 7


def test_what_the_kernel_does_not_take_goes_to_twisted_in_order() -> None:
    """
    A message larger than the socket buffer is partly sent; the rest, and
    every later message, queue in Twisted's buffer and arrive in order.
    """
    pair = Pair(sendBuffer=16 << 10)
    try:
        big = bytes(range(256)) * 4096  # 1 MiB
        pair.app.transport.sendBytesMessage(big)
        assert 0 < pair.queued() < len(big)
        pair.app.transport.sendTextMessage("after")  # buffer not empty: queued behind
        assert pair.transport in pair.reactor.getWriters()
        received = pair.drain()
        frames = server_frames(received)
        assert [f.opcode for f in frames] == [WOpcode.BINARY, WOpcode.TEXT]
        assert frames[0].payload == big and frames[1].payload == "after"
    finally:
        pair.close()


def test_many_small_messages_in_one_read_are_one_send(pair: Pair) -> None:
    """
    Echoes of a read with thousands of messages are joined into one send
    (an I/O vector that long would exceed IOV_MAX).
    """
    batch = b"".join(client_frame(Opcode.TEXT, f"{i:04}".encode()) for i in range(3000))
    pair.wire.dataReceived(batch)
    frames = server_frames(pair.readAll())
    assert [f.payload for f in frames] == [f"{i:04}" for i in range(3000)]


def test_a_full_read_raises_the_read_size(pair: Pair) -> None:
    """
    Small reads keep Twisted's 64 KiB read size; once a read fills it, the
    connection reads 256 KiB at a time.
    """
    pair.peer.sendall(client_frame(Opcode.TEXT, b"small"))
    pair.transport.doRead()
    assert pair.transport.bufferSize == 65536
    pair.peer.sendall(client_frame(Opcode.BINARY, b"x" * (1 << 20)))
    pair.transport.doRead()
    assert pair.transport.bufferSize == LARGE_READ_SIZE


def test_a_full_read_of_tiny_messages_lowers_the_read_size(pair: Pair) -> None:
    """
    A read filled with thousands of tiny messages (a flood) lowers the read
    size to 16 KiB, so that one such peer holds the reactor for a few
    thousand messages per turn, not tens of thousands; a stream of large
    messages raises it again.
    """
    flood = client_frame(Opcode.TEXT, b"x") * 20000
    pair.peer.sendall(flood[: 1 << 16])
    pair.transport.doRead()
    assert pair.transport.bufferSize == SMALL_READ_SIZE
    pair.peer.sendall(client_frame(Opcode.BINARY, b"y" * (1 << 20)))
    for _ in range(4):
        pair.transport.doRead()
    assert pair.transport.bufferSize == LARGE_READ_SIZE


def test_a_steady_reader_behind_a_never_empty_buffer_is_not_dropped() -> None:
    """
    The write backlog is the growth of what is queued since the buffer
    filled, not everything written since: a reader that keeps pace, though
    Twisted's buffer never fully drains (so the producer is never resumed),
    stays connected well past C{maxWriteBuffer} bytes written.
    """
    pair = Pair(maxWriteBuffer=256 << 10, sendBuffer=16 << 10)
    try:
        send = pair.app.transport.sendBytesMessage
        send(b"x" * (200 << 10))  # fills the buffer: paused from now on
        assert pair.wire._writePaused
        for _ in range(200):  # 200 x 8 KiB = 1.6 MiB written while paused
            send(b"y" * (8 << 10))
            pair.readAll(limit=(8 << 10) + 4)
            pair.transport.doWrite()
        assert pair.wire._writePaused, "the buffer should never have drained"
        assert not pair.transport.disconnecting
        assert pair.wire.writeBacklog < 64 << 10
    finally:
        pair.close()


def test_a_peer_that_stops_reading_is_dropped_past_the_limit() -> None:
    """
    When nothing drains, the backlog grows with every write and the
    connection is aborted past C{maxWriteBuffer}, with a log line.
    """
    pair = Pair(maxWriteBuffer=256 << 10, sendBuffer=16 << 10)
    try:
        send = pair.app.transport.sendBytesMessage
        send(b"x" * (200 << 10))
        with captured_logs() as logs:
            for _ in range(40):
                send(b"y" * (8 << 10))
        assert pair.wire.writeBacklog > 256 << 10
        assert any("not reading" in line for line in logs)
        pair.reactor.advance(0)  # an abort completes in the next turn
        assert pair.app.reason is not None
        assert pair.app.reason.value.code == 1006
    finally:
        pair.close()


def test_nothing_reaches_the_socket_after_an_abort(pair: Pair) -> None:
    """
    An aborted connection stays connected until the next reactor turn;
    a message sent meanwhile must not slip out through the direct path.
    """
    pair.wire.abortConnection()
    pair.app.transport.sendTextMessage("too late")
    assert pair.readAll() == b""


def test_an_abort_by_the_transport_stops_the_direct_path(pair: Pair) -> None:
    """
    The same when someone else (a resource, a timeout) aborts the TCP
    transport itself rather than the wire.
    """
    pair.transport.abortConnection()
    pair.app.transport.sendTextMessage("too late")
    assert pair.readAll() == b""


class _SendOnlySocket:
    """
    A socket as on Windows: C{send} but no C{sendmsg}; records each send.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sends: list[int] = []

    def send(self, data: bytes) -> int:
        self.sends.append(len(data))
        return self._sock.send(data)


def test_without_sendmsg_a_few_frames_are_joined(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Where sockets have no C{sendmsg} (Windows), a handful of frames from
    one read go out as one joined C{send}, complete and in order.
    """
    monkeypatch.setattr("txpulse.wire.tcp._HAS_SENDMSG", False)
    sendOnly = _SendOnlySocket(pair.transport.socket)
    pair.wire._socket = sendOnly  # type: ignore[assignment]
    pair.wire.dataReceived(b"".join(client_frame(Opcode.TEXT, f"m{i}".encode()) for i in range(5)))
    data = pair.readAll()
    assert [f.payload for f in server_frames(data)] == [f"m{i}" for i in range(5)]
    assert sendOnly.sends == [len(data)]
    assert pair.queued() == 0


def test_a_slow_reader_of_a_large_message_is_not_dropped_by_the_keepalive() -> None:
    """
    A large message fills Twisted's buffer: a keepalive ping would wait
    behind it, so the peer's pong could only come once it has read the
    whole message. As long as the peer reads (bytes leave the buffer for
    the kernel), that counts as a sign of life: no ping timeout, however
    long the transfer (and the wire keeps reading: one message written by
    the application is no backlog). Once it stops reading, it is pinged
    and closed with 1011 like a silent peer.
    """
    pair = Pair(sendBuffer=16 << 10, pingInterval=1, pingTimeout=1)
    try:
        pair.transport.startReading()
        pair.app.transport.sendBytesMessage(b"x" * (4 << 20))
        assert pair.wire._writePaused
        for _ in range(12):  # 6 s, ping interval and timeout are 1 s each
            pair.clock.advance(0.5)
            pair.readAll(32 << 10)
            pair.transport.doWrite()
        assert not pair.transport.disconnecting
        assert pair.queued() > 0 and pair.transport in pair.reactor.getReaders()
        with captured_logs() as logs:
            for _ in range(3):  # credit for the last read, a ping, its timeout
                pair.clock.advance(1)
        assert any("silent 1s after a ping" in line for line in logs), logs
        assert pair.transport.disconnecting
    finally:
        pair.close()


def test_replies_queued_behind_a_full_buffer_are_coalesced() -> None:
    """
    Small frames handed to Twisted's buffer while it holds earlier bytes
    are joined: one read's thousand pongs become one object, and pongs of
    reads that brought one ping each are appended to the small chunk at the
    end of the buffer, not queued one object each. Order is kept, and
    L{txpulse.wire.tcp.heldBytes} counts the objects' overhead.
    """
    pair = Pair(sendBuffer=16 << 10)
    try:
        pair.app.transport.sendBytesMessage(b"x" * (1 << 20))
        objects = len(pair.transport._tempDataBuffer)
        pair.wire.dataReceived(b"".join(client_frame(Opcode.PING, f"{i:04}".encode()) for i in range(1000)))
        for i in range(1000, 3000):
            pair.wire.dataReceived(client_frame(Opcode.PING, f"{i:04}".encode()))
        # 3000 pongs of 6 bytes: at most one object per 4 KiB.
        assert len(pair.transport._tempDataBuffer) - objects <= 3000 * 6 // 4096 + 2
        assert heldBytes(pair.transport) == pair.queued() + CHUNK_OVERHEAD * (len(pair.transport._tempDataBuffer) + 1)
        received = pair.drain()
        frames = server_frames(received)
        assert frames[0].opcode is WOpcode.BINARY
        assert [f.payload for f in frames[1:]] == [f"{i:04}".encode() for i in range(3000)]
    finally:
        pair.close()


def test_a_ping_flood_is_read_until_the_backlog_passes_half_the_limit() -> None:
    """
    A peer that sends pings and never reads: the wire reads on after
    Twisted's buffer fills (a full buffer alone stops nothing), queuing
    pongs, and stops reading once they pass half of C{maxWriteBuffer}. What
    it then holds is bounded (the buffer when it filled, half the limit,
    the pongs of the read that crossed it); it is not dropped (the other
    half of the limit is the application's). Once the peer has read
    everything, the buffer drains and the wire reads again.
    """
    limit = 256 << 10
    # Default socket buffers: with tiny ones, the kernel's silly-window
    # avoidance can hold a segment back until a timer, and the drain below
    # would depend on time.
    pair = Pair(maxWriteBuffer=limit)
    try:
        pair.transport.startReading()
        pings = client_frame(Opcode.PING, b"p" * 125) * 64
        pair.peer.setblocking(False)
        readsWhilePaused = 0
        for _ in range(5000):
            if pair.transport not in pair.reactor.getReaders():
                break
            try:
                pair.peer.send(pings)
            except BlockingIOError:
                pass
            pair.transport.doRead()
            if pair.wire._writePaused:
                readsWhilePaused += 1
        assert pair.transport not in pair.reactor.getReaders(), "reading never stopped"
        assert readsWhilePaused > 1, "reading stopped as soon as the buffer filled"
        assert limit // 2 < pair.wire.writeBacklog <= limit // 2 + LARGE_READ_SIZE
        held = heldBytes(pair.transport)
        assert held is not None and held <= 2 * LARGE_READ_SIZE + limit // 2
        assert not pair.transport.disconnecting
        for _ in range(1000):
            if pair.transport in pair.reactor.getReaders():
                break
            pair.readAll()
            pair.transport.doWrite()
        assert pair.transport in pair.reactor.getReaders(), "reading did not resume"
        assert not pair.wire._writePaused
    finally:
        pair.close()


class SpyConnection(Connection):
    """
    A server core that records the size of every chunk it is fed.
    """

    def __init__(self) -> None:
        super().__init__(Side.SERVER, max_message_size=None)
        self.fed: list[int] = []

    def receive_data(self, data: bytes) -> None:
        self.fed.append(len(data))
        super().receive_data(data)


def test_a_long_read_of_small_messages_delivers_its_first_16k_first(pair: Pair) -> None:
    """
    A 64 KiB read of small messages (a burst of publishes): those of its
    first 16 KiB reach the application before the core parses the rest,
    so the first is answered (or fanned out) after a quarter of the
    parsing; everything the read produced is still written at once, in
    order.
    """
    frames = [client_frame(Opcode.TEXT, b"%05d" % i + b"x" * 50) for i in range(1200)]
    data = b"".join(frames)[: 1 << 16]
    whole = (1 << 16) // len(frames[0])
    pair.wire._conn = conn = SpyConnection()
    seenAtFirstDelivery: list[list[int]] = []
    record = pair.app.textMessageReceived

    def first(text: str) -> object:
        if not seenAtFirstDelivery:
            seenAtFirstDelivery.append(list(conn.fed))
        return record(text)

    pair.app.textMessageReceived = first  # type: ignore[method-assign]
    pair.wire.dataReceived(data)
    assert conn.fed == [SMALL_READ_SIZE, (1 << 16) - SMALL_READ_SIZE]
    assert seenAtFirstDelivery == [[SMALL_READ_SIZE]], "delivered before the rest was parsed"
    echoed = [f.payload for f in server_frames(pair.drain())]
    assert echoed == [f"{i:05d}" + "x" * 50 for i in range(whole)]


def test_a_connection_reading_large_messages_parses_a_read_whole(pair: Pair) -> None:
    pair.transport.bufferSize = LARGE_READ_SIZE
    pair.wire._conn = conn = SpyConnection()
    frame = client_frame(Opcode.BINARY, b"y" * 100_000)
    pair.wire.dataReceived(frame)
    assert conn.fed == [len(frame)]

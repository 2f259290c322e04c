"""
Tests for L{txpulse.wire.protocol.WebSocketWire} with L{StringTransport} and
L{Clock}: delivery, heartbeats, timeouts, the close handshake and
back-pressure, without a network.

Tests that need no more than a peer can see use the public harness,
L{txpulse.testing} (L{connect}); those that look at writes, timers and
buffers build the wire on a L{CountingTransport} (L{make_wire}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from wsproto.frame_protocol import Opcode as WOpcode

from txpulse.core.connection import Connection, Side
from txpulse.core.exceptions import ConnectionClosed
from txpulse.core.frames import Opcode, encode_frame
from txpulse.testing import WebSocketPeer, connectProtocol
from txpulse.wire.protocol import WebSocketWire, WireOptions

from ..support.apps import RecordingApp
from ..support.frames import client_frame, server_frames
from ..support.logs import captured_logs
from ..support.transports import CountingTransport


def make_wire(app: Any = None, **options: Any) -> tuple[WebSocketWire, CountingTransport, Any, Clock]:
    clock = Clock()
    transport = CountingTransport()
    app = app if app is not None else RecordingApp(echo=True)
    conn = Connection(Side.SERVER, max_message_size=options.pop("max_message_size", 1 << 20))
    options.setdefault("pingInterval", None)
    wire = WebSocketWire(app, conn, clock=clock, options=WireOptions(**options))
    wire.makeConnection(transport)
    return wire, transport, app, clock


def opcodes(transport: CountingTransport) -> list[WOpcode]:
    return [frame.opcode for frame in server_frames(transport.value())]


def close_code(transport: CountingTransport) -> int:
    frames = [f for f in server_frames(transport.value()) if f.opcode is WOpcode.CLOSE]
    assert frames, "no close frame was sent"
    return int(frames[-1].payload[0])


def connect(app: Any = None, **options: Any) -> tuple[WebSocketPeer, Any]:
    """
    A L{txpulse.testing} peer connected to C{app} (default: an echoing
    L{RecordingApp}) through a real resource, keepalive off unless asked:
    for the tests that need no more than a peer can see.
    """
    app = app if app is not None else RecordingApp(echo=True)
    options.setdefault("pingInterval", None)
    return connectProtocol(app, **options), app


def test_negotiation_then_messages_reach_the_application() -> None:
    """
    The application hears C{negotiationStarted(transport)}, then
    C{negotiationFinished()}, then each message with its type.
    """
    wire, transport, app, _ = make_wire(RecordingApp())
    wire.dataReceived(client_frame(Opcode.TEXT, b"hi") + client_frame(Opcode.BINARY, b"\x01"))
    assert app.transport is wire
    assert app.events == [("started", None), ("finished", None), ("text", "hi"), ("bytes", b"\x01")]


def test_replies_to_one_read_go_out_in_one_write() -> None:
    """
    Everything one C{dataReceived} produced (the automatic pong, queued while
    parsing, then the application's answers) is written with a single
    C{writeSequence}.
    """
    wire, transport, app, _ = make_wire()
    batch = b"".join(client_frame(Opcode.TEXT, f"m{i}".encode()) for i in range(32)) + client_frame(Opcode.PING, b"p")
    wire.dataReceived(batch)
    assert transport.writeCalls == 1
    frames = server_frames(transport.value())
    assert frames[0].opcode is WOpcode.PONG and frames[0].payload == b"p"
    assert [f.payload for f in frames[1:]] == [f"m{i}" for i in range(32)]


def test_send_outside_a_callback_is_written_at_once() -> None:
    """
    A message sent from outside a callback (e.g. a timer) is written
    immediately.
    """
    wire, transport, app, _ = make_wire(RecordingApp())
    app.transport.sendTextMessage("tick")
    assert [f.payload for f in server_frames(transport.value())] == ["tick"]


def test_keepalive_pings_after_silence_and_drops_a_dead_peer() -> None:
    """
    After C{pingInterval} of silence a ping goes out; with no frame within
    C{pingTimeout} the connection is closed with 1011 and dropped.
    """
    peer, app = connect(pingInterval=20, pingTimeout=10, closeTimeout=5, autoReply=False)
    peer.advance(19.9)
    assert peer.pings == []
    peer.advance(0.1)
    assert peer.pings == [b""]
    peer.advance(9.9)
    assert peer.closeCode is None and not peer.disconnected
    with captured_logs() as logs:
        peer.advance(0.1)
    assert peer.closeCode == 1011
    assert peer.disconnected and not peer.aborted
    assert any("silent" in line for line in logs)


def test_pong_in_time_keeps_the_connection() -> None:
    """
    A pong within the timeout keeps the connection, and the next ping comes
    C{pingInterval} after it.
    """
    wire, transport, app, clock = make_wire(pingInterval=20, pingTimeout=10)
    clock.advance(20)
    clock.advance(5)
    wire.dataReceived(client_frame(Opcode.PONG, b""))
    clock.advance(10)
    assert not transport.disconnecting
    assert opcodes(transport) == [WOpcode.PING]
    clock.advance(10)
    assert opcodes(transport) == [WOpcode.PING, WOpcode.PING]
    assert ("pong", b"") in app.events


def test_busy_peer_is_not_dropped_for_a_late_pong() -> None:
    """
    Any frame after a ping proves the peer alive: a peer streaming data
    whose pong is late is not timed out.
    """
    wire, transport, app, clock = make_wire(RecordingApp(), pingInterval=20, pingTimeout=10)
    clock.advance(20)
    for _ in range(6):
        clock.advance(5)
        wire.dataReceived(client_frame(Opcode.BINARY, b"data"))
    assert not transport.disconnecting
    assert opcodes(transport) == [WOpcode.PING], "a chatty peer needs no further pings"


def test_chatty_peer_is_never_pinged() -> None:
    """
    Pings are sent only after silence, so a busy connection costs none.
    """
    wire, transport, app, clock = make_wire(RecordingApp(), pingInterval=20, pingTimeout=10)
    for _ in range(10):
        clock.advance(15)
        wire.dataReceived(client_frame(Opcode.TEXT, b"x"))
    assert opcodes(transport) == []


def test_one_timer_per_connection() -> None:
    """
    Heartbeats, pong and idle deadlines share one pending timer, and
    messages do not create timers.
    """
    wire, transport, app, clock = make_wire(RecordingApp(), pingInterval=20, pingTimeout=10, idleTimeout=300)
    assert len(clock.getDelayedCalls()) == 1
    for _ in range(100):
        wire.dataReceived(client_frame(Opcode.TEXT, b"x"))
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(20)
    assert len(clock.getDelayedCalls()) == 1


def test_heartbeat_timer_fires_once_per_cycle() -> None:
    """
    A pong moves the pending deadline to the next ping: the timer fires once
    per heartbeat, not also at the (now moot) pong deadline.
    """
    wire, transport, app, clock = make_wire(RecordingApp(), pingInterval=20, pingTimeout=20)
    clock.advance(20)
    for cycle in range(3):
        clock.advance(0.5)
        wire.dataReceived(client_frame(Opcode.PONG, b""))
        # The only pending call is the next ping, 20 s after the pong; none
        # at the pong deadline (20 s after the ping).
        (call,) = clock.getDelayedCalls()
        assert call.getTime() == clock.seconds() + 20
        clock.advance(19.9)
        assert opcodes(transport) == [WOpcode.PING] * (cycle + 1)
        clock.advance(0.1)
    assert opcodes(transport) == [WOpcode.PING] * 4
    assert not transport.disconnecting


def test_queued_frames_go_out_in_one_write_on_flush() -> None:
    """
    C{queueFrame} queues without writing (and says when a batch starts);
    C{flush} writes the whole batch at once, in order.
    """
    wire, transport, app, clock = make_wire(RecordingApp())
    frames = [encode_frame(Opcode.TEXT, f"m{i}".encode()) for i in range(5)]
    starts = [wire.queueFrame(frame) for frame in frames]
    assert starts == [True, False, False, False, False]
    assert transport.value() == b""
    wire.flush()
    assert transport.writeCalls == 1
    assert [f.payload for f in server_frames(transport.value())] == [f"m{i}" for i in range(5)]
    assert wire.messagesOut == 5
    assert wire.queueFrame(frames[0]) is True


def test_queued_frames_are_dropped_once_closing() -> None:
    """
    Like every send, C{queueFrame} after the close handshake started is
    dropped, and starts no batch.
    """
    wire, transport, app, clock = make_wire(RecordingApp())
    wire.loseConnection()
    assert wire.queueFrame(encode_frame(Opcode.TEXT, b"late")) is False
    wire.flush()
    assert opcodes(transport) == [WOpcode.CLOSE]


def test_idle_timeout_closes_with_1001() -> None:
    """
    No message from the peer for C{idleTimeout} closes with 1001; pongs
    are not messages.
    """
    wire, transport, app, clock = make_wire(pingInterval=10, pingTimeout=10, idleTimeout=30)
    clock.advance(10)
    wire.dataReceived(client_frame(Opcode.PONG, b""))
    clock.advance(10)
    wire.dataReceived(client_frame(Opcode.PONG, b""))
    assert not any(f.opcode is WOpcode.CLOSE for f in server_frames(transport.value()))
    clock.advance(10)
    assert close_code(transport) == 1001


def test_idle_timeout_is_reset_by_messages() -> None:
    """
    A message resets the idle clock.
    """
    peer, app = connect(RecordingApp(), idleTimeout=30)
    peer.advance(25)
    peer.sendText("still here")
    peer.advance(25)
    assert peer.closeCode is None
    peer.advance(5)
    assert peer.closeCode == 1001


def test_peer_close_is_echoed_and_tcp_closed() -> None:
    """
    The peer's close is echoed, the server closes TCP, and the application
    learns the peer's code and reason.
    """
    peer, app = connect()
    peer.close(4000, "done")
    assert peer.closeCode == 4000
    assert peer.disconnected and not peer.aborted
    assert app.reason is not None
    closed = app.reason.value
    assert isinstance(closed, ConnectionClosed)
    assert (closed.code, closed.reason, closed.clean) == (4000, "done", True)
    assert (app.transport.closeCode, app.transport.closeReason) == (4000, "done")


def test_local_close_waits_for_the_peer_then_times_out() -> None:
    """
    C{loseConnection(code, reason)} sends a close; without the peer's reply
    the TCP connection is aborted after C{closeTimeout}.
    """
    wire, transport, app, clock = make_wire(closeTimeout=5)
    app.transport.loseConnection(1001, "bye")
    frames = server_frames(transport.value())
    assert frames[-1].opcode is WOpcode.CLOSE and frames[-1].payload == (1001, "bye")
    assert not transport.disconnecting
    app.transport.loseConnection()  # idempotent while closing
    assert len(server_frames(transport.value())) == 1
    clock.advance(5)
    assert transport.aborted


def test_local_close_completed_by_peer() -> None:
    """
    The peer's answer to our close completes the handshake: TCP closes and
    the close timer is gone.
    """
    peer, app = connect(closeTimeout=5)
    app.transport.loseConnection()
    peer.flush()  # the peer's echo travels
    assert peer.disconnected and not peer.aborted
    assert peer.clock.getDelayedCalls() == []
    assert app.reason.value.code == 1000 and app.reason.value.codeSent == 1000


def test_connection_lost_without_close_is_1006() -> None:
    """
    A TCP connection that ends without a close frame reports 1006.
    """
    peer, app = connect(pingInterval=20)
    peer.disconnect()
    assert app.reason.value.code == 1006 and not app.reason.value.clean
    assert peer.clock.getDelayedCalls() == []


def test_protocol_error_closes_and_logs() -> None:
    """
    A malformed frame gets its close code and a log line naming the error.
    """
    peer, app = connect()
    with captured_logs() as logs:
        peer.sendFrame(Opcode.TEXT, b"hi", masked=False)
    assert peer.closeCode == 1002 and peer.disconnected
    assert any("unmasked frame from client" in line for line in logs)


def test_application_error_closes_with_1011_without_details() -> None:
    """
    An exception in the application is logged and closes with 1011 and an
    empty reason.
    """

    class Broken(RecordingApp):
        def textMessageReceived(self, message: str) -> None:
            raise RuntimeError("secret internals")

    peer, app = connect(Broken())
    with captured_logs() as logs:
        peer.sendText("x")
    assert (peer.closeCode, peer.closeReason) == (1011, "")
    assert peer.disconnected
    assert any("secret internals" in line for line in logs)


def test_messages_sent_after_close_are_dropped() -> None:
    """
    Sending after the close handshake started is silently dropped (a timer
    cannot know the peer just closed).
    """
    wire, transport, app, clock = make_wire()
    app.transport.loseConnection()
    before = transport.value()
    app.transport.sendTextMessage("late")
    app.transport.ping(b"late")
    assert transport.value() == before


def test_application_ping_and_pong() -> None:
    """
    C{ping(payload)} sends a ping; the peer's pong reaches C{pongReceived}.
    """
    peer, app = connect()
    app.transport.ping(b"rtt")
    assert peer.pings == [b"rtt"]
    peer.flush()  # the peer's pong travels
    assert ("pong", b"rtt") in app.events


class Producer:
    def __init__(self) -> None:
        self.state = "producing"

    def pauseProducing(self) -> None:
        self.state = "paused"

    def resumeProducing(self) -> None:
        self.state = "producing"

    def stopProducing(self) -> None:
        self.state = "stopped"


def test_attached_producer_follows_the_transport_buffer() -> None:
    """
    The application's producer is paused when the transport's buffer fills,
    resumed when it drains, and stopped when the connection goes.
    """
    wire, transport, app, clock = make_wire()
    producer = Producer()
    app.transport.attachProducer(producer)
    assert transport.producer is wire, "the wire is the transport's producer"
    wire.pauseProducing()
    assert producer.state == "paused"
    wire.resumeProducing()
    assert producer.state == "producing"
    app.transport.detachProducer()
    wire.pauseProducing()
    assert producer.state == "producing"
    wire.resumeProducing()
    app.transport.attachProducer(producer)
    wire.connectionLost()
    assert producer.state == "stopped"


def test_peer_that_does_not_read_is_dropped_past_the_write_limit() -> None:
    """
    While the transport's buffer is full, at most C{maxWriteBuffer} bytes
    more are accepted; past that the connection is aborted and logged.
    """
    wire, transport, app, clock = make_wire(maxWriteBuffer=10_000)
    wire.pauseProducing()
    for _ in range(9):
        app.transport.sendBytesMessage(b"x" * 1000)
    assert not transport.aborted
    with captured_logs() as logs:
        app.transport.sendBytesMessage(b"x" * 1000)
    assert transport.aborted
    assert any("not reading" in line for line in logs)


def test_one_large_message_that_fills_the_buffer_is_not_counted() -> None:
    """
    The write that fills the transport's buffer (here a message larger than
    the limit) is allowed; only writes made while already paused count.
    """

    class PausingTransport(CountingTransport):
        def writeSequence(self, data: Any) -> None:
            super().writeSequence(data)
            if self.producer is not None:
                self.producer.pauseProducing()

    clock = Clock()
    transport = PausingTransport()
    app = RecordingApp()
    wire = WebSocketWire(
        app, Connection(Side.SERVER), clock=clock, options=WireOptions(pingInterval=None, maxWriteBuffer=10_000)
    )
    wire.makeConnection(transport)
    app.transport.sendBytesMessage(b"x" * 50_000)
    assert not transport.aborted
    app.transport.sendBytesMessage(b"x" * 20_000)
    assert transport.aborted


def test_write_limit_counts_only_while_the_buffer_is_full() -> None:
    """
    A reader that keeps up (buffer drained between bursts) is never dropped.
    """
    wire, transport, app, clock = make_wire(maxWriteBuffer=10_000)
    for _ in range(20):
        wire.pauseProducing()
        app.transport.sendBytesMessage(b"x" * 5000)
        wire.resumeProducing()
    assert not transport.aborted


def test_slow_application_pauses_reading_and_keeps_order() -> None:
    """
    A message handler that returns a pending Deferred stops reading from the
    peer; later messages wait, then arrive in order once it fires.
    """
    waits: list[Deferred[None]] = []

    class Slow(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None]:
            self.events.append(("text", message))
            d: Deferred[None] = Deferred()
            waits.append(d)
            return d

    wire, transport, app, clock = make_wire(Slow())
    wire.dataReceived(client_frame(Opcode.TEXT, b"1") + client_frame(Opcode.TEXT, b"2"))
    assert app.messageEvents() == [("text", "1")]
    assert transport.producerState == "paused"
    wire.dataReceived(client_frame(Opcode.TEXT, b"3"))
    assert app.messageEvents() == [("text", "1")]
    waits[0].callback(None)
    assert app.messageEvents() == [("text", "1"), ("text", "2")]
    assert transport.producerState == "paused"
    waits[1].callback(None)
    assert app.messageEvents() == [("text", "1"), ("text", "2"), ("text", "3")]
    waits[2].callback(None)
    assert transport.producerState == "producing"


def test_keepalive_is_suspended_while_reading_is_paused() -> None:
    """
    While a slow handler keeps reading paused, pongs cannot be read, so the
    keepalive must not drop the connection; messages still wait in order and
    nothing is delivered after the connection is lost.
    """
    gate: Deferred[None] = Deferred()

    class Slow(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None] | None:
            self.events.append(("text", message))
            return gate if message == "slow" else None

    wire, transport, app, clock = make_wire(Slow(), pingInterval=10, pingTimeout=5, idleTimeout=30)
    wire.dataReceived(client_frame(Opcode.TEXT, b"slow") + client_frame(Opcode.TEXT, b"next"))
    clock.advance(120)
    assert not transport.disconnecting
    gate.callback(None)
    assert app.messageEvents() == [("text", "slow"), ("text", "next")]
    assert transport.producerState == "producing"


def test_nothing_is_delivered_after_connection_lost() -> None:
    """
    Messages held back by a slow handler are dropped if the connection goes.
    """
    gate: Deferred[None] = Deferred()

    class Slow(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None]:
            self.events.append(("text", message))
            return gate

    wire, transport, app, clock = make_wire(Slow())
    wire.dataReceived(client_frame(Opcode.TEXT, b"a") + client_frame(Opcode.TEXT, b"b"))
    wire.connectionLost()
    gate.callback(None)
    assert app.messageEvents() == [("text", "a")]


def test_coroutine_handler_is_awaited() -> None:
    """
    An C{async def} handler works like one returning a Deferred.
    """
    gate: Deferred[None] = Deferred()

    class Async(RecordingApp):
        async def textMessageReceived(self, message: str) -> None:  # type: ignore[override]
            self.events.append(("text", message))
            await gate

    wire, transport, app, clock = make_wire(Async())
    wire.dataReceived(client_frame(Opcode.TEXT, b"a") + client_frame(Opcode.TEXT, b"b"))
    assert app.messageEvents() == [("text", "a")]
    gate.callback(None)
    assert app.messageEvents() == [("text", "a"), ("text", "b")]


def test_failed_deferred_closes_with_1011() -> None:
    """
    A handler's Deferred that fails is treated like a raised exception.
    """
    d: Deferred[None] = Deferred()

    class Failing(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None]:
            return d

    wire, transport, app, clock = make_wire(Failing())
    wire.dataReceived(client_frame(Opcode.TEXT, b"a"))
    with captured_logs():
        d.errback(RuntimeError("boom"))
    assert server_frames(transport.value())[-1].payload == (1011, "")


def test_a_full_write_buffer_alone_does_not_stop_reading() -> None:
    """
    When the transport pauses the wire as a producer (its write buffer is
    full) the wire still reads from the peer: a peer streaming both ways
    fills the buffer all the time, and two peers that stopped reading at
    that point would wait for each other for ever. What the peer sends is
    still answered.
    """
    wire, transport, app, clock = make_wire()
    wire.pauseProducing()
    assert transport.producerState == "producing"
    wire.dataReceived(client_frame(Opcode.TEXT, b"still read"))
    assert app.messageEvents() == [("text", "still read")]
    assert [f.payload for f in server_frames(transport.value())] == ["still read"]


def test_a_backlog_past_half_the_write_limit_stops_reading_until_the_buffer_drains() -> None:
    """
    Reading stops once what was queued while the buffer is full passes half
    of C{maxWriteBuffer} (checked after each write: here the echoes of the
    peer's own messages), not before; the wire reads again when the
    transport's buffer has drained (C{resumeProducing}), and a later full
    buffer starts counting from zero.
    """
    wire, transport, app, clock = make_wire(maxWriteBuffer=10_000)
    wire.pauseProducing()
    for _ in range(4):  # 4 echoes of 1,000 bytes: 4,016 queued, under half
        wire.dataReceived(client_frame(Opcode.BINARY, b"x" * 1000))
    assert transport.producerState == "producing"
    wire.dataReceived(client_frame(Opcode.BINARY, b"x" * 1000))  # 5,020 > 5,000
    assert transport.producerState == "paused"
    assert not transport.aborted
    wire.resumeProducing()
    assert transport.producerState == "producing"
    wire.pauseProducing()
    wire.dataReceived(client_frame(Opcode.BINARY, b"x" * 1000))
    assert transport.producerState == "producing"


def test_application_and_write_backlog_hold_reading_independently() -> None:
    """
    A pending handler and a write backlog are two independent reasons to
    stop reading: reading resumes only once neither holds, whichever ends
    first.
    """
    gate: Deferred[None] = Deferred()

    class Slow(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None] | None:
            self.events.append(("text", message))
            return gate if message == "slow" else None

    wire, transport, app, clock = make_wire(Slow(), maxWriteBuffer=10_000)
    wire.dataReceived(client_frame(Opcode.TEXT, b"slow") + client_frame(Opcode.TEXT, b"next"))
    assert transport.producerState == "paused"
    wire.pauseProducing()
    app.transport.sendBytesMessage(b"x" * 6000)  # a backlog past half the limit
    wire.resumeProducing()  # the buffer drained, the handler still holds
    assert transport.producerState == "paused"
    wire.pauseProducing()
    app.transport.sendBytesMessage(b"x" * 6000)
    gate.callback(None)  # the handler finished, the backlog still holds
    assert app.messageEvents() == [("text", "slow"), ("text", "next")]
    assert transport.producerState == "paused"
    wire.resumeProducing()
    assert transport.producerState == "producing"


def test_closing_reads_again_despite_a_full_write_buffer() -> None:
    """
    Once the close handshake starts, the peer's close frame must be read
    however far behind the peer is (the core answers nothing more, so
    reading adds nothing to the backlog): reading resumes, the peer's close
    completes the handshake, and a drain afterwards changes nothing.
    """
    wire, transport, app, clock = make_wire(closeTimeout=5, maxWriteBuffer=10_000)
    wire.pauseProducing()
    app.transport.sendBytesMessage(b"x" * 6000)
    assert transport.producerState == "paused"
    wire.loseConnection(1001)
    assert transport.producerState == "producing"
    wire.dataReceived(client_frame(Opcode.PING, b"late") + client_frame(Opcode.CLOSE, (1001).to_bytes(2, "big")))
    assert opcodes(transport) == [WOpcode.BINARY, WOpcode.CLOSE]  # no pong once closing
    assert transport.disconnecting
    wire.resumeProducing()
    assert transport.producerState == "producing"


def test_keepalive_drops_a_peer_that_reads_nothing_while_reading_is_paused() -> None:
    """
    While reading is paused for a write backlog, a peer whose buffer shows
    no progress (here: a transport that does not show its buffer at all)
    gets no credit: it is pinged after C{pingInterval}, and closed with
    1011 C{pingTimeout} later, as a silent peer.
    """
    wire, transport, app, clock = make_wire(pingInterval=10, pingTimeout=5, maxWriteBuffer=10_000)
    wire.pauseProducing()
    app.transport.sendBytesMessage(b"x" * 6000)
    assert transport.producerState == "paused"
    clock.advance(10)
    assert opcodes(transport) == [WOpcode.BINARY, WOpcode.PING]
    with captured_logs():
        clock.advance(5)
    assert close_code(transport) == 1011
    assert transport.disconnecting


def test_keepalive_drops_a_non_reader_the_application_waits_for() -> None:
    """
    An application that holds reading until what it writes has reached
    the peer (the hub, while a replay waits for its reader) must not keep
    a peer that reads nothing alive: while our writes are paused the
    keepalive judges the peer by what it drains, as it does for a write
    backlog, and closes a silent one with 1011.
    """
    gate: Deferred[None] = Deferred()

    class Waiting(RecordingApp):
        def textMessageReceived(self, message: str) -> Deferred[None] | None:
            self.events.append(("text", message))
            return gate

    wire, transport, app, clock = make_wire(Waiting(), pingInterval=10, pingTimeout=5, idleTimeout=None)
    wire.dataReceived(client_frame(Opcode.TEXT, b"replay") + client_frame(Opcode.TEXT, b"next"))
    wire.pauseProducing()
    app.transport.sendBytesMessage(b"x" * 6000)
    clock.advance(10)
    assert opcodes(transport)[-1] == WOpcode.PING
    with captured_logs():
        clock.advance(5)
    assert close_code(transport) == 1011
    assert transport.disconnecting

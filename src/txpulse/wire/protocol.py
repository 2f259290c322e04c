# -*- test-case-name: tests.wire.test_protocol -*-
"""
The Twisted adapter around the sans-IO core: L{WebSocketWire}.

This is where a byte enters (L{WebSocketWire.dataReceived}) and where a
message leaves for the application (C{textMessageReceived} and friends). It
is also the only place that knows about time (heartbeats, timeouts) and
about the transport's buffers (back-pressure).

How its bytes reach the kernel (straight to the socket when Twisted's
buffer is empty, the read size) is L{txpulse.wire.tcp}'s business; when sends
made outside a read are written (the first of a reactor turn at once, the
rest at its end), L{txpulse.wire.turns}'; what it talks to above is
described in L{txpulse.wire.interfaces}.

The wire is both sides of the adapter at once: the L{IProtocol} the TCP (or
TLS) transport talks to, and the C{WebSocketTransport} the application's
protocol talks to (C{sendTextMessage}, C{loseConnection}, ...). One object
per connection keeps the per-connection memory small.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IProtocol, IPushProducer, IReactorTime, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.connection import Close, Connection, Pong, State
from ..core.exceptions import ConnectionClosed, InvalidState
from ..core.frames import CloseCode
from ..logs.peers import peerOf as _peerOf
from ..settings import DEFAULT_MAX_WRITE_BUFFER, ConnectionSettings
from .interfaces import ConnectionObserver, WebSocketProtocol
from .tcp import LARGE_READ_SIZE, SMALL_READ_SIZE, directSocket, heldBytes, queuedBytes, writeChunks
from .turns import MAX_BATCH, TurnFlusher, flusherFor

if TYPE_CHECKING:  # pragma: no cover
    from twisted.web.server import Request

__all__ = ["WireOptions", "WebSocketWire", "WebSocketProtocol", "ConnectionObserver", "DEFAULT_MAX_WRITE_BUFFER"]

_log = Logger()

#: A full read whose messages average at least 2 ** this many bytes (4 KiB)
#: counts as a stream of large messages (see L{WebSocketWire.dataReceived}).
_LARGE_MESSAGE_BITS = 12

# Why reading from the transport is paused: each reason is one bit of
# WebSocketWire._readHolds, and reading resumes only when none is left.
#: The application returned an awaitable it has not finished with.
_HOLD_APPLICATION = 1
#: The peer has fallen behind: what we queued for it since the transport's
#: buffer filled (L{WebSocketWire.writeBacklog}) passed half of
#: C{maxWriteBuffer}, so we stop reading what it sends (every ping or echoed
#: message would add to the queue) until the buffer drains. TCP's own flow
#: control then holds the peer back. A full buffer alone is no reason: a
#: peer that writes as much as it reads (full duplex, pipelining) fills it
#: all the time, and two peers that both stopped reading then would wait
#: for each other for ever.
_HOLD_WRITES = 2

#: The server's connection settings, whose defaults L{WireOptions} has.
_SERVER_DEFAULTS = ConnectionSettings()


def _dropped() -> None:
    """
    A send after the close handshake started: dropped, not an error (see the
    comment above L{WebSocketWire.sendTextMessage}); the one place that says
    so, called only when a send is dropped.
    """
    _log.debug("Dropping a message sent after the WebSocket started closing")


@dataclass(frozen=True, slots=True)
class WireOptions:
    """
    Timing and buffering settings, shared by every connection of a resource
    (or client endpoint).

    @ivar pingInterval: seconds of silence from the peer after which a ping
        is sent; C{None} disables keepalive.
    @ivar pingTimeout: seconds to wait after that ping for I{any} frame from
        the peer (a pong, or data: a busy peer is alive even if its pong is
        late); then the connection is closed with 1011 and dropped.
    @ivar idleTimeout: seconds without a message (text or binary) from the
        peer after which the connection is closed with 1001; C{None} for
        never.
    @ivar closeTimeout: seconds to wait for the peer to finish the close
        handshake (and for the TCP connection to go) before aborting it.
    @ivar maxWriteBuffer: how much memory (in bytes, counting each queued
        object's overhead, see L{txpulse.wire.tcp.heldBytes}) the queue for a
        peer may grow once the transport's buffer is full (see
        L{WebSocketWire.writeBacklog}); past it the connection is aborted.
        Once the queue passes half of it, the peer is no longer read from
        until the transport's buffer drains, so replies to the peer's own
        frames (pongs, echoes) stop there, plus the replies to the read
        that crossed it; the other half is for what the application sends.
    @ivar observer: told when each connection opens and closes.
    """

    # The defaults and the checks are those of ConnectionSettings (the
    # server's), where each setting is declared once.
    pingInterval: float | None = _SERVER_DEFAULTS.pingInterval
    pingTimeout: float = _SERVER_DEFAULTS.pingTimeout
    idleTimeout: float | None = _SERVER_DEFAULTS.idleTimeout
    closeTimeout: float = _SERVER_DEFAULTS.closeTimeout
    maxWriteBuffer: int = _SERVER_DEFAULTS.maxWriteBuffer
    observer: ConnectionObserver | None = None

    def __post_init__(self) -> None:
        ConnectionSettings(
            pingInterval=self.pingInterval,
            pingTimeout=self.pingTimeout,
            idleTimeout=self.idleTimeout,
            closeTimeout=self.closeTimeout,
            maxWriteBuffer=self.maxWriteBuffer,
        )

    @classmethod
    def fromSettings(cls, settings: ConnectionSettings, observer: ConnectionObserver | None = None) -> WireOptions:
        """
        The wire's share of C{settings}: keepalive, timeouts and the write
        buffer.
        """
        return cls(
            pingInterval=settings.pingInterval,
            pingTimeout=settings.pingTimeout,
            idleTimeout=settings.idleTimeout,
            closeTimeout=settings.closeTimeout,
            maxWriteBuffer=settings.maxWriteBuffer,
            observer=observer,
        )


@implementer(IProtocol, IPushProducer)
class WebSocketWire:
    """
    Drives a core L{Connection} over a Twisted transport and presents the
    C{WebSocketTransport} API to the application's protocol.

    Public attributes for the application (additions to Twisted's
    C{WebSocketTransport}; read-only by convention):

    @ivar transport: the underlying byte transport (TCP or TLS).
    @ivar subprotocol: the negotiated subprotocol, or C{None}.
    @ivar request: the upgrade L{Request} (server side), else C{None}.
    @ivar identity: what the resource's accept hook returned, else C{None}.
    @ivar closeCode: the close code the peer sent (1005 for none), or 1006
        when the connection ended without its close frame; C{None} while
        open.
    @ivar closeReason: the close reason the peer sent.
    @ivar openedAt: when the WebSocket opened (clock seconds).
    @ivar messagesIn: messages received; C{messagesOut}: messages sent.
    @ivar bytesIn: bytes received; C{bytesOut}: bytes written (framing
        included).
    @ivar pingRoundTrip: the last keepalive ping's round-trip time in
        seconds, or C{None}.
    """

    __slots__ = (
        "_app",
        "_conn",
        "_clock",
        "_options",
        "transport",
        "subprotocol",
        "request",
        "identity",
        "closeCode",
        "closeReason",
        "_dispatching",
        "_pending",
        "_timer",
        "_lastReceived",
        "_lastMessage",
        "_pingSentAt",
        "_closing",
        "_writePaused",
        "_bufferedWhilePaused",
        "_queuedAtPause",
        "_socket",
        "_producer",
        "_connected",
        "_transportClosing",
        "_readHolds",
        "_drainMark",
        "_linger",
        "_batch",
        "_turns",
        "openedAt",
        "messagesIn",
        "messagesOut",
        "bytesIn",
        "bytesOut",
        "pingRoundTrip",
    )

    def __init__(
        self,
        app: WebSocketProtocol,
        conn: Connection,
        *,
        clock: IReactorTime,
        options: WireOptions,
        subprotocol: str | None = None,
        request: Request | None = None,
        identity: object = None,
    ) -> None:
        self._app = app
        self._conn = conn
        self._clock = clock
        self._options = options
        self.transport: ITransport | None = None
        self.subprotocol = subprotocol
        self.request = request
        self.identity = identity
        self.closeCode: int | None = None
        self.closeReason = ""
        self._dispatching = False
        self._pending: list[object] | None = None
        self._timer: IDelayedCall | None = None
        self._lastReceived = 0.0
        self._lastMessage = 0.0
        self._pingSentAt: float | None = None
        self._closing = False
        self._writePaused = False
        self._bufferedWhilePaused = 0
        self._queuedAtPause = 0
        self._socket: socket.socket | None = None
        self._producer: IPushProducer | None = None
        self._connected = False
        self._transportClosing = False
        self._readHolds = 0
        self._drainMark = 0
        self._linger = True
        self._batch = -1
        # The reactor's TurnFlusher, looked up at the first send outside a
        # read (most connections of a handshake flood never make one).
        self._turns: TurnFlusher | None = None
        self.openedAt = 0.0
        self.messagesIn = self.messagesOut = self.bytesIn = self.bytesOut = 0
        self.pingRoundTrip: float | None = None

    # -- IProtocol ------------------------------------------------------------

    def makeConnection(self, transport: ITransport) -> None:
        """
        Attach to C{transport} (the connection has already been upgraded) and
        tell the application the WebSocket is open.
        """
        self.transport = transport
        self._connected = True
        self._socket = directSocket(transport)
        transport.registerProducer(self, True)  # type: ignore[attr-defined]
        now = self._clock.seconds()
        self.openedAt = self._lastReceived = self._lastMessage = now
        self._scheduleTimer(now)
        observer = self._options.observer
        if observer is not None:
            observer.connectionOpened(self)
        self._dispatching = True
        try:
            self._app.negotiationStarted(self)
            self._app.negotiationFinished()
        except Exception:
            _log.failure("Application error while opening the WebSocket")
            self._conn.fail(CloseCode.INTERNAL_ERROR)
        finally:
            self._dispatching = False
        self._flush()

    def connectionMade(self) -> None:
        """
        Part of L{IProtocol}; the work happens in L{makeConnection}.
        """

    def dataReceived(self, data: bytes) -> None:
        """
        Feed bytes from the network to the core, hand the resulting messages
        to the application, then write everything they produced (automatic
        replies and the application's answers) in one C{writeSequence}.
        """
        conn = self._conn
        size = len(data)
        self.bytesIn += size
        if self._timer is not None:
            self._lastReceived = self._clock.seconds()
        early = 0
        if size > SMALL_READ_SIZE and self._socket is not None and self.transport.bufferSize != LARGE_READ_SIZE:  # type: ignore[union-attr]
            # A long read that may hold many small messages (a burst of
            # publishes, say): deliver those of its first 16 KiB before
            # parsing the rest, so the first of them is answered (or fanned
            # out) after a quarter of the parsing. Everything is still
            # written once, at the end.
            conn.receive_data(data[:SMALL_READ_SIZE])
            events = conn.events_received()
            early = len(events)
            if events:
                if self._pending is not None:
                    self._pending.extend(events)
                else:
                    self._deliver(events)
            data = data[SMALL_READ_SIZE:]
        conn.receive_data(data)
        events = conn.events_received()
        if self._socket is not None and size >= self.transport.bufferSize:  # type: ignore[union-attr]
            # A full read: the peer is streaming. Large messages: read more
            # per turn (fewer reads and parser passes). Small ones: read
            # less, so that a peer flooding tiny messages (thousands per
            # read) cannot hold the reactor for long while every other
            # connection waits for its turn.
            large = early + len(events) <= size >> _LARGE_MESSAGE_BITS
            self.transport.bufferSize = LARGE_READ_SIZE if large else SMALL_READ_SIZE  # type: ignore[union-attr]
        if events:
            if self._pending is not None:
                self._pending.extend(events)
            else:
                self._deliver(events)
        if conn.error is not None and not self._closing:
            _log.info(
                "WebSocket protocol error from {peer}: {error} (closing with {code})",
                peer=_peerOf(self),
                error=str(conn.error),
                code=conn.error.closeCode,
            )
        self._flush()

    def readConnectionLost(self) -> None:
        """
        The peer half-closed (EOF): it will send nothing more. What was
        already written still goes out, then the transport closes.
        """
        self._conn.receive_eof()
        if self.transport is not None:
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        The transport is gone: tell the application, with the close code and
        reason the peer sent, in a L{ConnectionClosed}.
        """
        if reason is None:
            reason = Failure(ConnectionDone())
        if not self._connected:
            return
        self._connected = False
        self._pending = None
        conn = self._conn
        conn.receive_eof()
        self._cancelTimer()
        received = conn.close_received
        if received is None:
            self.closeCode, self.closeReason = CloseCode.ABNORMAL_CLOSURE, ""
        else:
            self.closeCode, self.closeReason = received.code, received.reason
        sent = conn.close_sent
        closed = ConnectionClosed(
            self.closeCode,
            self.closeReason,
            codeSent=None if sent is None else sent.code,
            clean=received is not None and sent is not None,
        )
        closed.__cause__ = reason.value
        if self._producer is not None:
            self._producer.stopProducing()
            self._producer = None
        try:
            self._app.connectionLost(Failure(closed))
        except Exception:
            _log.failure("Application error in connectionLost")
        observer = self._options.observer
        if observer is not None:
            observer.connectionClosed(self)
        # Nothing is delivered to the application any more: let go of it,
        # which breaks the cycle through its C{transport} (this wire). With
        # the channel letting go of the wire, a closed connection is freed
        # by reference counting, not left for the cyclic collector (whose
        # passes, with thousands of connections open, cost more the more
        # garbage they find; see txpulse.server.collector).
        self._app = None  # type: ignore[assignment]

    # -- delivery to the application ------------------------------------------

    def _deliver(self, events: list[Any]) -> None:
        app = self._app
        self._dispatching = True
        try:
            for index, event in enumerate(events):
                kind = type(event)
                result: object = None
                try:
                    if kind is str:
                        self._lastMessage = self._lastReceived
                        self.messagesIn += 1
                        result = app.textMessageReceived(event)
                    elif kind is bytes:
                        self._lastMessage = self._lastReceived
                        self.messagesIn += 1
                        result = app.bytesMessageReceived(event)
                    elif kind is Pong:
                        self._pongReceived()
                        app.pongReceived(event.payload)
                    elif kind is Close:
                        self._startClosing()
                    else:
                        pingReceived = getattr(app, "pingReceived", None)
                        if pingReceived is not None:
                            pingReceived(event.payload)
                except Exception:
                    self._applicationFailed(Failure())
                    return
                if result is not None and (isinstance(result, Deferred) or inspect.isawaitable(result)):
                    if self._waitFor(result, events[index + 1 :]):
                        return
        finally:
            self._dispatching = False

    def _waitFor(self, result: Awaitable[object], rest: list[Any]) -> bool:
        """
        The application returned an awaitable: stop reading until it is done.

        @return: whether delivery must stop here (the awaitable is pending).
        """
        d: Deferred[object] = result if isinstance(result, Deferred) else ensureDeferred(result)  # type: ignore[arg-type]
        fired: list[bool] = []

        def noteFired(value: object) -> object:
            fired.append(True)
            return value

        d.addBoth(noteFired)
        if fired:
            d.addErrback(self._applicationFailed)
            return False
        self._pending = list(rest)
        # Answers to the messages held back must go out before the echo of
        # a close that arrived with them.
        self._conn.hold_close_reply = True
        self._pauseReading(_HOLD_APPLICATION)
        d.addCallbacks(self._resumeDelivery, self._applicationFailed)
        return True

    def _resumeDelivery(self, _: object) -> None:
        pending = self._pending
        self._pending = None
        self._conn.hold_close_reply = False
        if not self._connected:
            return
        self._resumeReading(_HOLD_APPLICATION)
        if pending:
            self._deliver(pending)
        self._flush()

    def _pauseReading(self, reason: int) -> None:
        """
        Stop reading from the transport for C{reason} (a C{_HOLD_*} bit), in
        addition to any other reason already holding it.
        """
        holds = self._readHolds
        self._readHolds = holds | reason
        if not holds and self.transport is not None:
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def _resumeReading(self, reasons: int) -> None:
        """
        C{reasons} (C{_HOLD_*} bits) no longer hold reading; it resumes if
        no other reason does.
        """
        holds = self._readHolds
        if holds & reasons:
            self._readHolds = holds & ~reasons
            if not self._readHolds and self.transport is not None:
                self.transport.resumeProducing()  # type: ignore[attr-defined]

    def _pongReceived(self) -> None:
        """
        A pong: if it answers our keepalive ping, record the round trip.
        """
        sentAt = self._pingSentAt
        if sentAt is not None:
            self._pingSentAt = None
            now = self._clock.seconds()
            self.pingRoundTrip = rtt = now - sentAt
            timer = self._timer
            if timer is not None and not self._closing:
                # Move the pong deadline to the next ping, so the timer fires
                # once per heartbeat rather than twice (at the pong deadline
                # only to find the next ping a few milliseconds away).
                delay = self._timerDelay(now)
                if delay is not None:
                    timer.reset(delay)
            observer = self._options.observer
            if observer is not None:
                observer.pingRoundTrip(self, rtt)

    def _applicationFailed(self, failure: Failure) -> None:
        """
        An application callback raised: log the traceback, close with 1011
        and no reason (internal details stay internal).
        """
        _log.failure("Application error handling a WebSocket message", failure)
        self._pending = None
        self._conn.hold_close_reply = False
        self._conn.fail(CloseCode.INTERNAL_ERROR)
        if not self._dispatching:
            self._flush()

    # -- writing ---------------------------------------------------------------

    def _flush(self) -> None:
        """
        Write what the core queued; close the transport when the core says so.
        """
        conn = self._conn
        chunks = conn.data_to_send()
        transport = self.transport
        if transport is None or not self._connected:
            return
        if chunks:
            wasPaused = self._writePaused
            written = writeChunks(transport, self._socket, chunks)
            self.bytesOut += written
            if not wasPaused and self._writePaused:
                # This write filled the buffer: what has reached the kernel
                # so far, to tell later whether the peer reads (keepalive).
                self._drainMark = self._drained() or 0
            elif wasPaused:
                # Only what is written while already paused counts: the write
                # that filled the buffer (e.g. one large message) is not the
                # peer's fault.
                self._bufferedWhilePaused += written
                backlog = self.writeBacklog
                limit = self._options.maxWriteBuffer
                if backlog > limit:
                    _log.warn(
                        "WebSocket peer {peer} is not reading: {size} bytes queued, over the "
                        "{limit}-byte write buffer limit; dropping the connection",
                        peer=_peerOf(self),
                        size=backlog,
                        limit=limit,
                    )
                    self.abortConnection()
                    return
                if backlog > limit >> 1 and not self._closing:
                    # The peer has fallen behind: stop reading it (checked
                    # after each write, so the hold engages while replies
                    # are being produced); resumeProducing lifts it once
                    # the buffer has drained.
                    self._pauseReading(_HOLD_WRITES)
        if not self._closing and conn.close_expected():
            self._startClosing()
        if conn.should_close_transport() and not self._transportClosing:
            self._transportClosing = True
            # A transport does not finish closing while a producer is
            # registered (ITransport.loseConnection; TLS waits for it before
            # sending close_notify), so let go of it first.
            transport.unregisterProducer()  # type: ignore[attr-defined]
            if (
                conn.close_received is None
                and self._linger
                and isinstance(transport, FileDescriptor)
                and not getattr(transport, "TLS", False)
            ):
                # The peer has not finished sending (we failed it, or it has
                # not answered our close): closing now with its data unread
                # makes the kernel send a reset, which can destroy our close
                # frame before the peer reads it. Half-close instead, keep
                # reading (and discarding) until the peer closes; the close
                # timer bounds the wait. (TLS cannot half-close: neither
                # listenSSL's wrapper nor a tcp.Connection after startTLS,
                # whose loseWriteConnection would shut the raw socket down
                # under the TLS layer.)
                transport.loseWriteConnection()
                self._resumeReading(_HOLD_APPLICATION | _HOLD_WRITES)
            else:
                transport.loseConnection()

    # Sending after the close handshake started is dropped, not an error: a
    # timer-driven sender cannot know the peer's close just arrived. The core
    # raises InvalidState in that case; catching it (rather than checking the
    # state first) keeps the common path to one state check, and a try costs
    # nothing until it catches. The drop itself (the rule's one log line) is
    # _dropped, called only when a send is dropped; the less frequent senders
    # (ping, and sendFrame: a broadcast's first message of a turn) share
    # _send. The hot ones keep their try inline on purpose: sendTextMessage
    # and sendBytesMessage run once per message, queueFrame once per
    # receiver of a broadcast's every other message, and routing them
    # through _send costs a second call per message (measured on a 32-byte
    # text on a StringTransport, CPython 3.11: 164 -> 212 ns inside a read,
    # +29%; 637 -> 692 ns when it flushes, +9%). A generated method would
    # lose Twisted's parameter names (text=, data=).

    def sendTextMessage(self, text: str) -> None:
        """
        Send a text message. From inside this connection's read it goes
        out with the read's other replies; from anywhere else, the first
        message of a reactor turn is written at once and the ones after it
        at the end of the turn (see L{txpulse.wire.turns}).
        """
        try:
            self._conn.send_text(text)
        except InvalidState:
            _dropped()
            return
        self.messagesOut += 1
        if not self._dispatching:
            self._sentOutsideRead(len(text))

    def sendBytesMessage(self, data: bytes) -> None:
        """
        Send a binary message. From inside this connection's read it goes
        out with the read's other replies; from anywhere else, the first
        message of a reactor turn is written at once and the ones after it
        at the end of the turn (see L{txpulse.wire.turns}).
        """
        try:
            self._conn.send_binary(data)
        except InvalidState:
            _dropped()
            return
        self.messagesOut += 1
        if not self._dispatching:
            self._sentOutsideRead(len(data))

    def _send(self, method: Any, payload: Any) -> bool:
        # The same rule as the two methods above, for the less frequent sends.
        try:
            method(payload)
        except InvalidState:
            _dropped()
            return False
        if not self._dispatching:
            self._flush()
        return True

    def _sentOutsideRead(self, size: int) -> None:
        """
        A message of about C{size} bytes was queued outside this
        connection's own read (which writes everything at its end): write
        it now if it opens this turn's batch, else leave it queued for the
        end of the turn, or until the batch holds L{MAX_BATCH} bytes (see
        L{txpulse.wire.turns}).
        """
        batch = self._batch
        if self._writePaused:
            # The peer is behind: Twisted's buffer queues every write anyway,
            # and the write limit is checked as the bytes reach it.
            self._flush()
        elif batch < 0:
            self._batch = 0
            turns = self._turns
            if turns is None:
                turns = self._turns = flusherFor(self._clock)
            turns.add(self)
            self._flush()
        elif batch + size < MAX_BATCH:
            self._batch = batch + size
        else:
            self._batch = 0
            self._flush()

    def endTurn(self) -> None:
        """
        The reactor turn in which this connection's batch opened is over:
        write what is queued; the next send outside a read leaves at once.
        """
        self._batch = -1
        if not self._dispatching:
            self._flush()

    def sendFrame(self, frame: bytes) -> None:
        """
        Send a message already serialized by L{txpulse.core.frames.encode_frame}
        (server side only): a broadcast encodes once and calls this on every
        receiver. Written at once, with whatever is queued before it: the
        caller batches (see L{queueFrame}), unlike the application's sends,
        which L{txpulse.wire.turns} batches per turn.
        """
        if self._send(self._conn.send_frame_bytes, frame):
            self.messagesOut += 1

    def queueFrame(self, frame: bytes) -> bool:
        """
        Queue a serialized message like L{sendFrame}, without writing it yet:
        a broadcaster queues a batch of messages on each receiver and then
        calls L{flush} once per receiver (one write instead of one per
        message). Dropped, like every send, once the connection is closing.

        @return: whether this frame started a new batch, i.e. the caller
            must call L{flush} later.
        """
        try:
            first = self._conn.send_frame_bytes(frame)
        except InvalidState:
            _dropped()
            return False
        self.messagesOut += 1
        return first

    def flush(self) -> None:
        """
        Write everything queued (by L{queueFrame}).
        """
        if not self._dispatching:
            self._flush()

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping; the pong arrives at the application's C{pongReceived}.

        @raise ValueError: for a payload longer than 125 bytes.
        """
        self._send(self._conn.send_ping, payload)

    def loseConnection(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """
        Start the closing handshake with C{code} and C{reason}. The peer's
        answer (or L{WireOptions.closeTimeout}) ends the TCP connection.
        Calling it again while closing does nothing.

        @raise ValueError: for a code that may not be sent (1005, 1006, 1015,
            undefined codes below 3000) or a reason over 123 bytes of UTF-8.
        """
        if not self._conn.can_send():
            return
        self._conn.send_close(code, reason)
        if not self._dispatching:
            self._flush()

    @property
    def writeBacklog(self) -> int:
        """
        How far behind a slow reader is: the growth of the memory queued
        for it (L{txpulse.wire.tcp.heldBytes}: bytes plus per-object overhead)
        since the transport's buffer filled up (0 while the peer keeps up).
        A peer that reads steadily, if not as fast as we write, keeps this
        near 0 even while the buffer never fully drains.
        """
        if not self._writePaused:
            return 0
        queued = heldBytes(self.transport)
        if queued is None:
            # A transport whose buffer we cannot see: count what was written
            # since it filled.
            return self._bufferedWhilePaused
        return max(0, queued - self._queuedAtPause)

    def isOpen(self) -> bool:
        """
        Whether messages can still be sent (the closing handshake has not
        started).
        """
        return self._connected and self._conn.can_send()

    def abortConnection(self) -> None:
        """
        Drop the TCP connection at once, without a close handshake.
        """
        # An aborted TCP transport stays "connected" until the next turn:
        # stop writing to its socket now.
        self._socket = None
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def getPeer(self) -> Any:
        """
        The peer's address (from the underlying transport).
        """
        assert self.transport is not None
        return self.transport.getPeer()

    def getHost(self) -> Any:
        """
        This side's address (from the underlying transport).
        """
        assert self.transport is not None
        return self.transport.getHost()

    # -- back-pressure ----------------------------------------------------------

    def attachProducer(self, producer: IPushProducer) -> None:
        """
        Attach the application's L{IPushProducer}: it is paused while the
        peer is not keeping up with what we send, and resumed when it is.
        """
        if self._producer is not None:
            raise RuntimeError("a producer is already attached")
        self._producer = producer
        if self._writePaused:
            producer.pauseProducing()

    def detachProducer(self) -> None:
        """
        Detach the producer attached with L{attachProducer}.
        """
        self._producer = None

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full (the peer reads slower than we
        write): pause the application's producer and start counting the
        backlog.

        Reading goes on: a full buffer is the normal state of a connection
        streaming both ways, and two peers that both stopped reading here
        would each wait for the other to drain. Every frame read may add to
        the buffer, though (the core answers a ping with a pong, an echo
        answers a message), so once the backlog passes half of
        C{maxWriteBuffer} L{_flush} stops reading until the buffer drains:
        a peer that sends and never reads is then held back by TCP's flow
        control, in the kernel's buffers.
        """
        if not self._writePaused:
            self._writePaused = True
            self._bufferedWhilePaused = 0
            self._queuedAtPause = heldBytes(self.transport) or 0
            # (Set again by _flush when the pause came from its own write,
            # once that write is counted in bytesOut.)
            self._drainMark = self._drained() or 0
            if self._producer is not None:
                self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained: resume the application's
        producer, and reading if a backlog had stopped it (unless the
        application still holds it).
        """
        self._writePaused = False
        self._bufferedWhilePaused = 0
        if self._producer is not None:
            self._producer.resumeProducing()
        self._resumeReading(_HOLD_WRITES)

    def _drained(self) -> int | None:
        """
        Bytes that have left user space for the kernel so far; C{None} on a
        transport that does not show its buffer.
        """
        queued = queuedBytes(self.transport)
        return None if queued is None else self.bytesOut - queued

    def stopProducing(self) -> None:
        """
        The transport is going away.
        """
        if self._producer is not None:
            self._producer.stopProducing()

    # -- timers ---------------------------------------------------------------

    def _timerDelay(self, now: float) -> float | None:
        """
        Seconds until the nearest deadline: the close timeout while closing,
        else the next ping, pong or idle deadline; C{None} for none.
        """
        options = self._options
        if self._closing:
            return options.closeTimeout
        deadlines = []
        if options.pingInterval is not None:
            if self._pingSentAt is not None:
                deadlines.append(self._pingSentAt + options.pingTimeout)
            else:
                deadlines.append(self._lastReceived + options.pingInterval)
        if options.idleTimeout is not None:
            deadlines.append(self._lastMessage + options.idleTimeout)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _scheduleTimer(self, now: float) -> None:
        """
        Arm the one timer this connection has, for the nearest deadline.
        Receiving data only records a timestamp; the timer reads it when it
        fires, so a busy connection costs no timer work per message.
        """
        delay = self._timerDelay(now)
        if delay is not None:
            self._timer = self._clock.callLater(delay, self._timerFired)

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _timerFired(self) -> None:
        self._timer = None
        if not self._connected:
            return
        if self._closing:
            _log.info(
                "WebSocket peer {peer} did not finish closing within {timeout}s; aborting",
                peer=_peerOf(self),
                timeout=self._options.closeTimeout,
            )
            self.abortConnection()
            return
        now = self._clock.seconds()
        options = self._options
        if self._pending is not None and not self._writePaused:
            # Reading is paused while the application digests a message: the
            # peer's pongs cannot arrive, and the peer is not idle either.
            self._lastReceived = self._lastMessage = now
            self._pingSentAt = None
        elif self._writePaused:
            # The peer does not keep up with what we send: our ping waits
            # behind the queue, so its pong comes late (and while reading is
            # held, cannot arrive). A peer that reads at all (bytes left our
            # buffer for the kernel since the last look) is alive: a slow
            # reader of a large message is not dropped. While reading is
            # held it is, as far as we can know, not idle either. One that
            # reads nothing is pinged and times out as usual (its close
            # frame cannot reach it either: the close timeout then aborts
            # it). The same holds while the application holds reading
            # (e.g. the hub until a replay is written, which waits for this
            # peer to read): a peer that reads nothing is not kept alive by
            # the wait it causes.
            drained = self._drained()
            if drained is not None and drained > self._drainMark:
                self._drainMark = drained
                self._lastReceived = now
                self._pingSentAt = None
                if self._readHolds:
                    self._lastMessage = now
        if options.idleTimeout is not None and now - self._lastMessage >= options.idleTimeout:
            _log.info(
                "WebSocket peer {peer} idle for {timeout}s; closing",
                peer=_peerOf(self),
                timeout=options.idleTimeout,
            )
            self.loseConnection(CloseCode.GOING_AWAY, "idle timeout")
            return
        if options.pingInterval is not None:
            if self._pingSentAt is not None and self._lastReceived > self._pingSentAt:
                # Any frame after the ping proves the peer alive (a late pong
                # from a peer busy streaming data is no reason to drop it).
                self._pingSentAt = None
            if self._pingSentAt is not None:
                if now - self._pingSentAt >= options.pingTimeout:
                    _log.info(
                        "WebSocket peer {peer} silent {timeout}s after a ping; closing with 1011",
                        peer=_peerOf(self),
                        timeout=options.pingTimeout,
                    )
                    self._conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    self._linger = False  # the peer is presumed gone: do not wait on it
                    self._flush()
                    return
            elif now - self._lastReceived >= options.pingInterval and self._conn.state is State.OPEN:
                self._pingSentAt = now
                self._conn.send_ping(b"")
                self._flush()
        self._scheduleTimer(now)

    def _startClosing(self) -> None:
        """
        A close frame crossed (either way) or the core asked for the transport
        to go: from now on only the close timeout runs.
        """
        if self._closing:
            return
        self._closing = True
        # The peer's close frame must be read, however full our buffer: the
        # core answers nothing from now on, so reading adds nothing to it.
        self._resumeReading(_HOLD_WRITES)
        self._cancelTimer()
        if self._connected:
            self._scheduleTimer(self._clock.seconds())

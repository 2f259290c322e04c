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

It is one class, assembled from mixins that each do one job, in their own
modules; this one keeps the path every message takes (a read in, the
application's sends, the write out) in one place:

  - L{txpulse.wire.state}: every slot, declared once, with its type;
  - L{txpulse.wire.delivery}: handing received events to the application;
  - L{txpulse.wire.keepalive}: the one timer (pings, pong, idle and close
    timeouts);
  - L{txpulse.wire.closing}: the close handshake and the end of the
    connection;
  - L{txpulse.wire.backpressure}: the producer both ways, the write
    backlog, the read holds;
  - L{txpulse.wire.extras}: broadcast sends and addresses;
  - L{txpulse.wire.options}: L{WireOptions}, the settings it reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IProtocol, IPushProducer, IReactorTime, ITransport
from twisted.logger import Logger
from zope.interface import implementer

from ..core.connection import Connection
from ..core.exceptions import InvalidState
from ..core.frames import CloseCode
from ..logs.peers import peerOf as _peerOf
from ..settings import DEFAULT_MAX_WRITE_BUFFER
from .backpressure import HOLD_WRITES, BackPressure
from .closing import Closing, dropped
from .delivery import Delivery
from .extras import Extras
from .interfaces import ConnectionObserver, WebSocketProtocol
from .keepalive import Keepalive
from .options import WireOptions
from .tcp import LARGE_READ_SIZE, SMALL_READ_SIZE, directSocket, writeChunks
from .turns import MAX_BATCH, flusherFor

if TYPE_CHECKING:  # pragma: no cover
    from twisted.web.server import Request

__all__ = ["WireOptions", "WebSocketWire", "WebSocketProtocol", "ConnectionObserver", "DEFAULT_MAX_WRITE_BUFFER"]

_log = Logger()

#: A full read whose messages average at least 2 ** this many bytes (4 KiB)
#: counts as a stream of large messages (see L{WebSocketWire.dataReceived}).
_LARGE_MESSAGE_BITS = 12


@implementer(IProtocol, IPushProducer)
class WebSocketWire(Delivery, Keepalive, Closing, BackPressure, Extras):
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

    # The slots are those of txpulse.wire.state.WireState, declared there
    # once for this class and its mixins: none are added here.
    __slots__ = ()

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
        self.transport = None
        self.subprotocol = subprotocol
        self.request = request
        self.identity = identity
        self.closeCode = None
        self.closeReason = ""
        self._dispatching = False
        self._pending = None
        self._timer = None
        self._lastReceived = 0.0
        self._lastMessage = 0.0
        self._pingSentAt = None
        self._closing = False
        self._writePaused = False
        self._bufferedWhilePaused = 0
        self._queuedAtPause = 0
        self._socket = None
        self._producer = None
        self._connected = False
        self._transportClosing = False
        self._readHolds = 0
        self._drainMark = 0
        self._linger = True
        self._batch = -1
        # The reactor's TurnFlusher, looked up at the first send outside a
        # read (most connections of a handshake flood never make one).
        self._turns = None
        self.openedAt = 0.0
        self.messagesIn = self.messagesOut = self.bytesIn = self.bytesOut = 0
        self.pingRoundTrip = None

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
                    self._pauseReading(HOLD_WRITES)
        if not self._closing and conn.close_expected():
            self._startClosing()
        if conn.should_close_transport() and not self._transportClosing:
            self._closeTransport(transport)

    # Sending after the close handshake started is dropped, not an error: a
    # timer-driven sender cannot know the peer's close just arrived. The core
    # raises InvalidState in that case; catching it (rather than checking the
    # state first) keeps the common path to one state check, and a try costs
    # nothing until it catches. The drop itself (the rule's one log line) is
    # txpulse.wire.closing.dropped, called only when a send is dropped; the
    # less frequent senders (ping, and sendFrame: a broadcast's first message
    # of a turn) share _send. The hot ones keep their try inline on purpose:
    # sendTextMessage and sendBytesMessage run once per message, queueFrame
    # (txpulse.wire.extras) once per receiver of a broadcast's every other
    # message, and routing them through _send costs a second call per
    # message (measured on a 32-byte text on a StringTransport, CPython
    # 3.11: 164 -> 212 ns inside a read, +29%; 637 -> 692 ns when it
    # flushes, +9%). A generated method would lose Twisted's parameter
    # names (text=, data=).

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
            dropped()
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
            dropped()
            return
        self.messagesOut += 1
        if not self._dispatching:
            self._sentOutsideRead(len(data))

    def _send(self, method: Any, payload: Any) -> bool:
        # The same rule as the two methods above, for the less frequent sends.
        try:
            method(payload)
        except InvalidState:
            dropped()
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

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping; the pong arrives at the application's C{pongReceived}.

        @raise ValueError: for a payload longer than 125 bytes.
        """
        self._send(self._conn.send_ping, payload)

# -*- test-case-name: tests.wire.test_protocol,tests.wire.test_tcp -*-
"""
L{Closing}: how a L{txpulse.wire.protocol.WebSocketWire} ends: the close
handshake (C{loseConnection}, the close timeout taking over the timer),
closing the transport once the core says so (half-closing to let the peer
read our close frame), an abort, the peer's EOF, and C{connectionLost},
which tells the application the close code and reason the peer sent.

Apart from the rest of the wire because each of these runs once per
connection, not per message, and because the rules about the end (who
closed, what the peer saw, what still reaches it) read best together.
Sending after the close handshake started is dropped, not an error
(L{dropped}).
"""

from __future__ import annotations

from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.exceptions import ConnectionClosed
from ..core.frames import CloseCode
from .backpressure import HOLD_APPLICATION, HOLD_WRITES
from .state import WireState

__all__ = ["Closing", "dropped"]

_log = Logger(namespace="txpulse.wire.protocol")


def dropped() -> None:
    """
    A send after the close handshake started: dropped, not an error (see the
    comment above L{txpulse.wire.protocol.WebSocketWire.sendTextMessage});
    the one place that says so, called only when a send is dropped.
    """
    _log.debug("Dropping a message sent after the WebSocket started closing")


class Closing(WireState):
    """
    The end of a L{txpulse.wire.protocol.WebSocketWire}'s connection: the
    close handshake, the transport's close, and telling the application.
    """

    __slots__ = ()

    def loseConnection(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """
        Start the closing handshake with C{code} and C{reason}. The peer's
        answer (or L{txpulse.wire.options.WireOptions.closeTimeout}) ends
        the TCP connection. Calling it again while closing does nothing.

        @raise ValueError: for a code that may not be sent (1005, 1006, 1015,
            undefined codes below 3000) or a reason over 123 bytes of UTF-8.
        """
        if not self._conn.can_send():
            return
        self._conn.send_close(code, reason)
        if not self._dispatching:
            self._flush()

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
            observer.connectionClosed(self)  # type: ignore[arg-type]  # self is the WebSocketWire
        # Nothing is delivered to the application any more: let go of it,
        # which breaks the cycle through its C{transport} (this wire). With
        # the channel letting go of the wire, a closed connection is freed
        # by reference counting, not left for the cyclic collector (whose
        # passes, with thousands of connections open, cost more the more
        # garbage they find; see txpulse.server.collector).
        self._app = None  # type: ignore[assignment]

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
        self._resumeReading(HOLD_WRITES)
        self._cancelTimer()
        if self._connected:
            self._scheduleTimer(self._clock.seconds())

    def _closeTransport(self, transport: ITransport) -> None:
        """
        The core has nothing more to send: close C{transport} (once; the
        caller checks C{_transportClosing}), after what was written.
        """
        self._transportClosing = True
        # A transport does not finish closing while a producer is
        # registered (ITransport.loseConnection; TLS waits for it before
        # sending close_notify), so let go of it first.
        transport.unregisterProducer()  # type: ignore[attr-defined]
        if (
            self._conn.close_received is None
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
            self._resumeReading(HOLD_APPLICATION | HOLD_WRITES)
        else:
            transport.loseConnection()

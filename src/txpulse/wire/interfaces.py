# -*- test-case-name: tests.wire.test_protocol -*-
"""
What the wire talks to besides its transport: the application's protocol
(L{WebSocketProtocol}, Twisted's own methods), what that protocol gets as
its transport (L{WebSocketTransport}), and the observers of its connections
(L{ConnectionObserver}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.python.failure import Failure

if TYPE_CHECKING:  # pragma: no cover
    from twisted.web.server import Request

    from .protocol import WebSocketWire

__all__ = ["WebSocketProtocol", "WebSocketTransport", "ConnectionObserver"]


class WebSocketTransport(Protocol):
    """
    What the application's protocol gets in C{negotiationStarted}: the
    methods of C{twisted.web.websocket.WebSocketTransport} (so code typed
    against Twisted's still checks), plus txpulse's additions. The wire
    (L{txpulse.wire.protocol.WebSocketWire}) is the implementation; a
    test's fake may be another.

    The attributes are read-only for the application.
    """

    # -- Twisted's WebSocketTransport --

    def sendTextMessage(self, text: str) -> None: ...

    def sendBytesMessage(self, data: bytes) -> None: ...

    def ping(self, payload: bytes = b"") -> None: ...

    def loseConnection(self, code: int = 1000, reason: str = "") -> None: ...

    def attachProducer(self, producer: IPushProducer) -> None: ...

    def detachProducer(self) -> None: ...

    # -- additions --

    @property
    def subprotocol(self) -> str | None:
        """
        The negotiated subprotocol, or C{None}.
        """

    @property
    def request(self) -> Request | None:
        """
        The upgraded request (server side), else C{None}.
        """

    @property
    def identity(self) -> object:
        """
        What the resource's accept hook returned, else C{None}.
        """

    @property
    def closeCode(self) -> int | None:
        """
        The peer's close code (1005: none in its frame; 1006: no frame),
        set before C{connectionLost}; C{None} while open.
        """

    @property
    def closeReason(self) -> str:
        """
        The peer's close reason.
        """

    @property
    def pingRoundTrip(self) -> float | None:
        """
        The last keepalive ping's round trip in seconds, or C{None}.
        """

    @property
    def writeBacklog(self) -> int:
        """
        How far behind a slow reader is, in bytes (0 while it keeps up).
        """

    def isOpen(self) -> bool: ...

    def sendFrame(self, frame: bytes) -> None: ...

    def queueFrame(self, frame: bytes) -> bool: ...

    def flush(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> IAddress: ...

    def getHost(self) -> IAddress: ...


class WebSocketProtocol(Protocol):
    """
    What the wire needs from the application's protocol: the methods of
    C{twisted.web.websocket.WebSocketProtocol}.

    C{textMessageReceived} and C{bytesMessageReceived} may return a
    L{Deferred} (or any awaitable): until it fires, the wire stops reading
    from the peer, so a slow consumer pushes back on a fast producer.
    """

    def negotiationStarted(self, transport: WebSocketTransport) -> None: ...

    def negotiationFinished(self) -> None: ...

    def textMessageReceived(self, message: str) -> object: ...

    def bytesMessageReceived(self, data: bytes) -> object: ...

    def pongReceived(self, payload: bytes) -> None: ...

    def connectionLost(self, reason: Failure) -> None: ...


class ConnectionObserver(Protocol):
    """
    Told when connections open and close (for logging, metrics and graceful
    shutdown; see L{txpulse.plugin.metrics.ConnectionRegistry}).
    """

    def connectionOpened(self, wire: WebSocketWire) -> None: ...

    def connectionClosed(self, wire: WebSocketWire) -> None: ...

    def pingRoundTrip(self, wire: WebSocketWire, seconds: float) -> None: ...

    def handshakeRefused(self, statusCode: int) -> None: ...

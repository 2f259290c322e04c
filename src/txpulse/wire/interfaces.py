# -*- test-case-name: tests.wire.test_protocol -*-
"""
What the wire talks to besides its transport: the application's protocol
(L{WebSocketProtocol}, Twisted's own methods) and the observers of its
connections (L{ConnectionObserver}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.python.failure import Failure

if TYPE_CHECKING:  # pragma: no cover
    from .protocol import WebSocketWire

__all__ = ["WebSocketProtocol", "ConnectionObserver"]


class WebSocketProtocol(Protocol):
    """
    What the wire needs from the application's protocol: the methods of
    C{twisted.web.websocket.WebSocketProtocol}.

    C{textMessageReceived} and C{bytesMessageReceived} may return a
    L{Deferred} (or any awaitable): until it fires, the wire stops reading
    from the peer, so a slow consumer pushes back on a fast producer.
    """

    def negotiationStarted(self, transport: Any) -> None: ...

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

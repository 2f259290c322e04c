# -*- test-case-name: tests.test_site -*-
"""
L{WebSocketSite}: a C{twisted.web} L{Site} made for WebSocket servers.

Its HTTP connections are L{WebSocketChannel}s, which add two things to
Twisted's C{HTTPChannel}:

  - A deadline for the first request head, the defence against slow-header
    ("slowloris") clients the stock L{Site} lacks. The stock L{Site} closes
    a connection idle for C{timeOut} seconds (60), but every byte received
    resets that timer: a client sending one header byte every 50 seconds
    holds a connection for days. Here each connection has C{requestTimeout}
    seconds, from the moment it is accepted, to deliver a complete first
    request (for a WebSocket, the upgrade); otherwise it gets C{408 Request
    Timeout}, a log line, and is closed. Oversized request lines and too
    many or too large headers are refused by Twisted's parser with C{400}.
  - A built-in hand-over to the WebSocket wire after an upgrade (see
    L{txpulse.resource.takeOver}), with no per-connection monkey-patching:
    that keeps an upgraded connection about 1.6 KiB smaller.

L{txpulse.WebSocketResource} works on a plain L{Site} too.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol
from twisted.web.server import Site
from zope.interface import implementer

__all__ = ["WebSocketSite", "WebSocketChannel", "DEFAULT_REQUEST_TIMEOUT"]

_log = Logger()

#: Seconds a new connection has to send its first complete request.
DEFAULT_REQUEST_TIMEOUT = 10.0

_TIMEOUT_BODY = b"request not received in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Connection: close\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(_TIMEOUT_BODY)
) + _TIMEOUT_BODY


class WebSocketChannel(HTTPChannel):
    """
    An C{HTTPChannel} with a first-request deadline that can hand its
    connection over to a WebSocket wire.
    """

    site: Any  # set by the Site that builds the channel

    def __init__(self) -> None:
        super().__init__()
        # Set here, so every channel shares one key layout (no per-instance
        # dictionary growth when they change).
        self._deadline: IDelayedCall | None = None
        self._wire: Any = None

    def connectionMade(self) -> None:
        super().connectionMade()
        timeout = getattr(getattr(self, "site", None), "requestTimeout", None)
        if timeout:
            self._deadline = self.callLater(timeout, self._requestTooSlow)

    def _requestTooSlow(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None:
            return
        _log.info(
            "Closing {peer}: no complete request within {seconds}s (408)",
            peer=_peer(transport.getPeer()),
            seconds=self.site.requestTimeout,
        )
        transport.write(_TIMEOUT_RESPONSE)
        transport.loseConnection()

    def _cancelDeadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def allContentReceived(self) -> None:
        self._cancelDeadline()
        super().allContentReceived()

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver's default drops the connection without an answer.
        self._respondToBadRequestAndDisconnect()

    def _respondToBadRequestAndDisconnect(self) -> None:
        transport = self.transport
        if transport is not None:
            _log.info(
                "Bad request from {peer}: malformed, or over the request line / header limits (400)",
                peer=_peer(transport.getPeer()),
            )
        super()._respondToBadRequestAndDisconnect()

    def readConnectionLost(self) -> None:
        """
        The peer half-closed: finish writing what is queued, then close.
        """
        if self._wire is not None:
            self._wire.readConnectionLost()
        elif self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def upgradeTo(self, wire: Any) -> None:
        """
        From now on every byte of this connection goes to C{wire}, and so
        does the end of the connection.
        """
        self._wire = wire

    def dataReceived(self, data: bytes) -> None:
        if self._wire is not None:
            self._wire.dataReceived(data)
        else:
            super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        # After an upgrade inside a read, LineReceiver hands the rest of that
        # read to rawDataReceived: it belongs to the WebSocket.
        if self._wire is not None:
            self._wire.dataReceived(data)
        else:
            super().rawDataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelDeadline()
        if self._wire is not None:
            self._wire.connectionLost(reason)
        super().connectionLost(reason)


@implementer(IHalfCloseableProtocol)
class _HalfCloseableChannelProtocol(_GenericHTTPChannelProtocol):
    """
    Lets a peer's half-close (EOF on read) reach the channel, so what was
    already written to the peer is still sent before the connection closes.
    """

    def readConnectionLost(self) -> None:
        channel: Any = self._channel
        channel.readConnectionLost()

    def writeConnectionLost(self) -> None:
        channel: Any = self._channel
        channel.writeConnectionLost()


def _channelFactory(factory: Any) -> _GenericHTTPChannelProtocol:
    return _HalfCloseableChannelProtocol(WebSocketChannel())


class WebSocketSite(Site):
    """
    A L{Site} whose connections must send their first request within
    C{requestTimeout} seconds, and whose upgraded connections cost less
    memory (see the module docstring).
    """

    protocol = _channelFactory

    def __init__(self, resource: Any, requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT, **kwargs: Any) -> None:
        """
        @param resource: the root resource.
        @param requestTimeout: seconds from accepting a connection to the
            end of its first request head (C{None} or 0: no deadline).
        @param kwargs: any other keyword argument of L{Site} (C{reactor},
            C{timeout}, C{logPath}, ...).
        """
        super().__init__(resource, **kwargs)
        self.requestTimeout = requestTimeout


def _peer(addr: Any) -> str:
    host = getattr(addr, "host", None)
    return f"{host}:{getattr(addr, 'port', '?')}" if host is not None else str(addr)

# -*- test-case-name: tests.test_site -*-
"""
L{WebSocketSite}: a C{twisted.web} L{Site} with a deadline for the first
request head, the defence against slow-header ("slowloris") clients that
the stock L{Site} lacks.

The stock L{Site} closes a connection idle for C{timeOut} seconds (60), but
every byte received resets that timer: a client sending one header byte
every 50 seconds holds a connection (and whatever is allocated for it) for
days. L{WebSocketSite} gives each connection C{requestTimeout} seconds,
from the moment it is accepted, to deliver a complete first request (for a
WebSocket, the upgrade request); otherwise it answers C{408 Request
Timeout}, logs the peer, and closes. Oversized request lines, too many or
too large headers are already refused by Twisted's HTTP parser with C{400}.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.server import Site

__all__ = ["WebSocketSite", "DEFAULT_REQUEST_TIMEOUT"]

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


class WebSocketSite(Site):
    """
    A L{Site} whose connections must send their first request within
    C{requestTimeout} seconds.
    """

    def __init__(self, resource: Any, requestTimeout: float = DEFAULT_REQUEST_TIMEOUT, **kwargs: Any) -> None:
        """
        @param resource: the root resource.
        @param requestTimeout: seconds from accepting a connection to the
            end of its first request head (C{None} or 0: no deadline).
        @param kwargs: any other keyword argument of L{Site} (C{reactor},
            C{timeout}, C{logPath}, ...).
        """
        super().__init__(resource, **kwargs)
        self.requestTimeout = requestTimeout

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None and self.requestTimeout:
            _requireFirstRequestWithin(protocol, self.requestTimeout, addr)
        return protocol


def _requireFirstRequestWithin(protocol: Any, seconds: float, addr: Any) -> None:
    """
    Arm the first-request deadline on one HTTP connection (the only place
    that hooks into C{HTTPChannel}'s request cycle).
    """
    channel = protocol._channel
    received = channel.allContentReceived
    lost = channel.connectionLost
    state: dict[str, Any] = {}

    def expired() -> None:
        state.pop("timer", None)
        transport = channel.transport
        if transport is None:
            return
        _log.info("Closing {peer}: no complete request within {seconds}s (408)", peer=_peer(addr), seconds=seconds)
        transport.write(_TIMEOUT_RESPONSE)
        transport.loseConnection()

    def allContentReceived() -> None:
        timer = state.pop("timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        channel.allContentReceived = received
        received()

    def connectionLost(reason: Any) -> None:
        timer = state.pop("timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        lost(reason)

    channel.allContentReceived = allContentReceived
    channel.connectionLost = connectionLost
    state["timer"] = protocol.callLater(seconds, expired)


def _peer(addr: Any) -> str:
    host = getattr(addr, "host", None)
    return f"{host}:{getattr(addr, 'port', '?')}" if host is not None else str(addr)

# -*- test-case-name: tests.server.test_site,tests.hardening.test_hostile_http,tests.http2.test_lifecycle -*-
"""
The protocol of a L{txpulse.WebSocketSite} connection, around its
L{WebSocketChannel}: what happens to a connection before and after HTTP.

It admits the connection against the site's caps before the channel sees
it (a refused one gets C{503} and a close, or a reset under TLS: no TLS
handshake is spent on it), counts it until it closes whatever protocol ends
up speaking on it, switches to HTTP/2 (with WebSockets, RFC 8441) when TLS
ALPN picked C{h2}, and lets a peer's half-close reach the channel, so what
was already written to the peer is still sent before the connection
closes. The life of the HTTP connection itself is told in
L{txpulse.server.channel}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from ..logs.peers import clientKey
from ..wire.twistedinternals import GenericHTTPChannelProtocol, negotiatedProtocol, switchToHTTP2, wrappedChannel
from .channel import WebSocketChannel
from .limits import _BUSY_RESPONSE

if TYPE_CHECKING:  # pragma: no cover
    from .site import WebSocketSite

__all__ = ["HalfCloseableChannelProtocol", "channelFactory"]


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class HalfCloseableChannelProtocol(GenericHTTPChannelProtocol):
    """
    The connection's protocol: admits it against the site's connection caps
    (and counts it until it closes, whatever protocol ends up speaking on
    it), and lets a peer's half-close (EOF on read) reach the channel, so
    what was already written to the peer is still sent before the
    connection closes.
    """

    def __init__(self, channel: WebSocketChannel) -> None:
        super().__init__(channel)
        # Whether the connection is counted against the caps (a refused one
        # never reaches the channel), and the address it is counted under.
        self._admitted = False
        self._address: str | None = None

    def makeConnection(self, transport: Any) -> None:
        # The site (set by Site.buildProtocol, before the connection).
        site: WebSocketSite = self.site
        # Counted under its IPv4 address or IPv6 /64; an address without a
        # host (a UNIX socket) has no per-address cap, nor has a trusted
        # proxy (all its clients share its address; which ones it carries
        # is known only from each request's X-Forwarded-For).
        client = getattr(transport, "client", None)
        if type(client) is tuple and len(client) == 2 and type(client[0]) is str:
            # A TCP connection over IPv4 (tcp.Server.client: the peer's
            # address as getPeer() has it, without building an address
            # object; its key is the address itself, see clientKey).
            host: Any = client[0]
            address = host if host not in site.trustedProxies else None
        else:
            peer = transport.getPeer()
            host = getattr(peer, "host", None)
            address = clientKey(peer) if isinstance(host, str) and host not in site.trustedProxies else None
        if not site._admit(address, transport):
            if ISSLTransport.providedBy(transport):
                # No TLS handshake spent on a connection that is refused.
                transport.abortConnection()
            else:
                transport.write(_BUSY_RESPONSE)
                transport.loseConnection()
            return
        self._admitted, self._address = True, address
        super().makeConnection(transport)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is done (before any request byte is delivered):
        when ALPN picked C{h2}, speak HTTP/2 with WebSockets
        (L{txpulse.server.http2}) rather than through Twisted's plain HTTP/2
        connection. (Here rather than at the first byte, which Twisted's
        protocol checks: no cost on any later read.)
        """
        site: WebSocketSite = self.site
        if not self._admitted or not getattr(site, "http2", False):
            return
        channel: Any = wrappedChannel(self)
        transport = channel.transport
        if negotiatedProtocol(self) is not None or getattr(transport, "negotiatedProtocol", None) != b"h2":
            return
        from .http2 import WebSocketH2Connection

        # The HTTP/1.1 channel's request deadline goes with it.
        channel._cancelDeadline()
        switchToHTTP2(self, WebSocketH2Connection(site.reactor, webSockets=site.http2WebSockets))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._admitted:
            self._admitted = False
            site: WebSocketSite = self.site
            site._release(self._address)
            wrappedChannel(self).connectionLost(reason)

    def readConnectionLost(self) -> None:
        if self._admitted:
            channel: Any = wrappedChannel(self)
            channel.readConnectionLost()

    def writeConnectionLost(self) -> None:
        if self._admitted:
            channel: Any = wrappedChannel(self)
            channel.writeConnectionLost()


def channelFactory(factory: Any) -> GenericHTTPChannelProtocol:
    return HalfCloseableChannelProtocol(WebSocketChannel())

# -*- test-case-name: tests.server.test_proxies -*-
"""
The client's address behind a trusted reverse proxy (C{--trusted-proxy},
L{txpulse.server.site.WebSocketSite}'s C{trustedProxies}).

L{clientAddress} is the one place the address of a request's client is
decided: L{txpulse.server.channel.WebSocketChannel} calls it when a
request head has arrived, before anything looks at the request, and stores
the result as the request's C{client}, which Twisted's
C{request.getClientAddress()} returns. So everything that names or counts
a client by its request reads the same answer: the access log, the log
lines of the handshake and of the WebSocket afterwards
(L{txpulse.logs.peers.peerOf}), the authentication rate limit
(L{txpulse.server.ratelimit.FailureLimiter}) and any accept hook of an
application.

What is counted before a request head exists cannot know the forwarded
client: the per-address connection cap of the site counts TCP peers when a
connection is accepted. A trusted proxy is exempt from that cap (its
connections still count against the total cap), since all its clients
share its address; limit connections per client at the proxy instead
(nginx: C{limit_conn} on C{$binary_remote_addr}; see C{deploy/nginx}).
Log lines about a connection that never completed a request (a C{408}, a
refused connection) name the TCP peer, the proxy.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress
from twisted.web.http_headers import Headers

from ..logs.peers import TrustedProxies, forwardedClient

__all__ = ["TrustedProxies", "clientAddress"]


def clientAddress(peer: IAddress, headers: Headers, trusted: TrustedProxies | None) -> Any:
    """
    The address of the client of a request that C{peer} sent with
    C{headers}.

    @param peer: the TCP peer (the transport's C{getPeer()}).
    @param headers: the request's headers (their C{X-Forwarded-For} values
        are read, only when C{peer} is a trusted proxy).
    @param trusted: the trusted proxies (C{None} or empty: none).
    @return: C{peer} itself, unless it is a trusted proxy and
        C{X-Forwarded-For} names a client (L{forwardedClient}); then an
        L{IPv4Address} or L{IPv6Address} of that client, of type C{"TCP"}
        and port 0 (its port is not known; log lines show the host alone).
    """
    host = getattr(peer, "host", None)
    if not trusted or not isinstance(host, str):
        return peer
    client = forwardedClient(host, headers.getRawHeaders(b"x-forwarded-for") or (), trusted)
    if client is None:
        return peer
    return IPv6Address("TCP", client, 0) if ":" in client else IPv4Address("TCP", client, 0)

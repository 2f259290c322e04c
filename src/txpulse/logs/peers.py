# -*- test-case-name: tests.logs.test_peers -*-
"""
Client addresses, said once: how a peer is named in log lines
(L{formatPeer}, L{peerOf}) and the key a client is counted under by the
connection caps and the authentication rate limit (L{clientKey}).

Twisted-free: it only reads an address's C{host} and C{port} attributes
(those of L{twisted.internet.address.IPv4Address} and C{IPv6Address}).
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["formatPeer", "peerOf", "clientKey"]


def formatPeer(address: Any) -> str:
    """
    An address as log lines show it: C{host:port} (C{[host]:port} for an
    IPv6 host), or the address's text for anything else (a UNIX socket).
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return str(address)
    port = getattr(address, "port", "?")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peerOf(transport: Any) -> str:
    """
    L{formatPeer} of C{transport.getPeer()}, or C{"?"} when there is no
    transport or it has no address (e.g. a test's fake).
    """
    if transport is None:
        return "?"
    try:
        peer = transport.getPeer()
    except Exception:
        return "?"
    return formatPeer(peer)


def clientKey(address: Any) -> str:
    """
    The key a client is counted under (connection caps, failed
    authentication attempts): the IPv4 address, the C{/64} network of an
    IPv6 address (one host usually holds a whole C{/64}, so counting its
    addresses one by one would let it open as many connections as it likes),
    the IPv4 address of an IPv4-mapped IPv6 address, or the address's text
    for anything else (a UNIX socket: one key for all).
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return str(address)
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

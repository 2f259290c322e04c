# -*- test-case-name: tests.logs.test_peers,tests.server.test_proxies -*-
"""
Client addresses, said once: who the client is behind a trusted reverse
proxy (L{TrustedProxies}, L{forwardedClient}), how a peer is named in log
lines (L{formatPeer}, L{peerOf}) and the key a client is counted under by
the connection caps and the authentication rate limit (L{clientKey}).

Who the client is: the TCP peer, unless that peer is a trusted proxy
(C{--trusted-proxy}); then the right-most address of C{X-Forwarded-For}
that is not itself a trusted proxy. Each proxy I{appends} the address it
received the request from, so the right end of the header is what our own
proxies wrote and the left end is whatever the client sent: reading from
the right, the first address no trusted proxy could have added is the
client (a client that sends C{X-Forwarded-For: 10.0.0.1} itself only puts
an entry further left, which is never reached). From a peer that is not a
trusted proxy the header is ignored altogether.
L{txpulse.server.proxies.clientAddress} applies this rule once per
request, at its head; log lines, caps and limits then read the request's
C{getClientAddress()} (as L{peerOf} does).

Twisted-free: it only reads an address's C{host} and C{port} attributes
(those of L{twisted.internet.address.IPv4Address} and C{IPv6Address}).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from twisted.internet.address import IPv4Address

__all__ = ["TrustedProxies", "forwardedClient", "formatPeer", "peerOf", "clientKey"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parseIP(text: str) -> _IP | None:
    """
    C{text} as an IP address (an IPv6 zone such as C{%eth0} dropped, an
    IPv4-mapped IPv6 address as its IPv4 address), or C{None}.
    """
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrustedProxies:
    """
    The reverse proxies whose C{X-Forwarded-For} is believed: IP addresses
    and networks. An address matches in either notation: C{::ffff:10.0.0.1}
    (an IPv4 connection on a dual-stack socket) is C{10.0.0.1}.

    @ivar networks: the networks (a single address is a C{/32} or C{/128}).
    """

    __slots__ = ("networks",)

    def __init__(self, addresses: Iterable[str] = ()) -> None:
        """
        @param addresses: each an IP address (C{127.0.0.1}, C{::1}) or a
            network in CIDR notation (C{10.0.0.0/8}, C{fd00::/8}; host bits
            are ignored: C{10.1.2.3/8} is C{10.0.0.0/8}).
        @raise ValueError: for anything else (a host name, a port, garbage),
            naming it.
        """
        networks: list[_Network] = []
        for text in addresses:
            address, slash, prefix = text.strip().partition("/")
            ip = _parseIP(address)
            try:
                if ip is None or (slash and not prefix.isdigit()):
                    raise ValueError(text)
                if slash and ip.version == 4 and ":" in address:
                    # ::ffff:a.b.c.d/N: an IPv4-mapped network, as IPv4.
                    length = int(prefix) - 96
                    if length < 0:
                        raise ValueError(text)
                    prefix = str(length)
                network = ipaddress.ip_network(f"{ip}/{prefix}" if slash else ip, strict=False)
            except ValueError:
                raise ValueError(
                    f"not an IP address or a CIDR network: {text!r} (e.g. 127.0.0.1, ::1, 10.0.0.0/8)"
                ) from None
            networks.append(network)
        self.networks: tuple[_Network, ...] = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __iter__(self) -> Iterator[str]:
        return (str(network) for network in self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({list(self)!r})"

    def __contains__(self, host: object) -> bool:
        """
        Whether C{host} (an IP address as text) is one of the trusted
        proxies; C{False} for anything that is not an address.
        """
        if not self.networks or not isinstance(host, str):
            return False
        ip = _parseIP(host)
        return ip is not None and any(ip in network for network in self.networks)


def _hop(entry: str) -> _IP | None:
    """
    One element of C{X-Forwarded-For} as an address: C{1.2.3.4},
    C{2001:db8::1}, and the forms some proxies write with brackets or a
    port (C{[2001:db8::1]}, C{[2001:db8::1]:443}, C{1.2.3.4:5678});
    C{None} for anything else (C{unknown}, an obfuscated C{_id}, garbage).
    """
    if entry.startswith("["):
        inside, bracket, _ = entry[1:].partition("]")
        return _parseIP(inside) if bracket else None
    if entry.count(":") == 1:
        entry = entry.partition(":")[0]  # IPv4 with a port
    return _parseIP(entry)


def forwardedClient(peerHost: str, forwardedFor: Iterable[bytes | str], trusted: TrustedProxies) -> str | None:
    """
    The client's address according to C{X-Forwarded-For}, when that header
    is to be believed (see the module docstring).

    @param peerHost: the TCP peer's address.
    @param forwardedFor: the values of every C{X-Forwarded-For} header of the
        request, in order (several headers are one comma-separated list,
        RFC 9110 §5.3).
    @param trusted: the trusted proxies.
    @return: the right-most address of the list that is not a trusted
        proxy, normalized (C{2001:DB8::0001} is C{2001:db8::1}, an
        IPv4-mapped address its IPv4 one); the left-most one when every
        address is a trusted proxy. Reading stops at an element that is not
        an address: nothing left of it can be vouched for, so the last
        address read before it is the answer. C{None} (the peer's own
        address stands) when the peer is not a trusted proxy, or there is
        no header, or its right-most element is not an address.
    """
    if peerHost not in trusted:
        return None
    hops: list[str] = []
    for value in forwardedFor:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        # Empty list elements are allowed, and ignored (RFC 9110 §5.6.1).
        hops.extend(element.strip() for element in text.split(",") if element.strip())
    client: str | None = None
    for entry in reversed(hops):
        ip = _hop(entry)
        if ip is None:
            break
        client = str(ip)
        if not any(ip in network for network in trusted.networks):
            break
    return client


def formatPeer(address: Any) -> str:
    """
    An address as log lines show it: C{host:port} (C{[host]:port} for an
    IPv6 host), the host alone when the port is 0 (a client known from
    C{X-Forwarded-For}, whose port is not known), or the address's text for
    anything else (a UNIX socket).
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return str(address)
    port = getattr(address, "port", "?")
    if port == 0:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peerOf(source: Any) -> str:
    """
    The client that log lines name for C{source}, by L{formatPeer}:

      - a server-side WebSocket (an object with a C{request}: its upgrade
        request) or a request: the request's C{getClientAddress()} (behind
        a trusted proxy, the forwarded client's address);
      - anything else (a transport, a client-side WebSocket):
        C{source.getPeer()}.

    C{"?"} when there is no source or it has no address (e.g. a test's
    fake).
    """
    if source is None:
        return "?"
    request = getattr(source, "request", None)
    if request is None and hasattr(source, "getClientAddress"):
        request = source
    try:
        peer = request.getClientAddress() if request is not None else source.getPeer()
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
    if type(address) is IPv4Address:
        # Twisted's IPv4 addresses are dotted quads already (checked once
        # per connection: parsing it again cost 1.5% of a handshake).
        return host
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

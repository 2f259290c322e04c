"""
Tests for L{txpulse.logs.peers}: how peers are named in log lines and the
key a client is counted under.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import StringTransport

from txpulse.logs.peers import clientKey, formatPeer, peerOf
from txpulse.server.ratelimit import clientKey as reexported


def test_format_peer() -> None:
    """
    C{host:port}, with brackets around an IPv6 host; anything else as text.
    """
    assert formatPeer(IPv4Address("TCP", "192.0.2.7", 4000)) == "192.0.2.7:4000"
    assert formatPeer(IPv6Address("TCP", "2001:db8::1", 4000)) == "[2001:db8::1]:4000"
    assert formatPeer(UNIXAddress(b"/run/s")) == str(UNIXAddress(b"/run/s"))


def test_peer_of_a_transport() -> None:
    """
    The transport's peer, or C{"?"} without a transport or an address.
    """

    class NoAddress:
        def getPeer(self) -> None:
            raise NotImplementedError

    assert peerOf(StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 5))) == "10.0.0.1:5"
    assert peerOf(None) == "?"
    assert peerOf(NoAddress()) == "?"


def test_client_key() -> None:
    """
    IPv4 addresses as they are, IPv6 ones by their C{/64}, IPv4-mapped ones
    as IPv4; the rate limiter uses the same function.
    """
    assert clientKey(IPv4Address("TCP", "192.0.2.7", 1)) == "192.0.2.7"
    assert clientKey(IPv6Address("TCP", "2001:db8:1:2:ffff::9", 1)) == "2001:db8:1:2::/64"
    assert clientKey(IPv6Address("TCP", "fe80::1%eth0", 1)) == "fe80::/64"
    assert clientKey(IPv6Address("TCP", "::ffff:192.0.2.7", 1)) == "192.0.2.7"
    assert clientKey(IPv6Address("TCP", "::1", 1)) == "::/64"
    assert reexported is clientKey

"""
Tests for the client address behind a trusted reverse proxy: the rule
(L{txpulse.logs.peers.forwardedClient}, L{TrustedProxies}), the address it
makes (L{txpulse.server.proxies.clientAddress}) and what a
L{WebSocketSite} with C{trustedProxies} does with it (access log, log
lines, connection caps, the authentication rate limit), in memory.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.static import Data

from txpulse import WebSocketResource
from txpulse.demos.apps import EchoFactory
from txpulse.logs.peers import TrustedProxies, forwardedClient, peerOf
from txpulse.plugin.tap import Options, siteOptions
from txpulse.server.auth import ApiKeys, RequireKey
from txpulse.server.proxies import clientAddress
from txpulse.server.ratelimit import FailureLimiter
from txpulse.server.site import WebSocketSite

from ..support.http import Kept
from ..support.logs import AccessLog, captured_logs
from ..support.requests import upgrade_request
from ..support.transports import CountingTransport

LOCAL = TrustedProxies(["127.0.0.1", "::1"])


def client(peer: str, *headers: str, trusted: TrustedProxies = LOCAL) -> str | None:
    """
    L{forwardedClient} of a request from C{peer} with one
    C{X-Forwarded-For} header per value of C{headers}.
    """
    return forwardedClient(peer, [value.encode("latin-1") for value in headers], trusted)


# -- the rule --------------------------------------------------------------------------------


def test_header_from_an_untrusted_peer_is_ignored() -> None:
    """
    A client talking to the server directly cannot choose its address by
    sending C{X-Forwarded-For}: the header is ignored (C{None}: the peer's
    own address stands), whatever it says.
    """
    assert client("198.51.100.9", "127.0.0.1") is None
    assert client("198.51.100.9", "203.0.113.7") is None
    assert client("2001:db8::9", "203.0.113.7") is None
    # Nothing is trusted unless named.
    assert client("127.0.0.1", "203.0.113.7", trusted=TrustedProxies()) is None


def test_trusted_proxy_names_the_client() -> None:
    """
    From a trusted proxy, the address it appended is the client; without
    the header (or with an empty one) the peer stands.
    """
    assert client("127.0.0.1", "203.0.113.7") == "203.0.113.7"
    assert client("127.0.0.1") is None
    assert client("127.0.0.1", "") is None
    assert client("127.0.0.1", " , ,") is None


def test_spoofed_entries_left_of_the_proxy_are_not_reached() -> None:
    """
    A client that sends its own C{X-Forwarded-For} through the proxy gets
    its entries put to the left of the one the proxy appends: the
    right-most address is taken, so the spoofed ones (even one naming a
    trusted proxy) are never reached.
    """
    assert client("127.0.0.1", "6.6.6.6, 203.0.113.7") == "203.0.113.7"
    assert client("127.0.0.1", "127.0.0.1, 203.0.113.7") == "203.0.113.7"
    assert client("127.0.0.1", "10.0.0.1", "203.0.113.7") == "203.0.113.7"


def test_chain_of_trusted_proxies() -> None:
    """
    Behind several proxies (a load balancer, then nginx), every trusted hop
    is skipped from the right, and the first untrusted one is the client;
    hops split over several header lines are one list, in order.
    """
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert client("127.0.0.1", "203.0.113.7, 10.0.0.2, 10.1.2.3", trusted=trusted) == "203.0.113.7"
    assert client("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2", trusted=trusted) == "203.0.113.7"
    assert client("127.0.0.1", "203.0.113.7", "10.0.0.2,10.1.2.3", trusted=trusted) == "203.0.113.7"
    # Every hop trusted (an internal client): the left-most one.
    assert client("127.0.0.1", "10.0.0.5, 10.0.0.2", trusted=trusted) == "10.0.0.5"
    # A hop that is not an address ends the walk: the last address read
    # before it is as far as anything can be vouched for.
    assert client("127.0.0.1", "203.0.113.7, unknown, 10.0.0.2", trusted=trusted) == "10.0.0.2"
    assert client("127.0.0.1", "203.0.113.7, unknown", trusted=trusted) is None
    assert client("127.0.0.1", "203.0.113.7, _hidden", trusted=trusted) is None


def test_ipv6() -> None:
    """
    IPv6 peers and hops: compared as addresses and given back normalized,
    with brackets and ports (as some proxies write them) taken off, and an
    IPv4-mapped IPv6 address (an IPv4 peer on a dual-stack socket) the same
    as its IPv4 address, on either side.
    """
    assert client("::1", "2001:DB8:0::0001") == "2001:db8::1"
    assert client("0:0:0:0:0:0:0:1", "[2001:db8::1]") == "2001:db8::1"
    assert client("::1", "[2001:db8::1]:4711") == "2001:db8::1"
    assert client("::1", "203.0.113.7:4711") == "203.0.113.7"
    assert client("::ffff:127.0.0.1", "::ffff:203.0.113.7") == "203.0.113.7"
    assert client("fe80::1%eth0", "203.0.113.7") is None
    assert client("fe80::1%eth0", "203.0.113.7", trusted=TrustedProxies(["fe80::/10"])) == "203.0.113.7"
    assert client("::1", "2001:db8::1, ::1") == "2001:db8::1"
    assert client("::2", "2001:db8::1") is None


def test_cidr_networks() -> None:
    """
    A trusted proxy may be a network: its addresses match, the next ones do
    not; host bits of the network are ignored; an IPv4-mapped network
    matches IPv4 peers.
    """
    trusted = TrustedProxies(["10.0.0.0/8", "fd00::/8", "192.168.1.77/24", "::ffff:172.16.0.0/108"])
    assert list(trusted) == ["10.0.0.0/8", "fd00::/8", "192.168.1.0/24", "172.16.0.0/12"]
    for peer in ("10.0.0.1", "10.255.255.255", "fd12:3456::1", "192.168.1.1", "172.31.0.1", "::ffff:10.1.1.1"):
        assert peer in trusted, peer
        assert client(peer, "203.0.113.7", trusted=trusted) == "203.0.113.7"
    for peer in ("11.0.0.1", "9.255.255.255", "fe00::1", "192.168.2.1", "172.32.0.1", "not an address"):
        assert peer not in trusted, peer
        assert client(peer, "203.0.113.7", trusted=trusted) is None


@pytest.mark.parametrize("bad", ["localhost", "127.0.0.1:80", "10.0.0.0/33", "10.0.0.0/x", "", "::ffff:1.2.3.4/90"])
def test_a_trusted_proxy_must_be_an_address_or_a_network(bad: str) -> None:
    """
    Host names, ports and malformed networks are refused with a message
    naming the value.
    """
    with pytest.raises(ValueError, match="not an IP address or a CIDR network"):
        TrustedProxies([bad])


# -- the address -----------------------------------------------------------------------------


def test_client_address() -> None:
    """
    L{clientAddress} gives the peer back unless the rule names a client,
    then a Twisted address of the client's family with port 0 (unknown),
    which log lines show as the host alone.
    """
    headers = Headers({b"X-Forwarded-For": [b"203.0.113.7"]})
    local = IPv4Address("TCP", "127.0.0.1", 4000)
    assert clientAddress(local, headers, LOCAL) == IPv4Address("TCP", "203.0.113.7", 0)
    assert clientAddress(IPv6Address("TCP", "::1", 4000), Headers({b"X-Forwarded-For": [b"2001:db8::7"]}), LOCAL) == (
        IPv6Address("TCP", "2001:db8::7", 0)
    )
    outside = IPv4Address("TCP", "198.51.100.9", 4000)
    assert clientAddress(outside, headers, LOCAL) is outside
    assert clientAddress(local, headers, None) is local
    assert clientAddress(local, Headers(), LOCAL) is local
    unix = UNIXAddress(b"/run/txpulse.sock")
    assert clientAddress(unix, headers, LOCAL) is unix
    # Log lines name a request, or a server-side WebSocket (which holds its
    # upgrade request), by the request's client address.
    request: Any = type("R", (), {"getClientAddress": lambda self: IPv4Address("TCP", "203.0.113.7", 0)})()
    wire: Any = type("W", (), {"request": request, "getPeer": lambda self: local})()
    assert peerOf(request) == peerOf(wire) == "203.0.113.7"


# -- a site behind a proxy ------------------------------------------------------------------


def make_site(**kwargs: Any) -> tuple[WebSocketSite, AccessLog, Kept]:
    """
    A L{WebSocketSite} with C{/kept} (L{Kept}) and C{/ws} (echo), its access
    log collected.
    """
    clock = Clock()
    root = Resource()
    kept = Kept()
    root.putChild(b"kept", kept)
    root.putChild(b"ws", WebSocketResource(EchoFactory(), clock=clock, pingInterval=None))
    root.putChild(b"page", Data(b"hello", "text/plain"))
    site = WebSocketSite(root, reactor=clock, **kwargs)
    access = AccessLog()
    site.logFile = access
    return site, access, kept


def connect(site: Any, host: str = "127.0.0.1", port: int = 4000) -> tuple[Any, CountingTransport]:
    """
    A connection to C{site} from C{host:port}.
    """
    address = IPv6Address("TCP", host, port) if ":" in host else IPv4Address("TCP", host, port)
    protocol = site.buildProtocol(address)
    transport = CountingTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    return protocol, transport


def get(site: Any, path: str, peer: str, forwardedFor: str | None = None, extra: str = "") -> bytes:
    """
    One C{GET path} from C{peer}, with C{X-Forwarded-For} when given; the
    raw response.
    """
    protocol, transport = connect(site, peer)
    header = "" if forwardedFor is None else f"X-Forwarded-For: {forwardedFor}\r\n"
    protocol.dataReceived(f"GET {path} HTTP/1.1\r\nHost: x\r\n{header}{extra}Connection: close\r\n\r\n".encode())
    response: bytes = transport.value()
    return response


def test_request_client_is_the_forwarded_address() -> None:
    """
    Through a trusted proxy, C{request.getClientAddress()} and the access
    log's address are the forwarded client; from anyone else, the peer, the
    header ignored.
    """
    site, access, kept = make_site(trustedProxies=["127.0.0.1"])
    assert b"ok" in get(site, "/kept", "127.0.0.1", "6.6.6.6, 203.0.113.7")
    assert b"ok" in get(site, "/kept", "198.51.100.9", "203.0.113.7")
    assert b"ok" in get(site, "/kept", "127.0.0.1")
    assert [request.getClientAddress().host for request in kept.requests] == [
        "203.0.113.7",
        "198.51.100.9",
        "127.0.0.1",
    ]
    assert [line.split(" ", 1)[0] for line in access.lines] == ['"203.0.113.7"', '"198.51.100.9"', '"127.0.0.1"']


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    """
    A site that trusts no proxy (the default) ignores C{X-Forwarded-For}
    even from loopback.
    """
    site, access, kept = make_site()
    get(site, "/kept", "127.0.0.1", "203.0.113.7")
    assert kept.requests[0].getClientAddress() == IPv4Address("TCP", "127.0.0.1", 4000)


def test_log_lines_name_the_forwarded_client() -> None:
    """
    A refused upgrade, a refused request and a WebSocket protocol error are
    logged with the forwarded client's address, not the proxy's.
    """
    site, _, _ = make_site(trustedProxies=["::1"], allowedHosts=["good.example"])
    with captured_logs() as logs:
        get(site, "/ws", "::1", "2001:db8::7", "Upgrade: websocket\r\nConnection: Upgrade\r\n")
        protocol, transport = connect(site, "::1")
        protocol.dataReceived(upgrade_request("/ws", host="good.example", X_Forwarded_For="2001:db8::8"))
        assert transport.value().startswith(b"HTTP/1.1 101")
        protocol.dataReceived(b"\x8f\x80\x00\x00\x00\x00")  # an unknown opcode: 1002
    assert [line for line in logs if "2001:db8::7" in line and "not an allowed host" in line], logs
    assert [line for line in logs if "protocol error from 2001:db8::8" in line], logs
    assert not [line for line in logs if "::1" in line and "refused" in line.lower()], logs


def test_trusted_proxy_is_exempt_from_the_per_address_cap() -> None:
    """
    Every client behind a proxy shares its address, so a trusted proxy's
    connections are not counted per address (they still count against the
    total cap); any other address still is.
    """
    site, _, _ = make_site(trustedProxies=["127.0.0.0/8"], maxConnectionsPerAddress=2, maxConnections=6)
    proxied = [connect(site, "127.0.0.1", port)[1] for port in range(1, 6)]
    assert not any(transport.disconnecting for transport in proxied)
    direct = [connect(site, "198.51.100.9", port)[1] for port in range(1, 4)]
    assert [transport.disconnecting for transport in direct] == [False, True, True]
    assert direct[1].value().startswith(b"HTTP/1.1 503")
    _, over = connect(site, "127.0.0.2", 9)
    assert over.value().startswith(b"HTTP/1.1 503")
    assert site.openConnections == 6


def test_failure_limit_applies_per_forwarded_client() -> None:
    """
    The authentication rate limit counts each client behind the proxy on
    its own: one client over its limit gets 429, another through the same
    proxy does not; and a client talking directly cannot escape its limit
    by changing C{X-Forwarded-For}.
    """
    clock = Clock()
    limiter = FailureLimiter(burst=2, period=20.0, clock=clock)
    root = Resource()
    root.putChild(b"metrics", RequireKey(Data(b"metrics", "text/plain"), ApiKeys({"k-a": "alice"}), limiter))
    site = WebSocketSite(root, reactor=clock, trustedProxies=["127.0.0.1"])
    wrong = "Authorization: Bearer wrong\r\n"
    for _ in range(2):
        assert b" 401 " in get(site, "/metrics", "127.0.0.1", "203.0.113.1", wrong)
    assert b" 429 " in get(site, "/metrics", "127.0.0.1", "203.0.113.1", wrong)
    assert b" 401 " in get(site, "/metrics", "127.0.0.1", "203.0.113.2", wrong)
    for spoofed in ("203.0.113.3", "203.0.113.4", "203.0.113.5"):
        response = get(site, "/metrics", "198.51.100.9", spoofed, wrong)
    assert b" 429 " in response


def test_plugin_option() -> None:
    """
    C{--trusted-proxy} is repeatable, takes addresses and networks, reaches
    the site, and refuses anything else naming the option.
    """
    options = Options()
    options.parseOptions(["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8", "--no-metrics"])
    site = WebSocketSite(Resource(), **siteOptions(options))
    assert list(site.trustedProxies) == ["127.0.0.1/32", "10.0.0.0/8"]
    options = Options()
    options.parseOptions(["--no-metrics"])
    assert not WebSocketSite(Resource(), **siteOptions(options)).trustedProxies
    from twisted.python import usage

    with pytest.raises(usage.UsageError, match="--trusted-proxy: not an IP address"):
        Options().parseOptions(["--trusted-proxy", "proxy.example"])

"""
Tests for L{txpulse.server.site.WebSocketSite}, in memory (StringTransport and
Clock): the deadline of every request, bounded keep-alive, connection caps,
request bodies refused at the head, and the C{Host} allow-list.
"""

from __future__ import annotations

import os
import resource as rlimit
from typing import Any

import pytest
from twisted.internet import _producer_helpers
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock, Cooperator
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import Data, File
from zope.interface import implementer

from txpulse import WebSocketResource
from txpulse.core.frames import Opcode
from txpulse.demos.apps import EchoFactory
from txpulse.server.site import REFUSAL_LOG_INTERVAL, AllowedHosts, WebSocketSite, defaultMaxConnections

from ..support.frames import client_frame, server_frames
from ..support.http import Kept
from ..support.logs import AccessLog, captured_logs
from ..support.requests import upgrade_request
from ..support.transports import CountingTransport

PAGE = b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n"


class Upload(Resource):
    """
    Takes request bodies: answers with their size, and counts the requests
    it rendered.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.rendered = 0

    def render_POST(self, request: Request) -> bytes:
        self.rendered += 1
        assert request.content is not None
        return b"got %d" % len(request.content.read())


def make_site(**kwargs: Any) -> tuple[WebSocketSite, Clock, Upload]:
    """
    A L{WebSocketSite} on a L{Clock} with C{/ws} (echo), C{/page} (static)
    and C{/upload} (L{Upload}); C{kwargs} go to the site.
    """
    clock = Clock()
    root = Resource()
    root.putChild(b"ws", WebSocketResource(EchoFactory(), clock=clock, pingInterval=None))
    root.putChild(b"page", Data(b"hello", "text/plain"))
    upload = Upload()
    root.putChild(b"upload", upload)
    kwargs.setdefault("requestTimeout", 10.0)
    return WebSocketSite(root, reactor=clock, **kwargs), clock, upload


def connect(site: WebSocketSite, host: str = "127.0.0.1", port: int = 4000) -> tuple[Any, CountingTransport]:
    """
    A connection to C{site} from C{host:port}.
    """
    address = IPv4Address("TCP", host, port)
    protocol = site.buildProtocol(address)
    transport = CountingTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    return protocol, transport


def connection(requestTimeout: float = 10.0, **kwargs: Any) -> tuple[Any, CountingTransport, Clock]:
    site, clock, _ = make_site(requestTimeout=requestTimeout, **kwargs)
    protocol, transport = connect(site)
    return protocol, transport, clock


def drip(protocol: Any, clock: Clock, data: bytes, interval: float) -> None:
    for i in range(len(data)):
        protocol.dataReceived(data[i : i + 1])
        clock.advance(interval)


# -- the deadline of every request ---------------------------------------------------------


def test_slow_headers_get_408_at_the_deadline() -> None:
    """
    A client dribbling header bytes (each resetting Site's idle timer) is
    answered 408 and closed when the first-request deadline passes, with a
    log line.
    """
    protocol, transport, clock = connection(10)
    request = upgrade_request()
    for i in range(9):
        protocol.dataReceived(request[i : i + 1])
        clock.advance(1)
    assert transport.value() == b""
    with captured_logs() as logs:
        clock.advance(1)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout")
    assert transport.disconnecting
    assert any("408" in line for line in logs)


def test_prompt_request_is_not_affected() -> None:
    """
    A request completed in time is served, and the deadline is disarmed.
    """
    protocol, transport, clock = connection(10)
    protocol.dataReceived(PAGE)
    assert b"hello" in transport.value()
    clock.advance(9.9)
    assert b"408" not in transport.value()


def test_second_request_has_the_deadline_too() -> None:
    """
    After a quick first request, the next request's head dribbled one byte
    a second gets 408 once C{requestTimeout} has passed since its first
    byte, then the connection closes, with a log line.
    """
    protocol, transport, clock = connection(3.0)
    protocol.dataReceived(PAGE)
    assert b"hello" in transport.value()
    transport.clear()
    clock.advance(2)  # idle between requests: within the keep-alive time
    with captured_logs() as logs:
        drip(protocol, clock, b"GET /page HTTP/1.1\r\nX-Slow: aaaaaaa", 1)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout")
    assert transport.disconnecting
    assert any("no complete request within 3.0s (408)" in line for line in logs)


def test_deadline_covers_pipelined_requests() -> None:
    """
    A second request arriving (partly) in the same read as the first starts
    its deadline once the first is answered, and gets 408 if it never
    completes.
    """
    protocol, transport, clock = connection(3)
    protocol.dataReceived(PAGE + b"GET /page HTTP/1.1\r\nX-")
    assert transport.value().count(b"hello") == 1
    clock.advance(3)
    assert b"408 Request Timeout" in transport.value()
    assert transport.disconnecting


def test_refused_upgrade_closes_the_connection() -> None:
    """
    A non-101 answer from a L{WebSocketResource} (here 426: no upgrade
    headers) says C{Connection: close} and closes the connection, so no
    further request (slow or not) can follow on it.
    """
    protocol, transport, clock = connection(10)
    protocol.dataReceived(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
    head = transport.value().split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 426")
    assert b"connection: close" in head
    assert transport.disconnecting


def test_idle_keepalive_connection_is_closed() -> None:
    """
    A connection idle C{keepAliveTimeout} seconds after a response is closed,
    without an answer.
    """
    protocol, transport, clock = connection(10, keepAliveTimeout=5)
    protocol.dataReceived(PAGE)
    transport.clear()
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.1)
    assert transport.disconnecting
    assert transport.value() == b""


def test_keepalive_requests_within_the_limits_are_served() -> None:
    """
    Requests each arriving within the keep-alive time are all served on one
    connection, up to C{maxRequestsPerConnection}.
    """
    protocol, transport, clock = connection(10, keepAliveTimeout=5, maxRequestsPerConnection=10)
    for _ in range(9):
        protocol.dataReceived(PAGE)
        clock.advance(4)
    assert transport.value().count(b"hello") == 9
    assert b"connection: close" not in transport.value().lower()
    assert not transport.disconnecting


def test_requests_per_connection_are_bounded() -> None:
    """
    The C{maxRequestsPerConnection}th response carries C{Connection: close}
    and the connection closes after it.
    """
    protocol, transport, clock = connection(10, maxRequestsPerConnection=3)
    protocol.dataReceived(PAGE * 2)
    assert not transport.disconnecting
    protocol.dataReceived(PAGE)
    responses = transport.value().split(b"HTTP/1.1 200")[1:]
    assert len(responses) == 3
    assert b"connection: close" not in responses[1].lower()
    assert b"connection: close" in responses[2].lower()
    assert transport.disconnecting


def test_websocket_outlives_the_request_deadline() -> None:
    """
    An upgraded connection is not touched by the deadlines (request,
    keep-alive) nor by Site.timeOut.
    """
    protocol, transport, clock = connection(10)
    protocol.dataReceived(upgrade_request())
    clock.advance(3600)
    protocol.dataReceived(client_frame(Opcode.TEXT, b"still here"))
    _, _, rest = transport.value().partition(b"\r\n\r\n")
    assert [f.payload for f in server_frames(rest)] == ["still here"]
    assert not transport.disconnecting


def test_no_deadline_when_disabled() -> None:
    """
    C{requestTimeout=0} disables the deadline.
    """
    protocol, transport, clock = connection(0)
    protocol.dataReceived(b"GET")
    clock.advance(30)
    assert transport.value() == b""


# -- connection caps ------------------------------------------------------------------------


def test_total_cap_refuses_with_503() -> None:
    """
    Over C{maxConnections} open connections, a new one is answered 503 and
    closed at once, without disturbing those open; once one closes, a new
    one is admitted again.
    """
    site, clock, _ = make_site(maxConnections=2, maxConnectionsPerAddress=0)
    first, firstTransport = connect(site, "10.0.0.1")
    connect(site, "10.0.0.2")
    with captured_logs() as logs:
        _, refused = connect(site, "10.0.0.3")
    assert refused.value().startswith(b"HTTP/1.1 503 Service Unavailable")
    assert refused.disconnecting
    assert any("10.0.0.3" in line and "--max-connections" in line for line in logs)
    assert site.openConnections == 2
    first.dataReceived(PAGE)
    assert b"hello" in firstTransport.value()
    first.connectionLost(None)
    assert site.openConnections == 1
    _, admitted = connect(site, "10.0.0.3")
    assert not admitted.disconnecting and admitted.value() == b""


def test_per_address_cap() -> None:
    """
    Over C{maxConnectionsPerAddress} connections from one address, new ones
    from it are refused, while other addresses are still admitted; the log
    line says what to do behind a reverse proxy.
    """
    site, clock, _ = make_site(maxConnectionsPerAddress=2)
    connect(site, "10.0.0.1", 1)
    connect(site, "10.0.0.1", 2)
    with captured_logs() as logs:
        _, refused = connect(site, "10.0.0.1", 3)
    assert refused.value().startswith(b"HTTP/1.1 503")
    assert any("per-address cap" in line and "reverse proxy" in line for line in logs)
    _, other = connect(site, "10.0.0.2")
    assert not other.disconnecting


def test_caps_disabled_with_zero() -> None:
    """
    C{maxConnections=0} and C{maxConnectionsPerAddress=0}: no caps.
    """
    site, clock, _ = make_site(maxConnections=0, maxConnectionsPerAddress=0)
    transports = [connect(site, "10.0.0.1", port)[1] for port in range(1, 301)]
    assert not any(t.disconnecting for t in transports)
    assert site.openConnections == 300


def test_upgraded_connections_count_until_closed() -> None:
    """
    A WebSocket counts against the caps for as long as it is open.
    """
    site, clock, _ = make_site(maxConnections=1)
    protocol, transport = connect(site)
    protocol.dataReceived(upgrade_request())
    assert transport.value().startswith(b"HTTP/1.1 101")
    assert connect(site, "10.0.0.9")[1].disconnecting
    protocol.connectionLost(None)
    assert site.openConnections == 0
    assert not connect(site, "10.0.0.9")[1].disconnecting


def test_refusals_are_logged_in_aggregate() -> None:
    """
    A flood of refused connections makes one log line at once, then one
    summary per L{REFUSAL_LOG_INTERVAL} while it lasts, then nothing.
    """
    site, clock, _ = make_site(maxConnections=1)
    connect(site, "10.0.0.1")
    with captured_logs() as logs:
        for port in range(500):
            connect(site, "10.0.0.2", port)
        clock.advance(REFUSAL_LOG_INTERVAL)
        for port in range(10):
            connect(site, "10.0.0.3", port)
        clock.advance(REFUSAL_LOG_INTERVAL)
        clock.advance(REFUSAL_LOG_INTERVAL * 3)
    refusals = [line for line in logs if "Refused" in line]
    assert len(refusals) == 3, refusals
    assert "Refused 499 more connections" in refusals[1] and "10.0.0.2 (499)" in refusals[1]
    assert "Refused 10 more connections" in refusals[2] and "10.0.0.3 (10)" in refusals[2]
    assert not clock.getDelayedCalls()


@implementer(ISSLTransport)
class TLSTransport(CountingTransport):
    """
    A transport that says it is TLS.
    """

    def getPeerCertificate(self) -> None:
        return None


def test_tls_connection_over_the_cap_is_reset() -> None:
    """
    Under TLS a refused connection is aborted at once: no handshake is
    spent on it, and no 503 is written.
    """
    site, clock, _ = make_site(maxConnections=1)
    connect(site)
    address = IPv4Address("TCP", "10.0.0.5", 1)
    protocol = site.buildProtocol(address)
    transport = TLSTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    assert transport.aborted
    assert transport.value() == b""


def test_default_total_cap_follows_the_open_files_limit() -> None:
    """
    By default the total cap is the soft open-files limit less a reserve
    (a tenth, between 128 and 1,024).
    """
    soft, _ = rlimit.getrlimit(rlimit.RLIMIT_NOFILE)
    if soft == rlimit.RLIM_INFINITY:
        assert defaultMaxConnections() == 0
        return
    reserve = min(1024, max(128, soft // 10))
    assert defaultMaxConnections() == max(soft - reserve, 1)
    site, _, _ = make_site()
    assert site.maxConnections == defaultMaxConnections()


# -- request bodies -----------------------------------------------------------------------


def post(body: bytes | None = None, *, length: int | None = None, extra: bytes = b"") -> bytes:
    size = len(body or b"") if length is None else length
    return b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % size + extra + b"\r\n" + (body or b"")


def test_body_over_the_limit_is_refused_at_the_head() -> None:
    """
    A C{Content-Length} over C{maxRequestBody} is answered 413 and the
    connection closed as soon as the head arrives: the body is not read
    (nor spooled), the resource not rendered, no C{100 Continue} sent.
    """
    site, clock, upload = make_site(maxRequestBody=1000)
    protocol, transport = connect(site)
    with captured_logs() as logs:
        protocol.dataReceived(post(length=10**12, extra=b"Expect: 100-continue\r\n") + b"x" * 5000)
    assert transport.value().startswith(b"HTTP/1.1 413 Content Too Large")
    assert b"100 Continue" not in transport.value()
    assert transport.disconnecting
    assert upload.rendered == 0
    assert protocol._channel.requests[-1].content is None  # nothing spooled
    assert any("1000000000000-byte request body" in line and "413" in line for line in logs)
    clock.advance(60)
    assert transport.value().count(b"HTTP/1.1") == 1  # no 408 after the 413


def test_body_within_the_limit_is_taken() -> None:
    """
    A body of exactly C{maxRequestBody} bytes reaches the resource.
    """
    site, clock, upload = make_site(maxRequestBody=1000)
    protocol, transport = connect(site)
    protocol.dataReceived(post(b"a" * 1000))
    assert transport.value().endswith(b"got 1000")


def test_zero_limit_refuses_any_body() -> None:
    """
    C{maxRequestBody=0}: a one-byte body is refused (413), a request
    without one is served.
    """
    site, clock, upload = make_site(maxRequestBody=0)
    protocol, transport = connect(site)
    protocol.dataReceived(PAGE)
    assert b"hello" in transport.value()
    protocol.dataReceived(post(b"a"))
    assert b"413" in transport.value() and b"takes no request bodies" in transport.value()
    assert transport.disconnecting


def test_chunked_body_is_cut_at_the_limit() -> None:
    """
    A chunked body is counted as it arrives: the chunk that takes it over
    C{maxRequestBody} gets 413 and a close, and nothing more is read.
    """
    site, clock, upload = make_site(maxRequestBody=1000)
    protocol, transport = connect(site)
    protocol.dataReceived(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    protocol.dataReceived(b"200\r\n" + b"a" * 512 + b"\r\n")
    assert transport.value() == b""
    with captured_logs() as logs:
        protocol.dataReceived(b"200\r\n" + b"a" * 512 + b"\r\n0\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413")
    assert transport.disconnecting
    assert upload.rendered == 0
    assert any("chunked request body over the limit of 1000" in line for line in logs)


def test_chunked_body_within_the_limit_is_taken() -> None:
    """
    A chunked body within the limit reaches the resource whole.
    """
    site, clock, upload = make_site(maxRequestBody=1000)
    protocol, transport = connect(site)
    protocol.dataReceived(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1f4\r\n" + b"a" * 500 + b"\r\n1f4\r\n" + b"b" * 500 + b"\r\n0\r\n\r\n"
    )
    assert transport.value().endswith(b"got 1000")


def test_no_body_limit_when_none() -> None:
    """
    C{maxRequestBody=None}: bodies of any announced size are read (Twisted's
    behaviour).
    """
    site, clock, upload = make_site(maxRequestBody=None)
    protocol, transport = connect(site)
    protocol.dataReceived(post(b"a" * 200_000))
    assert transport.value().endswith(b"got 200000")


# -- the Host allow-list -----------------------------------------------------------------------


def request_for(host: bytes | None, target: bytes = b"/page", version: bytes = b"HTTP/1.1") -> bytes:
    head = b"GET " + target + b" " + version + b"\r\n"
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    return head + b"\r\n"


@pytest.mark.parametrize(
    "host",
    [b"example.com", b"EXAMPLE.com.", b"example.com:8080", b"localhost:8080", b"[::1]:8080", b"localhost"],
)
def test_allowed_hosts_are_served(host: bytes) -> None:
    """
    A C{Host} naming an allowed host (any port for a bare name, the given
    port for C{name:port}; without case, trailing dot; C{localhost} alone
    meaning port 80 here) is served.
    """
    site, clock, _ = make_site(allowedHosts=["example.com", "localhost:8080", "localhost:80", "[::1]:8080"])
    protocol, transport = connect(site)
    protocol.dataReceived(request_for(host))
    assert b"hello" in transport.value()


@pytest.mark.parametrize(
    "host",
    [b"attacker.example", b"localhost:9999", b"example.com.attacker.example", b"[::1]:9999", b"[::1]", b"a:b"],
)
def test_other_hosts_get_421(host: bytes) -> None:
    """
    Any other C{Host} is answered 421 Misdirected Request and the
    connection closed, with a log line (DNS rebinding).
    """
    site, clock, _ = make_site(allowedHosts=["example.com", "localhost:8080", "[::1]:8080"])
    protocol, transport = connect(site)
    with captured_logs() as logs:
        protocol.dataReceived(request_for(host))
    assert transport.value().startswith(b"HTTP/1.1 421 Misdirected Request")
    assert transport.disconnecting
    assert any("is not an allowed host (421)" in line for line in logs)


def test_upgrade_with_a_foreign_host_is_refused() -> None:
    """
    The allow-list applies to WebSocket upgrades as well as to pages.
    """
    site, clock, _ = make_site(allowedHosts=["example.com"])
    protocol, transport = connect(site)
    protocol.dataReceived(upgrade_request())  # Host: localhost
    assert transport.value().startswith(b"HTTP/1.1 421")


def test_absolute_form_target_is_checked() -> None:
    """
    In an absolute-form request target, the authority is the host checked.
    """
    site, clock, _ = make_site(allowedHosts=["example.com"])
    protocol, transport = connect(site)
    protocol.dataReceived(request_for(b"example.com", target=b"http://attacker.example/page"))
    assert transport.value().startswith(b"HTTP/1.1 421")


@pytest.mark.parametrize("request_bytes", [request_for(None), request_for(None, version=b"HTTP/1.0"),
                                           b"GET /page HTTP/1.1\r\nHost: example.com\r\nHost: example.com\r\n\r\n"])  # fmt: skip
def test_missing_or_repeated_host_gets_400(request_bytes: bytes) -> None:
    """
    With an allow-list, a request without C{Host} (HTTP/1.1 or 1.0) or with
    two is answered 400 and the connection closed.
    """
    site, clock, _ = make_site(allowedHosts=["example.com"])
    protocol, transport = connect(site)
    protocol.dataReceived(request_bytes)
    assert transport.value().startswith(b"HTTP/1.1 400 Bad Request")
    assert transport.disconnecting


def test_any_host_by_default() -> None:
    """
    Without C{allowedHosts}, any C{Host} (or none) is served.
    """
    protocol, transport, clock = connection()
    protocol.dataReceived(request_for(b"attacker.example") + request_for(None, version=b"HTTP/1.0"))
    assert transport.value().count(b"hello") == 2


@pytest.mark.parametrize("entry", ["", "a:b", "host:", "[::1", "[::1]x"])
def test_bad_allowed_host_entries(entry: str) -> None:
    """
    An allow-list entry that is not C{name} or C{name:port} is a
    C{ValueError}, and so is an empty list.
    """
    with pytest.raises(ValueError):
        AllowedHosts([entry])
    with pytest.raises(ValueError):
        AllowedHosts([])


# -- a response the peer does not take; closes that wait for the peer ---------------------------


class Hanging(Resource):
    """
    Writes 100,000 bytes of a response that never finishes.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> int:
        request.write(b"x" * 100_000)
        return NOT_DONE_YET


def hanging_site(**kwargs: Any) -> tuple[Any, CountingTransport, Clock]:
    """
    A connection to a site with C{/stream} (L{Hanging}) and C{/page}.
    """
    clock = Clock()
    root = Resource()
    root.putChild(b"stream", Hanging())
    root.putChild(b"page", Data(b"hello", "text/plain"))
    protocol, transport = connect(WebSocketSite(root, reactor=clock, requestTimeout=10.0, **kwargs))
    return protocol, transport, clock


def advance(clock: Clock, seconds: float, step: float = 0.1) -> None:
    """
    Advance C{clock} by C{seconds} in small steps, as time passes for a
    reactor (L{Clock.advance} runs a call due midway at the end time, and a
    timer it re-arms starts from there).
    """
    for _ in range(round(seconds / step)):
        clock.advance(step)


def test_response_the_peer_does_not_take_is_aborted() -> None:
    """
    A response the transport holds back (its buffer full: the peer stopped
    reading) for C{sendTimeout} seconds gets the connection aborted, with a
    log line; before, nothing bounded it (the request deadline ends when
    the request is received, and Twisted's idle timeout is off while a
    request is handled).
    """
    protocol, transport, clock = hanging_site(sendTimeout=20.0)
    protocol.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"x" * 1000 in transport.value()
    transport.producer.pauseProducing()  # what a full transport buffer does
    with captured_logs() as logs:
        advance(clock, 19.9)
        assert not transport.aborted
        advance(clock, 5.1)
    assert transport.aborted
    assert any("took none of its response for 20s" in line for line in logs)


def test_response_that_keeps_draining_is_not_aborted() -> None:
    """
    A peer that reads slowly (the transport's buffer fills, then drains,
    again and again) keeps its connection for as long as the response
    lasts.
    """
    protocol, transport, clock = hanging_site(sendTimeout=20.0)
    protocol.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(30):
        transport.producer.pauseProducing()
        advance(clock, 9)
        transport.producer.resumeProducing()
        advance(clock, 1)
    assert not transport.aborted and not transport.disconnecting


def test_response_deadline_disabled_with_zero() -> None:
    """
    C{sendTimeout=0}: no deadline while a response is written.
    """
    protocol, transport, clock = hanging_site(sendTimeout=0)
    protocol.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    transport.producer.pauseProducing()
    clock.advance(3600)
    assert not transport.aborted


def test_idle_close_aborts_a_peer_that_does_not_take_the_rest() -> None:
    """
    An idle keep-alive connection is closed gracefully; if the peer does
    not take what is still queued for it (the close waits for that), it is
    aborted C{abortTimeout} (15) seconds later.
    """
    protocol, transport, clock = hanging_site(keepAliveTimeout=5.0)
    protocol.dataReceived(PAGE)
    clock.advance(5)
    assert transport.disconnecting and not transport.aborted
    clock.advance(15)
    assert transport.aborted


def test_closing_response_aborts_a_peer_that_does_not_take_it() -> None:
    """
    After a response with C{Connection: close}, the close becomes an abort
    C{abortTimeout} (15) seconds later if the connection is still open.
    """
    protocol, transport, clock = hanging_site()
    protocol.dataReceived(b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert transport.disconnecting and not transport.aborted
    clock.advance(14.9)
    assert not transport.aborted
    clock.advance(0.1)
    assert transport.aborted


# -- responses written into a full buffer (pipelining) ---------------------------------------


class BufferingTransport(CountingTransport):
    """
    A transport that behaves as Twisted's TCP one towards its producer: it
    holds what is written until L{drain}ed, asks its streaming producer to
    pause on I{every} write made while it holds more than C{bufferSize}
    bytes (C{FileDescriptor._maybePauseProducer}), and to resume once, when
    drained.

    @ivar held: bytes written since the last drain.
    @ivar mostHeld: the most it held at once.
    """

    bufferSize = 100

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self.mostHeld = 0
        self.producerPaused = False

    def write(self, data: bytes) -> None:
        super().write(data)
        self._hold(len(data))

    def writeSequence(self, data: Any) -> None:
        data = list(data)
        super().writeSequence(data)
        self._hold(sum(map(len, data)))

    def _hold(self, size: int) -> None:
        self.held += size
        self.mostHeld = max(self.mostHeld, self.held)
        if self.producer is not None and self.streaming and self.held > self.bufferSize:
            self.producerPaused = True
            self.producer.pauseProducing()

    def drain(self) -> None:
        """
        The peer took everything: resume the producer if it was paused.
        """
        self.held = 0
        if self.producer is not None and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()


def file_site(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, BufferingTransport, Clock]:
    """
    A connection over a L{BufferingTransport} to a site with C{/page}
    (L{Data}, written at once) and C{/file} (a 1,509-byte L{File}, written
    by a pull producer, as C{twistd txpulse} serves its pages); the
    producer's task runs on the returned L{Clock} (C{clock.advance(0)}).
    """
    clock = Clock()
    cooperator = Cooperator(scheduler=lambda work: clock.callLater(0, work), terminationPredicateFactory=lambda: bool)
    monkeypatch.setattr(_producer_helpers, "cooperate", cooperator.cooperate)
    (tmp_path / "file.html").write_bytes(b"f" * 1509)
    root = Resource()
    root.putChild(b"page", Data(b"hello", "text/plain"))
    root.putChild(b"file", File(str(tmp_path / "file.html")))
    site = WebSocketSite(root, reactor=clock, requestTimeout=10.0, keepAliveTimeout=15.0)
    address = IPv4Address("TCP", "127.0.0.1", 4000)
    protocol = site.buildProtocol(address)
    transport = BufferingTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    return protocol, transport, clock


def serve(transport: BufferingTransport, clock: Clock, steps: int = 1000) -> None:
    """
    Run the server until it has nothing left to do: its producers' tasks
    while any is due, else let the peer take what the transport holds;
    bounded by C{steps}.
    """
    for _ in range(steps):
        if clock.getDelayedCalls() and min(call.getTime() for call in clock.getDelayedCalls()) <= clock.seconds():
            clock.advance(0)
        elif transport.held:
            transport.drain()
        else:
            return


FILE = b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n"


def test_response_paused_twice_by_a_full_buffer_is_finished(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A response whose head and body both go into a full buffer: the
    transport asks for a pause at each write and for one resume once
    drained, and the response must still be finished. (Before, each pause
    reached the file's producer, a task that counts them: paused twice,
    resumed once, it stayed paused for good, with nothing queued, so no
    deadline ever ran out.)
    """
    protocol, transport, clock = file_site(tmp_path, monkeypatch)
    protocol.dataReceived(FILE)
    serve(transport, clock)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 1
    assert transport.value().endswith(b"f" * 1509)
    assert protocol._channel._state & 3 == 1  # idle, waiting for the next request


def test_pipelined_requests_through_a_full_buffer_are_all_answered(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    40 pipelined C{GET}s of a file, in one read, over a transport that is
    full after every response (the hostile test of issue 14: 34 of 40
    answered, then the connection held open with no deadline): all 40 are
    answered, one at a time (the transport never holds more than one
    response), and the connection then idles under C{keepAliveTimeout}.
    """
    protocol, transport, clock = file_site(tmp_path, monkeypatch)
    protocol.dataReceived(FILE * 40)
    serve(transport, clock)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 40
    assert transport.mostHeld < 2 * 1509
    assert not transport.disconnecting
    clock.advance(15)
    assert transport.disconnecting


def test_file_after_a_response_that_filled_the_buffer(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A response's producer registered while the buffer is still full (the
    previous, pipelined, response filled it) starts paused, and the
    transport's one resume starts it: the file is served. (Before, it was
    not paused; the resume then reached a task that was not paused, which
    raises C{NotPaused} out of the transport's write.)
    """
    protocol, transport, clock = file_site(tmp_path, monkeypatch)
    protocol.dataReceived(PAGE + FILE)
    assert transport.value().count(b"hello") == 1
    transport.drain()  # the peer reads before the file's producer runs
    serve(transport, clock)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 2
    assert transport.value().endswith(b"f" * 1509)


# -- IPv6 clients and the per-address cap -----------------------------------------------------


def connect_from(site: WebSocketSite, address: Any) -> CountingTransport:
    """
    A connection to C{site} from C{address}; its transport.
    """
    protocol = site.buildProtocol(address)
    transport = CountingTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    return transport


def test_per_address_cap_counts_an_ipv6_slash_64_as_one_client() -> None:
    """
    With a cap of 2, a third connection from another address of the same
    IPv6 C{/64} is refused (before, each address had its own cap, so one
    host could open as many connections as it has addresses: 2^64); another
    C{/64} has its own cap; an IPv4-mapped address counts as the IPv4 one.
    """
    site, clock, _ = make_site(maxConnectionsPerAddress=2)
    first = [connect_from(site, IPv6Address("TCP", f"2001:db8:1:2::{n}", 1)) for n in (1, 2)]
    assert not any(t.disconnecting for t in first)
    with captured_logs() as logs:
        third = connect_from(site, IPv6Address("TCP", "2001:db8:1:2:ffff::3", 1))
    assert third.disconnecting and third.value().startswith(b"HTTP/1.1 503")
    assert any("2001:db8:1:2::/64" in line and "[2001:db8:1:2:ffff::3]:1" in line for line in logs)
    assert not connect_from(site, IPv6Address("TCP", "2001:db8:1:3::1", 1)).disconnecting
    for _ in range(2):
        assert not connect_from(site, IPv4Address("TCP", "192.0.2.7", 1)).disconnecting
    assert connect_from(site, IPv6Address("TCP", "::ffff:192.0.2.7", 1)).disconnecting
    assert site.openConnections == 5


# -- request bodies in memory, not in temporary files ---------------------------------------


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_request_heads_open_no_file() -> None:
    """
    Fifty chunked request heads and fifty announcing 500,000 bytes leave
    the process's open files as they were (Twisted's default opens a
    temporary file for each: 100 file descriptors held by 100 heads).
    """
    site, clock, upload = make_site(maxRequestBody=1 << 20)
    before = open_files()
    for port in range(50):
        protocol, _ = connect(site, port=port)
        protocol.dataReceived(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        protocol, _ = connect(site, port=1000 + port)
        protocol.dataReceived(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\nab")
    assert open_files() == before


def test_large_chunked_body_is_taken_whole() -> None:
    """
    A chunked body past the in-memory size (64 KiB) still reaches the
    resource whole (spooled to a temporary file).
    """
    site, clock, upload = make_site(maxRequestBody=1 << 20)
    protocol, transport = connect(site)
    chunk = b"%x\r\n" % 50_000 + b"a" * 50_000 + b"\r\n"
    protocol.dataReceived(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 4)
    protocol.dataReceived(b"0\r\n\r\n")
    assert transport.value().endswith(b"got 200000")


def test_chunked_body_is_refused_at_the_head_when_none_is_taken() -> None:
    """
    C{maxRequestBody=0}: a chunked request is answered 413 at its head,
    before any chunk arrives.
    """
    site, clock, upload = make_site(maxRequestBody=0)
    protocol, transport = connect(site)
    with captured_logs() as logs:
        protocol.dataReceived(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413")
    assert transport.disconnecting
    assert any("a chunked request body, and none is taken (413)" in line for line in logs)


# -- log lines a client cannot make long ------------------------------------------------------


def logged_site() -> tuple[WebSocketSite, Kept, AccessLog]:
    """
    A L{WebSocketSite} serving L{Kept} everywhere, with its access log
    collected.
    """
    kept = Kept()
    site = WebSocketSite(kept, reactor=Clock())
    access = AccessLog()
    site.logFile = access  # type: ignore[assignment]
    return site, kept, access


def test_access_log_line_is_twisteds_combined_format() -> None:
    """
    For an ordinary request, the access-log line is exactly Twisted's
    combined format.
    """
    site, kept, access = logged_site()
    protocol, transport = connect(site)
    protocol.dataReceived(b'GET /a?b=c HTTP/1.1\r\nHost: x\r\nReferer: http://x/\r\nUser-Agent: curl/8 "q"\r\n\r\n')
    assert b"ok" in transport.value()
    [request] = kept.requests
    assert access.lines == [http.combinedLogFormatter(site._logDateTime, request) + "\n"]


def test_access_log_line_is_bounded() -> None:
    """
    A request with an 8 KB target, a 3 KB C{Referer} (with a token) and a
    3 KB C{User-Agent}, then one with a 4 KB method, make access-log lines
    of under 1 KiB (before: as long as all of their fields, 14 KB): each
    field cut to 200 characters, with its length; the token still redacted.
    """
    site, _, access = logged_site()
    protocol, transport = connect(site)
    target = b"/" + b"a" * 8000
    referrer = b"http://x/?ws_token=secret&" + b"r" * 3000
    head = [b"GET " + target + b" HTTP/1.1", b"Host: x", b"Referer: " + referrer, b"User-Agent: " + b"u" * 3000]
    protocol.dataReceived(b"\r\n".join(head) + b"\r\n\r\n")
    protocol.dataReceived(b"M" * 4000 + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    assert len(access.lines) == 2
    first, second = access.lines
    assert '"GET /' + "a" * 199 + '... (8001 characters) HTTP/1.1" 200 2' in first
    assert '"http://x/?ws_token=[REDACTED]&rrr' in first and "r... (3030 characters)" in first
    assert "u" * 200 + '... (3000 characters)"' in first
    assert "M" * 200 + "... (4000 characters) / HTTP/1.1" in second
    assert "secret" not in first and max(map(len, access.lines)) < 1024


def test_foreign_host_is_logged_clipped() -> None:
    """
    The log line of a refused C{Host} shows 200 characters of it at most,
    and its length.
    """
    site, clock, _ = make_site(allowedHosts=["example.com"])
    protocol, transport = connect(site)
    with captured_logs() as logs:
        protocol.dataReceived(request_for(b"h" * 8000))
    assert transport.value().startswith(b"HTTP/1.1 421")
    [line] = [line for line in logs if "(421)" in line]
    assert "h" * 200 + "... (8000 characters)' is not an allowed host (421)" in line
    assert len(line) < 400


# -- TLS ALPN ------------------------------------------------------------------------------------


def test_alpn_offers_only_http_1_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Where Twisted would offer HTTP/2 (the C{h2} package installed), a
    L{WebSocketSite} offers only C{http/1.1}: Twisted's HTTP/2 channel
    would skip every defence of the site.
    """
    monkeypatch.setattr(http, "H2_ENABLED", True)
    assert Site(Resource()).acceptableProtocols() == [b"h2", b"http/1.1"]
    assert make_site()[0].acceptableProtocols() == [b"http/1.1"]

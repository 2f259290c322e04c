"""
Tests for the fast path of L{txpulse.server.channel.WebSocketChannel}: a
read that is exactly one ordinary C{GET} head is parsed in one pass
(L{txpulse.core.httphead.parseRequestHead}) instead of line by line by
C{HTTPChannel}. It must be invisible: the same responses, the same request
seen by resources and accept hooks, and every defence of the site (allowed
hosts, trusted proxies, request caps, deadlines, send deadline) still in
force. In memory: a L{WebSocketSite} on a L{Clock}, fed through a
L{StringTransport}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.static import Data

from txpulse import WebSocketResource
from txpulse.core.frames import Opcode
from txpulse.demos.apps import EchoFactory
from txpulse.server.site import WebSocketSite

from ..support.frames import client_frame, server_frames
from ..support.requests import upgrade_request
from ..support.transports import CountingTransport

PAGE = b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass(frozen=True)
class Seen:
    """
    What a resource or an accept hook saw of a request.
    """

    method: bytes
    uri: bytes
    clientproto: bytes
    args: dict[bytes, list[bytes]]
    client: Any
    headers: list[tuple[bytes, list[bytes]]]

    @classmethod
    def of(cls, request: Request) -> Seen:
        return cls(
            request.method,
            request.uri,
            request.clientproto,
            dict(request.args or {}),
            request.getClientAddress(),
            [(name, list(values)) for name, values in request.requestHeaders.getAllRawHeaders()],
        )


class Kept(Resource):
    """
    Answers C{ok} and records what it saw of every request.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []

    def render_GET(self, request: Request) -> bytes:
        self.seen.append(Seen.of(request))
        return b"ok"


class Hanging(Resource):
    """
    Writes a little and leaves the response unfinished.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> object:
        request.write(b"x" * 100)
        return NOT_DONE_YET


@dataclass
class Server:
    """
    A L{WebSocketSite} on a L{Clock}: C{/ws} (echo, with an accept hook
    recording what it saw), C{/page} (static), C{/kept} (L{Kept}) and
    C{/stream} (L{Hanging}).
    """

    site: WebSocketSite
    clock: Clock
    accepted: list[Seen]
    kept: Kept


def make_server(**kwargs: Any) -> Server:
    """
    A L{Server}; C{kwargs} go to the site (default C{requestTimeout} 10 s,
    C{keepAliveTimeout} 5 s).
    """
    clock = Clock()
    accepted: list[Seen] = []

    def accept(request: Request) -> None:
        accepted.append(Seen.of(request))

    root = Resource()
    root.putChild(b"ws", WebSocketResource(EchoFactory(), clock=clock, pingInterval=None, accept=accept))
    root.putChild(b"page", Data(b"hello", "text/plain"))
    kept = Kept()
    root.putChild(b"kept", kept)
    root.putChild(b"stream", Hanging())
    kwargs.setdefault("requestTimeout", 10.0)
    kwargs.setdefault("keepAliveTimeout", 5.0)
    return Server(WebSocketSite(root, reactor=clock, **kwargs), clock, accepted, kept)


@dataclass
class Connection:
    """
    A connection to a L{Server}: its protocol, its channel and the lines
    its C{HTTPChannel} line parser was given (none when every request came
    by the fast path).
    """

    protocol: Any
    transport: CountingTransport
    channel: Any
    lines: list[bytes]

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def drip(self, data: bytes) -> None:
        """
        C{data} a byte per read: never one whole head, so always the line
        parser.
        """
        for i in range(len(data)):
            self.protocol.dataReceived(data[i : i + 1])


def connect(server: Server, host: str = "127.0.0.1", port: int = 4000) -> Connection:
    """
    A connection to C{server} from C{host:port}, the lines reaching its
    line parser recorded.
    """
    address = IPv4Address("TCP", host, port)
    protocol = server.site.buildProtocol(address)
    transport = CountingTransport()
    transport.peerAddr = address
    protocol.makeConnection(transport)
    channel = protocol._channel
    lines: list[bytes] = []
    lineReceived = channel.lineReceived

    def recordLine(line: bytes) -> None:
        lines.append(line)
        lineReceived(line)

    channel.lineReceived = recordLine
    return Connection(protocol, transport, channel, lines)


def call_name(call: IDelayedCall) -> str:
    """
    The name of the function or method C{call} (a L{Clock}'s) will call.
    """
    name: str = getattr(getattr(call, "func", None), "__name__", "?")
    return name


def calls_named(clock: Clock, name: str) -> list[IDelayedCall]:
    """
    The pending calls of C{clock} to a method named C{name}.
    """
    return [call for call in clock.getDelayedCalls() if call_name(call) == name]


def headers_of(response: bytes) -> dict[bytes, bytes]:
    """
    The header fields of the first response in C{response}, names
    lowercased.
    """
    head = response.split(b"\r\n\r\n", 1)[0]
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return fields


# -- (a) the same upgrade, one read or a byte per read ------------------------------------------

UPGRADES = {
    "plain": upgrade_request(),
    "query": upgrade_request("/ws?room=lobby&room=hall&token=a%20b"),
    "browser": upgrade_request(
        "/ws?x=1",
        host="example.com",
        Origin="https://example.com",
        Cookie="session=abc; theme=dark",
        User_Agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0.0.0",
        Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits",
        extra=[("X-Repeated", "one"), ("x-repeated", "  two\t"), ("X-Empty", "")],
    ),
    "lowercase-names": upgrade_request(extra=[("sec-websocket-protocol", "chat")])
    .lower()
    .replace(b"get /ws http/1.1", b"GET /ws HTTP/1.1"),
}


@pytest.mark.parametrize("name", sorted(UPGRADES))
def test_upgrade_in_one_read_is_answered_as_byte_by_byte(name: str) -> None:
    """
    An upgrade head in one read (the fast path: no line reaches the line
    parser) and the same head a byte per read (the line parser) get the
    same 101 response, byte for byte, and the accept hook sees the same
    request (method, target, arguments, client address, header fields);
    then either connection is a working WebSocket.
    """
    head = UPGRADES[name]
    fast, slow = make_server(), make_server()
    one, dripped = connect(fast), connect(slow)
    one.feed(head)
    dripped.drip(head)
    assert one.lines == [] and len(dripped.lines) == head.count(b"\r\n")
    assert one.transport.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert one.transport.value() == dripped.transport.value()
    assert len(fast.accepted) == 1
    assert fast.accepted == slow.accepted
    for connection in (one, dripped):
        connection.transport.clear()
        connection.feed(client_frame(Opcode.TEXT, b"echo me"))
        assert [frame.payload for frame in server_frames(connection.transport.value())] == ["echo me"]


def test_plain_request_in_one_read_is_seen_as_byte_by_byte() -> None:
    """
    A resource sees the same request from a head in one read as from the
    same head a byte per read, blanks trimmed and repeated fields kept.
    """
    head = b"GET /kept?a=1&a=2&b=%20 HTTP/1.1\r\nHost: x\r\nX-A: \t one \r\nx-a:two\r\nX-Empty:\r\n\r\n"
    fast, slow = make_server(), make_server()
    one, dripped = connect(fast), connect(slow)
    one.feed(head)
    dripped.drip(head)
    assert one.lines == []
    assert fast.kept.seen == slow.kept.seen
    assert fast.kept.seen[0].args == {b"a": [b"1", b"2"], b"b": [b" "]}
    assert (b"X-A", [b"one", b"two"]) in fast.kept.seen[0].headers


# -- (b) the site's checks apply to the fast path ----------------------------------------------


def test_foreign_host_is_refused_with_421_through_the_fast_path() -> None:
    """
    An upgrade naming a host the site does not serve is refused 421 and
    the connection closed, before the accept hook is called.
    """
    server = make_server(allowedHosts=["example.com"])
    connection = connect(server)
    connection.feed(upgrade_request(host="attacker.example"))
    assert connection.lines == []
    assert connection.transport.value().startswith(b"HTTP/1.1 421 Misdirected Request")
    assert connection.transport.disconnecting
    assert server.accepted == []
    connection.transport.clear()
    connection.feed(upgrade_request(host="example.com"))  # dropped: the connection is closing
    assert connection.transport.value() == b"" and server.accepted == []


def test_allowed_host_is_served_through_the_fast_path() -> None:
    """
    An upgrade naming an allowed host is accepted through the fast path.
    """
    server = make_server(allowedHosts=["example.com"])
    connection = connect(server)
    connection.feed(upgrade_request(host="example.com"))
    assert connection.lines == []
    assert connection.transport.value().startswith(b"HTTP/1.1 101")


def test_trusted_proxy_names_the_client_through_the_fast_path() -> None:
    """
    Behind a trusted proxy, the accept hook and resources see the
    forwarded client as the request's client; from an untrusted peer, the
    header is ignored.
    """
    server = make_server(trustedProxies=["127.0.0.1"])
    proxied = connect(server, "127.0.0.1")
    proxied.feed(upgrade_request(X_Forwarded_For="6.6.6.6, 203.0.113.7"))
    direct = connect(server, "198.51.100.9")
    direct.feed(upgrade_request(X_Forwarded_For="203.0.113.7"))
    page = connect(server, "127.0.0.1")
    page.feed(b"GET /kept HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.8\r\n\r\n")
    assert proxied.lines == direct.lines == page.lines == []
    assert [seen.client for seen in server.accepted] == [
        IPv4Address("TCP", "203.0.113.7", 0),
        IPv4Address("TCP", "198.51.100.9", 4000),
    ]
    assert [seen.client for seen in server.kept.seen] == [IPv4Address("TCP", "203.0.113.8", 0)]


def test_requests_per_connection_are_bounded_through_the_fast_path() -> None:
    """
    The C{maxRequestsPerConnection}th response, to a head received in one
    read, carries C{Connection: close} and the connection closes; a head
    sent after it is not answered.
    """
    server = make_server(maxRequestsPerConnection=2)
    connection = connect(server)
    connection.feed(PAGE)
    assert not connection.transport.disconnecting
    assert b"connection: close" not in connection.transport.value().lower()
    connection.transport.clear()
    connection.feed(PAGE)
    assert connection.lines == []
    assert connection.transport.value().startswith(b"HTTP/1.1 200")
    assert headers_of(connection.transport.value())[b"connection"] == b"close"
    assert connection.transport.disconnecting
    connection.transport.clear()
    connection.feed(PAGE)
    assert connection.transport.value() == b""


# -- (c) plain resources, keep-alive ------------------------------------------------------------


def test_page_through_the_fast_path_is_a_normal_response() -> None:
    """
    A page requested in one read is answered 200 with Twisted's usual
    C{Date} and C{Server} fields and its body; the connection stays open.
    """
    server = make_server()
    connection = connect(server)
    connection.feed(PAGE)
    assert connection.lines == []
    response = connection.transport.value()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    fields = headers_of(response)
    assert fields[b"date"].endswith(b" GMT")
    assert fields[b"server"]
    assert fields[b"content-length"] == b"5"
    assert response.endswith(b"\r\n\r\nhello")
    assert not connection.transport.disconnecting


def test_keepalive_requests_all_take_the_fast_path() -> None:
    """
    Requests one after another on one connection, each in its own read,
    are all answered in order, every one by the fast path; a head
    dribbled between them (the line parser) is answered too, and the fast
    path resumes after it.
    """
    server = make_server()
    connection = connect(server)
    connection.feed(PAGE)
    connection.feed(b"GET /kept?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.lines == []
    connection.drip(b"GET /kept?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.lines != []
    del connection.lines[:]
    connection.feed(b"GET /kept?n=4 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.lines == []
    assert [seen.args for seen in server.kept.seen] == [{b"n": [b"2"]}, {b"n": [b"3"]}, {b"n": [b"4"]}]
    assert connection.transport.value().count(b"HTTP/1.1 200 OK") == 4
    assert not connection.transport.disconnecting


def test_pipelined_heads_are_answered_in_order() -> None:
    """
    Two heads in one read are not one head: the line parser answers both,
    in order.
    """
    server = make_server()
    connection = connect(server)
    connection.feed(b"GET /kept?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /kept?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.lines != []
    assert [seen.args for seen in server.kept.seen] == [{b"n": [b"1"]}, {b"n": [b"2"]}]


def test_head_while_a_response_is_unfinished_waits_for_it() -> None:
    """
    A whole head arriving while the previous response is still being
    written is not answered by the fast path out of turn: it is held, and
    answered once the previous response finishes.
    """
    server = make_server()
    connection = connect(server)
    connection.feed(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    [request] = connection.channel.requests
    connection.feed(b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n")
    assert server.kept.seen == []
    assert b"ok" not in connection.transport.value()
    request.finish()
    assert len(server.kept.seen) == 1
    assert connection.transport.value().endswith(b"\r\n\r\nok")


def test_heads_the_fast_path_does_not_take_are_still_answered() -> None:
    """
    Heads the one-pass parser refuses (an obsolete folding, HTTP/1.0, a
    body) go to the line parser, which answers them as before.
    """
    server = make_server()
    folded = connect(server)
    folded.feed(b"GET /kept HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n")
    assert folded.lines != []
    assert (b"X-A", [b"one two"]) in server.kept.seen[-1].headers
    old = connect(server)
    old.feed(b"GET /kept HTTP/1.0\r\nHost: x\r\n\r\n")
    assert old.lines != [] and server.kept.seen[-1].clientproto == b"HTTP/1.0"
    bad = connect(server)
    bad.feed(b"GET /kept HTTP/1.1\r\nHost: x\r\nX-A: o\x00ne\r\n\r\n")
    assert bad.transport.value().startswith(b"HTTP/1.1 400")
    assert len(server.kept.seen) == 2


# -- (d) deadlines ---------------------------------------------------------------------------------


def test_partial_head_gets_408_at_the_request_deadline() -> None:
    """
    A head that never completes is answered 408 and the connection closed
    when C{requestTimeout} has passed since the connection opened.
    """
    server = make_server(requestTimeout=10.0)
    connection = connect(server)
    connection.feed(PAGE[:-2])
    server.clock.advance(9.999)
    assert connection.transport.value() == b""
    server.clock.advance(0.001)
    assert connection.transport.value().startswith(b"HTTP/1.1 408 Request Timeout")
    assert connection.transport.disconnecting


def test_partial_second_head_gets_408_after_a_fast_path_request() -> None:
    """
    After a request answered by the fast path, the next head's deadline
    starts with its first byte: a partial one gets 408 C{requestTimeout}
    seconds later.
    """
    server = make_server(requestTimeout=3.0, keepAliveTimeout=5.0)
    connection = connect(server)
    connection.feed(PAGE)
    connection.transport.clear()
    server.clock.advance(4)
    connection.feed(PAGE[:10])
    server.clock.advance(2.999)
    assert connection.transport.value() == b""
    server.clock.advance(0.001)
    assert connection.transport.value().startswith(b"HTTP/1.1 408")


def test_idle_keepalive_connection_is_closed_after_a_fast_path_request() -> None:
    """
    After a response to a head received in one read, the connection idles
    C{keepAliveTimeout} seconds, then is closed without an answer; the
    request deadline no longer applies.
    """
    server = make_server(requestTimeout=10.0, keepAliveTimeout=5.0)
    connection = connect(server)
    server.clock.advance(1)
    connection.feed(PAGE)
    connection.transport.clear()
    server.clock.advance(4.999)
    assert not connection.transport.disconnecting
    server.clock.advance(0.001)
    assert connection.transport.disconnecting
    assert connection.transport.value() == b""


def test_upgrade_through_the_fast_path_outlives_the_deadlines() -> None:
    """
    A connection upgraded by the fast path is touched by no HTTP deadline:
    an hour later, it still echoes.
    """
    server = make_server(requestTimeout=10.0, keepAliveTimeout=5.0)
    connection = connect(server)
    connection.feed(upgrade_request())
    connection.transport.clear()
    server.clock.advance(3600)
    connection.feed(client_frame(Opcode.TEXT, b"still here"))
    assert [frame.payload for frame in server_frames(connection.transport.value())] == ["still here"]
    assert not connection.transport.disconnecting


class TLSLikeTransport(CountingTransport):
    """
    A transport that, like Twisted's TLS one (C{TLSMemoryBIOProtocol}), goes
    on delivering what the peer sent after C{loseConnection} (until the
    peer's close_notify) and takes producer calls meanwhile (the strict
    L{StringTransport} raises on C{resumeProducing} after a close).
    """

    def resumeProducing(self) -> None:
        self.producerState = "producing"

    def pauseProducing(self) -> None:
        self.producerState = "paused"


@pytest.mark.parametrize("head", [b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n", upgrade_request()], ids=["page", "upgrade"])
def test_head_after_the_idle_close_is_not_answered(head: bytes) -> None:
    """
    Once the connection was closed for idling, a head that still arrives in
    one read (a TLS transport delivers what the peer sent until its
    close_notify: the keep-alive race) is not handled: Twisted's line parser
    takes the request line and stops (C{LineReceiver} reads no further line
    once its transport is disconnecting), so no resource and no accept hook
    runs and nothing is written. The fast path must do the same.
    """
    results = []
    for fastPath in (True, False):
        server = make_server(keepAliveTimeout=5.0)
        address = IPv4Address("TCP", "127.0.0.1", 4000)
        protocol = server.site.buildProtocol(address)
        transport = TLSLikeTransport()
        transport.peerAddr = address
        protocol.makeConnection(transport)
        protocol.dataReceived(PAGE)
        server.clock.advance(5)
        assert transport.disconnecting
        transport.clear()
        # The line parser's verdict on the same read: one more byte makes it
        # more than one head, so the fast path leaves it (the byte is a
        # partial next request line, never completed).
        protocol.dataReceived(head if fastPath else head + b"G")
        results.append((server.kept.seen, server.accepted, transport.value()))
    assert results[1] == ([], [], b"")
    assert results[0] == results[1]


# -- (e) Site's idle timer ----------------------------------------------------------------------


def test_site_idle_timer_is_not_armed_with_both_deadlines() -> None:
    """
    With C{requestTimeout} and C{keepAliveTimeout} both set, Site's idle
    timer (C{timeOut}) is not armed: the only timer pending is the request
    deadline's queue, before and after a request.
    """
    server = make_server(requestTimeout=10.0, keepAliveTimeout=5.0)
    connection = connect(server)
    assert calls_named(server.clock, "__timedOut") == []
    assert [call_name(call) for call in server.clock.getDelayedCalls()] == ["_expire"]
    connection.feed(PAGE)
    assert calls_named(server.clock, "__timedOut") == []


@pytest.mark.parametrize(
    ("requestTimeout", "keepAliveTimeout"),
    [(10.0, 0), (10.0, None), (0, 5.0), (None, 5.0)],
)
def test_site_idle_timer_is_armed_without_one_of_the_deadlines(
    requestTimeout: float | None, keepAliveTimeout: float | None
) -> None:
    """
    Without one of the two deadlines, Site's idle timer is armed as
    Twisted arms it (C{timeOut} seconds), and still answers.
    """
    server = make_server(requestTimeout=requestTimeout, keepAliveTimeout=keepAliveTimeout)
    connection = connect(server)
    [idle] = calls_named(server.clock, "__timedOut")
    assert idle.getTime() == server.site.timeOut
    connection.feed(PAGE)
    assert connection.lines == []
    assert connection.transport.value().startswith(b"HTTP/1.1 200")
    [idle] = calls_named(server.clock, "__timedOut")


# -- (f) the send deadline ------------------------------------------------------------------------


def test_unfinished_response_gets_its_send_deadline_checked() -> None:
    """
    A response left unfinished when its resource returns gets the send
    deadline's first check scheduled (C{sendTimeout / 4} later).
    """
    server = make_server(sendTimeout=20.0)
    connection = connect(server)
    connection.feed(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.lines == []
    [check] = calls_named(server.clock, "_checkSending")
    assert check.getTime() == 5.0


@pytest.mark.parametrize("head", [PAGE, b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n", upgrade_request()])
def test_response_finished_in_render_schedules_no_send_check(head: bytes) -> None:
    """
    A response (or an upgrade) finished within the resource's call
    schedules no send-deadline check at all.
    """
    server = make_server(sendTimeout=20.0)
    connection = connect(server)
    connection.feed(head)
    assert connection.lines == []
    assert calls_named(server.clock, "_checkSending") == []
    server.clock.advance(30)
    assert calls_named(server.clock, "_checkSending") == []


def test_send_deadline_disabled_schedules_nothing() -> None:
    """
    With C{sendTimeout=0}, an unfinished response schedules no check.
    """
    server = make_server(sendTimeout=0)
    connection = connect(server)
    connection.feed(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert calls_named(server.clock, "_checkSending") == []

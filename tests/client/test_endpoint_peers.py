"""
txpulse's L{WebSocketClientEndpoint} against real servers on loopback: a
C{websockets} server (asyncio, in a worker thread), an autobahn server on
the Twisted reactor, and txpulse's own L{WebSocketResource}; plus servers
that misbehave on purpose (never answer, stop reading), refused
handshakes, TCP and DNS failures, and wss:// with a CA made at test time.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import readBody
from twisted.web.iweb import IResponse
from twisted.web.resource import Resource
from twisted.web.websocket import ConnectionRejected as TwistedConnectionRejected
from twisted.web.websocket import WebSocketTransport

from txpulse import ConnectionClosed, ConnectionRejected, HandshakeError, WebSocketResource
from txpulse.client import HandshakeTimeout, InvalidURL, WebSocketClientEndpoint
from txpulse.demos.apps import EchoFactory, HeartbeatFactory

from ..support.apps import RecordingApp, RecordingFactory
from ..support.net import free_port
from ..support.pki import PKI
from ..support.rawsocket import switching_protocols
from ..support.waits import WAIT, until, within

# PrivateCertificate.options() hands pyOpenSSL objects to pyOpenSSL, which
# warns about it; that is Twisted's business, not this suite's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning"),
    # Twisted's own 404 page (twisted.web.resource.NoResource) is deprecated.
    pytest.mark.filterwarnings("ignore:twisted.web.resource._UnsafeNoResource:DeprecationWarning"),
]

#: Room for the 1 MiB message plus framing, on every side.
BIG = 2 << 20

PEERS = ["websockets", "autobahn", "txpulse"]


# -- one echo server per peer -------------------------------------------------------


@dataclass
class Peer:
    """
    An echo server of one implementation.

    @ivar url: where it answers WebSocket upgrades.
    @ivar header: C{header(name)} is the value of request header C{name}
        in the last handshake the server accepted (C{None} if absent).
    """

    name: str
    url: str
    header: Callable[[str], str | None]


@pytest.fixture
def peer(request: pytest.FixtureRequest, serve_websockets: Any, serve_autobahn: Any, serve_txpulse: Any) -> Any:
    """
    C{peer(subprotocols=())} starts an echo server of the implementation
    named by the test's C{peer} parameter, accepting 2 MiB messages and
    choosing the first offered subprotocol it speaks.
    """
    name: str = request.param

    def start(subprotocols: tuple[str, ...] = ()) -> Peer:
        if name == "websockets":
            server = serve_websockets(subprotocols=list(subprotocols) or None, max_size=BIG)
            return Peer(name, server.url("/echo"), lambda h: server.requests[-1].headers.get(h))
        if name == "autobahn":
            port, factory = serve_autobahn(subprotocols, maxMessagePayloadSize=BIG, maxFramePayloadSize=BIG)
            return Peer(name, f"ws://127.0.0.1:{port}/echo", lambda h: factory.requests[-1].headers.get(h.lower()))
        apps = RecordingFactory(echo=True)
        resource = WebSocketResource(apps, subprotocols=subprotocols, maxMessageSize=BIG, pingInterval=None)
        server = serve_txpulse({b"echo": resource})

        def header(h: str) -> str | None:
            value = apps.built[-1].request.getHeader(h)
            return None if value is None else str(value)

        return Peer(name, server.url("/echo"), header)

    return start


peers = pytest.mark.parametrize("peer", PEERS, indirect=True)


# -- messages ------------------------------------------------------------------------


@peers
@pytest_twisted.ensureDeferred
async def test_text_message_round_trips(peer: Any, connect: Any) -> None:
    """
    A text message (non-ASCII included) sent by the client comes back as
    text, unchanged.
    """
    server = peer()
    app = await connect(server.url)
    app.transport.sendTextMessage("héllo, wörld ✓")
    assert await app.next() == "héllo, wörld ✓"


@peers
@pytest_twisted.ensureDeferred
async def test_binary_message_round_trips(peer: Any, connect: Any) -> None:
    """
    A binary message with every byte value comes back as bytes, unchanged.
    """
    server = peer()
    app = await connect(server.url)
    payload = bytes(range(256)) * 3
    app.transport.sendBytesMessage(payload)
    received = await app.next()
    assert isinstance(received, bytes)
    assert received == payload


@peers
@pytest_twisted.ensureDeferred
async def test_one_mib_message_round_trips(peer: Any, connect: Any) -> None:
    """
    A 1 MiB binary message and a 1 MiB text message (limits raised on both
    ends) are echoed intact.
    """
    server = peer()
    app = await connect(server.url, maxMessageSize=BIG)
    payload = bytes(range(256)) * 4096
    app.transport.sendBytesMessage(payload)
    received = await app.next()
    assert len(received) == 1 << 20
    assert received == payload
    text = "abcdefgh" * (1 << 17)
    app.transport.sendTextMessage(text)
    assert await app.next() == text


@peers
@pytest_twisted.ensureDeferred
async def test_server_chosen_subprotocol_is_exposed_on_transport(peer: Any, connect: Any) -> None:
    """
    The client offers two subprotocols; the server speaks only the second
    and picks it; the client's transport reports that choice.
    """
    server = peer(subprotocols=("chat.v2",))
    app = await connect(server.url, subprotocols=["chat.v1", "chat.v2"])
    assert app.transport.subprotocol == "chat.v2"
    assert server.header("Sec-WebSocket-Protocol") in ("chat.v1, chat.v2", "chat.v1,chat.v2")


# websockets refuses (400) when it speaks subprotocols and none is offered.
@pytest.mark.parametrize("peer", ["autobahn", "txpulse"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_no_common_subprotocol_opens_without_one(peer: Any, connect: Any) -> None:
    """
    When the server speaks none of the offered subprotocols it answers
    without one (RFC 6455 §4.2.2) and the client opens with C{None}.
    """
    server = peer(subprotocols=("other",))
    app = await connect(server.url, subprotocols=["chat.v1"])
    assert app.transport.subprotocol is None
    app.transport.sendTextMessage("still works")
    assert await app.next() == "still works"


@peers
@pytest_twisted.ensureDeferred
async def test_extra_headers_and_origin_reach_the_server(peer: Any, connect: Any) -> None:
    """
    Extra request headers (C{Authorization: Bearer t}, a custom one) and the
    C{origin} option arrive in the server's handshake request.
    """
    server = peer()
    await connect(
        server.url,
        headers={"Authorization": "Bearer t", "X-Trace-Id": "abc123"},
        origin="https://example.test",
    )
    assert server.header("Authorization") == "Bearer t"
    assert server.header("X-Trace-Id") == "abc123"
    assert server.header("Origin") == "https://example.test"


@pytest_twisted.ensureDeferred
async def test_headers_given_as_pairs_may_repeat(serve_websockets: Any, connect: Any) -> None:
    """
    Headers given as C{(name, value)} pairs keep their order and may
    repeat a name.
    """
    server = serve_websockets()
    await connect(server.url(), headers=[("X-Tag", "one"), ("X-Tag", "two")])
    assert server.requests[-1].headers.get_all("X-Tag") == ["one", "two"]


@pytest_twisted.ensureDeferred
async def test_url_path_and_query_reach_the_server(serve_websockets: Any, connect: Any) -> None:
    """
    The request target is the URL's path and query string, and C{Host}
    names the host and (non-default) port.
    """
    server = serve_websockets()
    app = await connect(f"ws://127.0.0.1:{server.port}/feed/a%20b?topic=x&n=1")
    request = server.requests[-1]
    assert request.path == "/feed/a%20b?topic=x&n=1"
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"
    assert app.request == f"ws://127.0.0.1:{server.port}/feed/a%20b?topic=x&n=1"


# -- closing ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_close_reaches_server_and_completes_cleanly(serve_txpulse: Any, connect: Any) -> None:
    """
    C{transport.loseConnection(1000, "bye")} on the client reaches the
    server application as a clean 1000 "bye"; the client sees the echoed
    1000.
    """
    apps = RecordingFactory(echo=True)
    server = serve_txpulse({b"echo": WebSocketResource(apps, pingInterval=None)})
    app = await connect(server.url())
    serverApp = await apps.next()
    app.transport.loseConnection(1000, "bye")
    seen = await serverApp.closed()
    assert (seen.code, seen.reason, seen.clean) == (1000, "bye", True)
    closed = await app.closed()
    assert (closed.code, closed.codeSent, closed.clean) == (1000, 1000, True)


@pytest_twisted.ensureDeferred
async def test_server_close_code_and_reason_reach_the_client(serve_txpulse: Any, connect: Any) -> None:
    """
    A server closing with 4001 "go away" shows up in the client's
    L{ConnectionClosed} as code 4001, reason "go away", clean.
    """
    apps = RecordingFactory(echo=True)
    server = serve_txpulse({b"echo": WebSocketResource(apps, pingInterval=None)})
    app = await connect(server.url())
    serverApp = await apps.next()
    serverApp.transport.loseConnection(4001, "go away")
    closed = await app.closed()
    assert (closed.code, closed.reason, closed.codeSent, closed.clean) == (4001, "go away", 4001, True)


@pytest_twisted.ensureDeferred
async def test_message_over_client_limit_closes_with_1009(serve_txpulse: Any, connect: Any) -> None:
    """
    A server message larger than the client's C{maxMessageSize} fails the
    connection with 1009, which the server application sees.
    """
    apps = RecordingFactory(echo=True)
    server = serve_txpulse({b"echo": WebSocketResource(apps, pingInterval=None)})
    app = await connect(server.url(), maxMessageSize=1000)
    serverApp = await apps.next()
    app.transport.sendBytesMessage(b"x" * 1001)  # the server echoes it
    closed = await app.closed()
    assert closed.codeSent == 1009
    assert (await serverApp.closed()).code == 1009
    assert app.inbox.pending == []


# -- refused handshakes -------------------------------------------------------------------


async def _rejected(url: str, **options: Any) -> ConnectionRejected:
    endpoint = WebSocketClientEndpoint.new(reactor, url, **options)
    factory = RecordingFactory()
    with pytest.raises(ConnectionRejected) as caught:
        await within(endpoint.connect(factory))
    assert all(app.transport is None for app in factory.built), "a refused handshake opened the application"
    return caught.value


def _header(pairs: tuple[tuple[str, str], ...], name: str) -> str | None:
    for key, value in pairs:
        if key.lower() == name.lower():
            return value
    return None


@pytest.mark.parametrize("status", [401, 404])
@pytest_twisted.ensureDeferred
async def test_websockets_refusal_carries_status_body_headers_and_response(serve_websockets: Any, status: int) -> None:
    """
    A C{websockets} server refusing with 401 or 404 makes C{connect} raise
    L{ConnectionRejected} with that C{statusCode}, the body, the headers,
    and an C{IResponse} whose body C{readBody} returns; Twisted's own
    C{ConnectionRejected} catches it.
    """

    def process_request(connection: Any, request: Any) -> Any:
        response = connection.respond(HTTPStatus(status), f"refused with {status}\n")
        response.headers["WWW-Authenticate"] = 'Bearer realm="test"'
        return response

    server = serve_websockets(process_request=process_request)
    rejected = await _rejected(server.url("/secret"))
    assert rejected.statusCode == status
    assert rejected.body == f"refused with {status}\n".encode()
    assert _header(rejected.headers, "WWW-Authenticate") == 'Bearer realm="test"'
    assert IResponse.providedBy(rejected.response)
    assert isinstance(rejected, TwistedConnectionRejected)
    assert rejected.response.code == status
    assert rejected.response.headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="test"']
    assert await within(readBody(rejected.response)) == rejected.body


@pytest_twisted.ensureDeferred
async def test_rejection_response_body_reads_without_deprecation_warning(serve_websockets: Any) -> None:
    """
    Reading the rejection's C{IResponse} with C{readBody} emits no warning
    (Twisted warns when the body's transport cannot C{abortConnection}).
    """

    def process_request(connection: Any, request: Any) -> Any:
        return connection.respond(HTTPStatus.UNAUTHORIZED, "no token\n")

    server = serve_websockets(process_request=process_request)
    rejected = await _rejected(server.url())
    assert rejected.response is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body = await within(readBody(rejected.response))
    assert body == b"no token\n"
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("status", [401, 404])
@pytest_twisted.ensureDeferred
async def test_txpulse_refusal_carries_status_body_and_headers(serve_txpulse: Any, status: int) -> None:
    """
    txpulse's resource refusing through its accept hook (401, with a
    C{WWW-Authenticate} header) or a path with no resource (404, Twisted's
    "No Such Resource" page) both raise L{ConnectionRejected} with their
    own status and body.
    """

    def accept(request: Any) -> None:
        raise HandshakeError("missing token", 401, (("WWW-Authenticate", "Bearer"),))

    server = serve_txpulse({b"echo": WebSocketResource(EchoFactory(), accept=accept, pingInterval=None)})
    rejected = await _rejected(server.url("/echo" if status == 401 else "/nope"))
    assert rejected.statusCode == status
    assert rejected.response is not None and rejected.response.code == status
    if status == 401:
        assert rejected.body == b"missing token\n"
        assert _header(rejected.headers, "WWW-Authenticate") == "Bearer"
    else:
        assert b"No Such Resource" in rejected.body
    assert await within(readBody(rejected.response)) == rejected.body


@pytest_twisted.ensureDeferred
async def test_autobahn_refusal_raises_connection_rejected(serve_autobahn: Any) -> None:
    """
    An autobahn server denying the connection (C{ConnectionDeny(403)})
    raises L{ConnectionRejected} with status 403; autobahn puts its reason
    in the status line and sends no body.
    """
    port, _ = serve_autobahn(deny=403)
    rejected = await _rejected(f"ws://127.0.0.1:{port}/echo")
    assert rejected.statusCode == 403
    assert rejected.response is not None and rejected.response.code == 403
    assert rejected.response.phrase == b"denied by the test"
    assert rejected.body == b""


class StreamedRefusal(Resource):
    """
    A plain C{twisted.web} resource that refuses with 403 and writes its
    body with C{request.write}: Twisted then sends it chunked and keeps the
    HTTP/1.1 connection open.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> Any:
        from twisted.web.server import NOT_DONE_YET

        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain")
        request.write(b"forbidden")
        request.finish()
        return NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_chunked_refusal_on_kept_alive_connection_is_a_prompt_rejection(serve_txpulse: Any) -> None:
    """
    A refusal with a chunked body on a connection the server keeps open
    (what C{twisted.web} does for a streamed body) is reported at once as
    a 403 L{ConnectionRejected} with the decoded body, not as a
    L{HandshakeTimeout} once C{handshakeTimeout} runs out.
    """
    server = serve_txpulse({b"streamed": StreamedRefusal()})
    started = time.monotonic()
    endpoint = WebSocketClientEndpoint.new(reactor, server.url("/streamed"), handshakeTimeout=1.0)
    try:
        await within(endpoint.connect(RecordingFactory()))
    except ConnectionRejected as rejected:
        assert time.monotonic() - started < 0.5
        assert rejected.statusCode == 403
        assert rejected.body == b"forbidden"
    except HandshakeTimeout:
        pytest.fail("a chunked 403 on a kept-alive connection was reported as a handshake timeout")
    else:
        pytest.fail("a 403 opened the connection")


# -- failures below HTTP -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_tcp_refusal_raises_connection_refused_not_rejected() -> None:
    """
    Nothing listening: C{connect} raises Twisted's
    L{ConnectionRefusedError}, which is not a L{ConnectionRejected}.
    """
    endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{free_port()}/")
    with pytest.raises(ConnectionRefusedError) as caught:
        await within(endpoint.connect(RecordingFactory()))
    assert not isinstance(caught.value, ConnectionRejected)


@pytest_twisted.ensureDeferred
async def test_dns_failure_raises_dns_lookup_error() -> None:
    """
    A host name that does not resolve (the reserved C{.invalid} TLD) raises
    L{DNSLookupError}, distinguishable from a refusal.
    """
    endpoint = WebSocketClientEndpoint.new(reactor, "ws://no-such-host.invalid/")
    with pytest.raises(DNSLookupError):
        await within(endpoint.connect(RecordingFactory()))


def test_non_websocket_url_raises_invalid_url() -> None:
    """
    C{new} refuses a URL that is not C{ws://}, C{wss://}, C{http://} or
    C{https://} with L{InvalidURL} (a L{ValueError}) before any I/O.
    """
    for url in ("ftp://example.com/", "ws://", "ws://host:99999/", "ws://host/#frag"):
        with pytest.raises(InvalidURL):
            WebSocketClientEndpoint.new(reactor, url)
    assert issubclass(InvalidURL, ValueError)


class RawServer(Protocol):
    """
    A TCP server protocol recording when its connection ends.
    """

    def __init__(self) -> None:
        self.received = b""
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.lost.called:
            self.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_server_that_never_answers_raises_handshake_timeout(serve_raw: Any) -> None:
    """
    A server that accepts TCP, reads the upgrade request and never answers
    makes C{connect} raise L{HandshakeTimeout} after C{handshakeTimeout},
    and the client drops the TCP connection.
    """
    port, factory = serve_raw(RawServer)
    endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/", handshakeTimeout=0.3)
    started = time.monotonic()
    with pytest.raises(HandshakeTimeout):
        await within(endpoint.connect(RecordingFactory()))
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5
    server = factory.built[0]
    assert isinstance(server, RawServer)
    assert server.received.startswith(b"GET / HTTP/1.1\r\n")
    await within(server.lost, 1.0)


@pytest_twisted.ensureDeferred
async def test_cancelling_a_pending_connect_drops_the_connection(serve_raw: Any) -> None:
    """
    Cancelling the Deferred of a C{connect} still waiting for the server's
    answer fails it with C{CancelledError} and closes the TCP connection
    (no half-open connection is left behind).
    """
    from twisted.internet.defer import CancelledError

    port, factory = serve_raw(RawServer)
    endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/", handshakeTimeout=WAIT)
    attempt = Deferred.fromCoroutine(endpoint.connect(RecordingFactory()))
    await until(
        lambda: factory.built and factory.built[0].received,  # type: ignore[attr-defined]
        "the server to receive the upgrade request",
    )
    attempt.cancel()
    with pytest.raises(CancelledError):
        await attempt
    server = factory.built[0]
    assert isinstance(server, RawServer)
    await within(server.lost, 1.0)


# -- keepalive ----------------------------------------------------------------------------


class StopsReading(Protocol):
    """
    Completes the opening handshake by hand, then stops reading (and so
    never answers a ping) without closing TCP: a dead server as a client
    sees it.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        match = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)\s*$", self.buffer)
        assert match is not None and self.transport is not None
        self.transport.write(switching_protocols(match.group(1)))
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.lost.called:
            self.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_keepalive_gives_up_on_a_server_that_stops_reading(serve_raw: Any, connect: Any) -> None:
    """
    With C{pingInterval=0.2, pingTimeout=0.3} (other options default), a
    server that stops reading (no pong, TCP still open) is detected: the
    client's C{connectionLost} runs within about a second, with C{codeSent}
    1011 and no close frame received (1006). A peer silent past the ping
    timeout is not waited for any longer.
    """
    from twisted.internet.defer import TimeoutError

    port, _ = serve_raw(StopsReading)
    app = await connect(f"ws://127.0.0.1:{port}/", pingInterval=0.2, pingTimeout=0.3)
    opened = time.monotonic()
    try:
        closed = await app.closed(seconds=1.5)
    except TimeoutError:
        pytest.fail("connectionLost did not run within 1.5 s although the keepalive (0.2 s + 0.3 s) expired")
    elapsed = time.monotonic() - opened
    assert 0.4 <= elapsed < 1.2, elapsed
    assert closed.codeSent == 1011
    assert closed.code == 1006
    assert closed.clean is False


@pytest_twisted.ensureDeferred
async def test_keepalive_failure_is_reported_once_close_timeout_ends(serve_raw: Any, connect: Any) -> None:
    """
    The same dead server with a short C{closeTimeout} (0.3 s): the
    keepalive fails the connection with 1011 and C{connectionLost} runs
    once the close timeout is over, about 0.8 s after opening.
    """
    port, _ = serve_raw(StopsReading)
    app = await connect(f"ws://127.0.0.1:{port}/", pingInterval=0.2, pingTimeout=0.3, closeTimeout=0.3)
    opened = time.monotonic()
    closed = await app.closed(seconds=3.0)
    elapsed = time.monotonic() - opened
    assert 0.4 <= elapsed < 1.5, elapsed
    assert closed.codeSent == 1011
    assert closed.code == 1006
    assert closed.clean is False


@pytest_twisted.ensureDeferred
async def test_keepalive_keeps_a_responsive_server(serve_websockets: Any, connect: Any) -> None:
    """
    The same tight keepalive against a server that answers pings keeps the
    connection open across several ping intervals.
    """
    server = serve_websockets()
    app = await connect(server.url(), pingInterval=0.1, pingTimeout=0.3)
    await deferLater(reactor, 0.7)
    assert not app.lost.called
    app.transport.sendTextMessage("alive")
    assert await app.next() == "alive"


# -- Twisted's client example, unchanged ------------------------------------------------


# The shape of WebSocketClientDemo, the client example of Twisted's WebSocket
# documentation: the class itself is the factory (a classmethod
# buildProtocol), it is written against Twisted's types only, and it prints
# what it receives.
class WebSocketClientDemo:
    @classmethod
    def buildProtocol(cls, uri: str) -> WebSocketClientDemo:
        return cls()

    def textMessageReceived(self, data: str) -> None:
        print(f"received text: {data!r}")

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.transport.sendTextMessage("hello, world!")

    def bytesMessageReceived(self, data: bytes) -> None: ...

    def connectionLost(self, reason: Failure) -> None: ...

    def pongReceived(self, payload: bytes) -> None: ...


@pytest_twisted.ensureDeferred
async def test_twisted_client_demo_runs_unchanged(serve_txpulse: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """
    Twisted's C{WebSocketClientDemo} (the class as its own factory) runs
    unchanged on txpulse's endpoint against the heartbeat demo: its greeting
    is answered and heartbeats arrive, printed by the demo itself.
    """
    from txpulse import WebSocketClientEndpoint as ExportedEndpoint

    server = serve_txpulse({b"ws": WebSocketResource(HeartbeatFactory(0.05), pingInterval=None)})
    endpoint = ExportedEndpoint.new(reactor, server.url("/ws"))
    print("connecting...")
    demo = await within(endpoint.connect(WebSocketClientDemo))
    print("connected!")
    assert isinstance(demo, WebSocketClientDemo)
    expected = ["received text: 'reply to hello, world!'", "received text: 'heartbeat 1'"]
    output = ""
    deadline = time.monotonic() + WAIT
    while not all(line in output for line in expected) and time.monotonic() < deadline:
        await deferLater(reactor, 0.02)
        output += capsys.readouterr().out
    assert output.startswith("connecting...\nconnected!\n")
    for line in expected:
        assert line in output.splitlines()
    demo.transport.loseConnection()
    await within(server.site.channels[0].lost)


# -- wss:// ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_wss_with_ca_file_verifies_and_echoes(serve_txpulse: Any, pki: PKI, connect: Any) -> None:
    """
    Over wss://, a server certificate signed by the CA given as C{caFile}
    is accepted; messages round-trip and the close is clean.
    """
    server = serve_txpulse({b"echo": WebSocketResource(EchoFactory(), pingInterval=None)}, pki.serverOptions)
    app = await connect(server.url(), caFile=str(pki.caFile))
    app.transport.sendTextMessage("over tls")
    assert await app.next() == "over tls"
    app.transport.sendBytesMessage(b"\x00\xff" * 40000)
    assert await app.next() == b"\x00\xff" * 40000
    app.transport.loseConnection()
    closed = await app.closed()
    assert (closed.code, closed.clean) == (1000, True)


@pytest_twisted.ensureDeferred
async def test_wss_without_ca_file_fails_verification(serve_txpulse: Any, pki: PKI) -> None:
    """
    Without C{caFile}, the test CA is not trusted: C{connect} fails with an
    C{OpenSSL.SSL.Error} (certificate verify failed) and the application
    never opens.
    """
    server = serve_txpulse({b"echo": WebSocketResource(EchoFactory(), pingInterval=None)}, pki.serverOptions)
    factory = RecordingFactory()
    endpoint = WebSocketClientEndpoint.new(reactor, server.url())
    with pytest.raises(SSL.Error) as caught:
        await within(endpoint.connect(factory))
    assert "certificate verify failed" in str(caught.value)
    assert all(app.transport is None for app in factory.built)


@pytest_twisted.ensureDeferred
async def test_wss_host_name_mismatch_fails(serve_txpulse: Any, pki: PKI) -> None:
    """
    A certificate from the trusted CA but for another name (it names only
    127.0.0.1; the URL says C{localhost}) fails the connect: the host name
    is checked, not only the chain.
    """
    server = serve_txpulse({b"echo": WebSocketResource(EchoFactory(), pingInterval=None)}, pki.serverOptions)
    factory = RecordingFactory()
    endpoint = WebSocketClientEndpoint.new(reactor, server.url(host="localhost"), caFile=str(pki.caFile))
    with pytest.raises(Exception) as caught:
        await within(endpoint.connect(factory))
    assert not isinstance(caught.value, ConnectionClosed)
    assert "localhost" in str(caught.value) or "hostname" in str(caught.value).lower(), repr(caught.value)
    assert all(app.transport is None for app in factory.built)


@pytest_twisted.ensureDeferred
async def test_wss_insecure_skips_verification(serve_txpulse: Any, pki: PKI, connect: Any) -> None:
    """
    C{insecure=True} connects to the same untrusted server (testing only).
    """
    server = serve_txpulse({b"echo": WebSocketResource(EchoFactory(), pingInterval=None)}, pki.serverOptions)
    app: RecordingApp = await connect(server.url(), insecure=True)
    app.transport.sendTextMessage("unverified")
    assert await app.next() == "unverified"

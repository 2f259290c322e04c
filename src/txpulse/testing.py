# -*- test-case-name: tests.test_testing -*-
"""
Test your WebSocket application in memory: no sockets, no reactor, time
under the test's control.

Two tools, in the spirit of C{treq.testing} and Twisted's
C{twisted.internet.testing}:

  - L{WebSocketPeer}: a scripted remote end (a browser, say) connected to
    your server-side code. L{connectProtocol} connects one application
    protocol, L{connectFactory} a factory, L{connectResource} a resource
    mounted at a path, and L{connectSite} a whole site. The peer sends
    text, binary, ping, close (or hand-made) frames, masked as a client
    must; it records the messages, pings, pongs and close code your
    application sent; L{WebSocketPeer.advance} moves the clock, so
    keepalive pings, idle and close timeouts fire when the test says.
  - L{InMemoryServer}: your resource on an in-memory network, for
    L{txpulse.WebSocketClientEndpoint} clients (your client code against
    your server code, both real).

Example (pytest)::

    from txpulse.testing import connectFactory

    def test_echo() -> None:
        peer = connectFactory(EchoFactory(), pingInterval=30)
        peer.sendText("hello")
        assert peer.received == ["hello"]
        peer.advance(30)
        assert peer.pings == [b""]          # keepalive (answered)
        peer.close(1000)
        assert peer.closeCode == 1000 and peer.disconnected

Why it goes through the real upgrade: every C{connect*} function answers a
real HTTP upgrade request with a real L{txpulse.WebSocketResource} on a
real L{txpulse.WebSocketSite}, so what runs in a test is what runs in
production: accept hooks, origin checks, subprotocol choice, refusals with
their HTTP status, the hand-over of the connection, the wire's timers. Only
the TCP connection is fake (a L{StringTransport}), and the clock (a
L{Clock}).

How bytes travel: what the server writes is parsed by the peer at once (by
a client-side L{txpulse.core.connection.Connection}), so L{WebSocketPeer.received}
and friends are always current. What the peer sends, and the peer's
automatic replies (a pong for each ping, the echo of a close frame), reach
the server when the peer acts (any C{send*}, L{WebSocketPeer.close},
L{WebSocketPeer.advance}) or when the test calls L{WebSocketPeer.flush}, never
in the middle of the server's own write, as on a real network. So after
driving the application from outside the peer (firing a L{Deferred} it waits
on, calling its transport's C{loseConnection}), call
L{WebSocketPeer.flush} to let the peer answer.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IDelayedCall, IProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test.iosim import ConnectionCompleter, IOPump
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from txpulse import (
    CloseCode,
    InvalidState,
    NegotiationError,
    WebSocketClientEndpoint,
    WebSocketResource,
    WebSocketSite,
)
from txpulse.client.endpoint import WebSocketClientFactory
from txpulse.core.connection import Connection
from txpulse.core.events import Close, Ping, Pong, Side
from txpulse.core.frames import encode_frame
from txpulse.core.handshake import ResponseHead, client_request, parse_response_head, validate_response
from txpulse.server.resource import WebSocketServerFactory
from txpulse.wire.interfaces import WebSocketProtocol

__all__ = [
    "WebSocketPeer",
    "connectProtocol",
    "connectFactory",
    "connectResource",
    "connectSite",
    "InMemoryServer",
]

#: The peer's fixed masking key: frames are reproducible byte for byte (a
#: test peer needs no secrecy; RFC 6455 §5.3 asks a real client for fresh
#: random keys).
_MASK_KEY = b"\x37\xfa\x21\x3d"

#: A fixed C{Sec-WebSocket-Key} (RFC 6455 §4.1: base64 of 16 bytes).
_KEY = base64.b64encode(b"txpulse.testing!").decode("ascii")


A = TypeVar("A", bound=WebSocketProtocol)


class _PeerTransport(StringTransport):
    """
    The server's side of the fake TCP connection: hands every byte written
    to the peer at once, and tells it when the server closes.
    """

    def __init__(self, peer: WebSocketPeer, peerAddress: IPv4Address) -> None:
        super().__init__(peerAddress=peerAddress)
        self._peer = peer

    def write(self, data: bytes) -> None:
        super().write(data)
        self._peer._serverWrote()

    def writeSequence(self, data: Any) -> None:
        super().writeSequence(data)
        self._peer._serverWrote()

    def loseConnection(self) -> None:
        super().loseConnection()
        self._peer._later()

    def resumeProducing(self) -> None:
        super().resumeProducing()
        # The server reads again: what the peer sent meanwhile can go in.
        self._peer._later()


class WebSocketPeer:
    """
    The remote end of one in-memory WebSocket connection to your server
    code, playing a client: what it sends is masked (RFC 6455 §5.3), what
    the server sends it is parsed and checked by the txpulse core.

    Build one with L{connectProtocol}, L{connectFactory},
    L{connectResource} or L{connectSite}.

    @ivar clock: the L{Clock} the server's timers run on.
    @ivar transport: the server's side of the connection (a
        L{StringTransport}), for what the harness does not say (its
        C{producer}, C{producerState}).
    @ivar status: the HTTP status of the answer to the upgrade request
        (101 once upgraded); C{None} while the server has not answered (an
        asynchronous accept hook is still deciding).
    @ivar responseHeaders: the answer's header pairs, in order.
    @ivar responseBody: the body of a refusal (C{b""} for a 101).
    @ivar subprotocol: the subprotocol the server chose, or C{None}.
    @ivar received: every message the application sent, in order: C{str}
        for text, C{bytes} for binary.
    @ivar pings: payloads of the pings the server sent (keepalive, or the
        application's C{ping()}); the peer answers each with a pong unless
        C{autoReply} is off.
    @ivar pongs: payloads of the pongs the server sent (answers to
        L{ping}).
    @ivar closeCode: the code of the close frame the server sent (1005 for
        one without a code); C{None} until one arrives.
    @ivar closeReason: that frame's reason.
    @ivar disconnected: whether the TCP connection is gone (closed by
        either side).
    @ivar aborted: whether the server aborted the TCP connection (no
        close handshake, or one that timed out).
    @ivar autoReply: whether the peer answers pings and echoes the server's
        close frame, as every conforming peer does (RFC 6455 §5.5). Set it
        to C{False} to play a peer that has silently gone away: keepalive
        pings go unanswered (the server closes with 1011 after
        C{pingTimeout}), and a close handshake the server starts never
        completes (it aborts after C{closeTimeout}).
    """

    def __init__(self, protocol: IProtocol, clock: Clock, *, autoReply: bool = True, port: int = 40000) -> None:
        """
        Connect to C{protocol} (the server's byte-level protocol, e.g. what
        a L{Site} built) over a fresh in-memory transport. Nothing is sent
        yet: the C{connect*} functions send the upgrade request.

        @param clock: the clock the server's timers run on.
        @param autoReply: see L{autoReply}.
        @param port: the peer's (client) port.
        """
        self.clock = clock
        self.autoReply = autoReply
        self.status: int | None = None
        self.responseHeaders: tuple[tuple[str, str], ...] = ()
        self.responseBody = b""
        self.subprotocol: str | None = None
        self.received: list[str | bytes] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.closeCode: int | None = None
        self.closeReason = ""
        self.disconnected = False
        self.aborted = False
        self._protocol = protocol
        self._conn = Connection(Side.CLIENT, max_message_size=None, mask_key=lambda n: _MASK_KEY[:n])
        self._head = bytearray()  # the response head, until it is complete
        self._offered: tuple[str, ...] = ()
        self._replies: list[bytes] = []  # automatic replies not yet delivered
        self._outbox: list[bytes] = []  # what the peer sent while the server was not reading
        self._call: IDelayedCall | None = None
        self._handshakeError: Exception | None = None
        self.transport = _PeerTransport(self, IPv4Address("TCP", "127.0.0.1", port))
        protocol.makeConnection(self.transport)

    # -- what the test does ---------------------------------------------------

    def sendText(self, text: str) -> None:
        """
        Send a text message (one masked frame).

        @raise txpulse.InvalidState: before the upgrade, or once this peer
            sent or answered a close.
        """
        self._requireUpgraded()
        self._conn.send_text(text)
        self._sendQueued()

    def sendBinary(self, data: bytes) -> None:
        """
        Send a binary message (one masked frame).

        @raise txpulse.InvalidState: before the upgrade, or once this peer
            sent or answered a close.
        """
        self._requireUpgraded()
        self._conn.send_binary(data)
        self._sendQueued()

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping; the server's pong lands in L{pongs}.
        """
        self._requireUpgraded()
        self._conn.send_ping(payload)
        self._sendQueued()

    def pong(self, payload: bytes = b"") -> None:
        """
        Send an unsolicited pong (a one-way heartbeat, RFC 6455 §5.5.3).
        """
        self._requireUpgraded()
        self._conn.send_pong(payload)
        self._sendQueued()

    def close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """
        Start the closing handshake. The server echoes the close (see
        L{closeCode}) and closes the TCP connection (see L{disconnected});
        the application's C{connectionLost} has run when this returns.

        @param code: the status code, or C{None} for a close frame without
            one (the application then sees 1005).
        """
        self._requireUpgraded()
        self._conn.send_close(code, reason)
        self._sendQueued()

    def sendFrame(
        self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False, masked: bool = True
    ) -> None:
        """
        Send one hand-made frame, whatever the protocol state: fragments
        (C{fin=False}, then L{txpulse.Opcode.CONT} frames), and frames a
        conforming client never sends (unmasked, reserved bits, bad
        opcodes), to test how the server fails the connection.
        """
        self.sendBytes(encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask_key=_MASK_KEY if masked else None))

    def sendBytes(self, data: bytes) -> None:
        """
        Send raw bytes on the connection (split frames, garbage).
        """
        self._deliver(data)
        self.flush()

    def disconnect(self) -> None:
        """
        Drop the TCP connection without a close handshake (a crashed
        browser, a lost network): the application sees close code 1006.
        """
        if not self.disconnected:
            self._conn.receive_eof()
            self._lost(Failure(ConnectionLost("the test peer disconnected")))

    def advance(self, seconds: float) -> None:
        """
        Move the clock forward (firing the server's keepalive pings, idle,
        close and handshake timeouts that fall due), then L{flush}.
        """
        self.clock.advance(seconds)
        self.flush()

    def flush(self) -> None:
        """
        Deliver what is pending: the peer's automatic replies (pongs, the
        echo of a close), what it sent while the server was not reading,
        and the end of the connection once the server closed it.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        while not self.disconnected:
            if self._replies:
                replies, self._replies = self._replies, []
                self._deliver(b"".join(replies))
            elif self._outbox and self.transport.producerState == "producing":
                outbox, self._outbox = self._outbox, []
                self._protocol.dataReceived(b"".join(outbox))
            elif self.transport.disconnecting:
                self._conn.receive_eof()
                self.aborted = self.transport.disconnected
                self._lost(Failure(ConnectionAborted() if self.aborted else ConnectionDone()))
            else:
                break

    @property
    def isOpen(self) -> bool:
        """
        Whether the WebSocket is open: upgraded, and no close frame sent or
        received yet.
        """
        return self.status == 101 and not self.disconnected and self._conn.can_send()

    @property
    def error(self) -> Exception | None:
        """
        What the server did wrong, as the peer saw it: a C{101} that does
        not complete the handshake (RFC 6455 §4.1: wrong accept key, a
        subprotocol that was not offered), or a frame a server must not
        send. C{None} for a well-behaved server.
        """
        return self._handshakeError or self._conn.error

    # -- plumbing ---------------------------------------------------------------

    def _requireUpgraded(self) -> None:
        """
        A client sends no frame before the server's 101 (RFC 6455 §4.1): a
        test that does (say, before an asynchronous accept hook answered)
        is told at once rather than seeing HTTP garbage refused.
        """
        if self.status != 101:
            raise InvalidState(f"the upgrade was not accepted (status {self.status}): nothing can be sent")

    def _upgrade(
        self, path: str, host: str, headers: Sequence[tuple[str, str]], offer: Sequence[str], origin: str | None
    ) -> None:
        """
        Send the upgrade request.
        """
        self._offered = tuple(offer)
        request = client_request(host, path, _KEY, subprotocols=offer, origin=origin, headers=headers)
        self.sendBytes(request)

    def _sendQueued(self) -> None:
        self._deliver(b"".join(self._replies + self._conn.data_to_send()))
        self._replies = []
        self.flush()

    def _deliver(self, data: bytes) -> None:
        """
        Bytes from the peer to the server (held while the server does not
        read, as the kernel would hold them).
        """
        if self.disconnected or not data:
            return
        if self.transport.producerState != "producing" or self._outbox:
            self._outbox.append(data)
        else:
            self._protocol.dataReceived(data)

    def _later(self) -> None:
        """
        Flush at the next turn of the clock (never inside the server's own
        call into the transport).
        """
        if self._call is None and not self.disconnected:
            self._call = self.clock.callLater(0, self.flush)

    def _lost(self, reason: Failure) -> None:
        self.disconnected = True
        self._replies = []
        self._outbox = []
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._protocol.connectionLost(reason)

    def _serverWrote(self) -> None:
        """
        Parse what the server just wrote.
        """
        data = self.transport.value()
        self.transport.clear()
        if self.status != 101:
            if self.status is not None:
                self.responseBody += data
                return
            self._head += data
            parsed = parse_response_head(self._head)
            if parsed is None:
                return
            head, used = parsed
            data = bytes(self._head[used:])
            self._head = bytearray()
            self._answered(head)
            if self.status != 101:
                self.responseBody = data
                return
        self._conn.receive_data(data)
        for event in self._conn.events_received():
            if isinstance(event, (str, bytes)):
                self.received.append(event)
            elif isinstance(event, Ping):
                self.pings.append(event.payload)
            elif isinstance(event, Pong):
                self.pongs.append(event.payload)
            elif isinstance(event, Close):
                self.closeCode, self.closeReason = event.code, event.reason
        replies = self._conn.data_to_send()
        if replies and self.autoReply:
            self._replies += replies
            self._later()

    def _answered(self, head: ResponseHead) -> None:
        self.status = head.status
        self.responseHeaders = head.headers
        if head.status == 101:
            # RFC 6455 §4.1: check the accept key and the subprotocol.
            # (Recorded, not raised: this runs inside the server's write.)
            try:
                self.subprotocol = validate_response(head, _KEY, self._offered)
            except NegotiationError as error:
                self._handshakeError = error


class _OneProtocol(Generic[A]):
    """
    A factory that builds one given protocol (then refuses).
    """

    def __init__(self, app: A) -> None:
        self._app: A | None = app

    def buildProtocol(self, request: object) -> A | None:
        app, self._app = self._app, None
        return app


def _mount(resource: IResource, path: str) -> Resource:
    """
    A root resource with C{resource} at C{path} (its query, if any, ignored).

    @raise ValueError: for a path that does not start with C{/}.
    """
    if not path.startswith("/"):
        raise ValueError(f"a request path starts with '/': {path!r}")
    root = parent = Resource()
    segments = path.partition("?")[0].split("/")[1:]
    for segment in segments[:-1]:
        child = Resource()
        parent.putChild(segment.encode("utf-8"), child)
        parent = child
    parent.putChild(segments[-1].encode("utf-8"), resource)
    return root


def _pairs(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)


def connectSite(
    site: Site,
    *,
    path: str = "/",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    offer: Sequence[str] = (),
    origin: str | None = None,
    host: str = "localhost",
    autoReply: bool = True,
    port: int = 40000,
) -> WebSocketPeer:
    """
    Connect a peer to C{site} and send an upgrade request for C{path}.

    The most general form: use it to test a whole resource tree (and the
    site's own settings, e.g. L{txpulse.WebSocketSite}'s C{allowedHosts}).
    The site's C{reactor} must be the L{Clock} the peer will advance.

    @param path: the request target (path and query).
    @param headers: extra request headers (C{Authorization}, C{Cookie},
        ...). The peer does not speak permessage-deflate: do not offer it
        here (the server's compressed frames would fail the peer's core).
    @param offer: the subprotocols the peer offers
        (C{Sec-WebSocket-Protocol}), most preferred first.
    @param origin: an C{Origin} header (as a browser sends).
    @param host: the C{Host} header.
    @param autoReply: see L{WebSocketPeer.autoReply}.
    @param port: the peer's (client) port, for sites that look at it.
    @return: the peer; check L{WebSocketPeer.status} for the answer (101,
        or the refusal's status, or C{None} while an asynchronous accept
        hook decides).
    """
    clock = site.reactor
    if not isinstance(clock, Clock):
        raise TypeError("the site's reactor must be a twisted.internet.task.Clock (pass reactor=clock)")
    address = IPv4Address("TCP", "127.0.0.1", port)
    protocol = site.buildProtocol(address)
    assert protocol is not None
    peer = WebSocketPeer(protocol, clock, autoReply=autoReply, port=port)
    peer._upgrade(path, host, _pairs(headers), offer, origin)
    return peer


def connectResource(
    resource: IResource,
    *,
    path: str = "/",
    clock: Clock | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    offer: Sequence[str] = (),
    origin: str | None = None,
    autoReply: bool = True,
) -> WebSocketPeer:
    """
    Mount C{resource} at C{path} on a fresh L{txpulse.WebSocketSite} and
    connect a peer to it.

    Give the resource the clock the peer advances
    (C{WebSocketResource(factory, clock=clock)}, then
    C{connectResource(resource, clock=clock)}); otherwise its timers run on
    the global reactor, which a test does not turn.

    @param path: where the resource is mounted and the request goes (a
        query string is allowed).
    @param clock: the clock (default: a new L{Clock}, then see
        L{WebSocketPeer.clock}).
    @param headers: see L{connectSite}.
    @param offer: see L{connectSite}.
    @param origin: see L{connectSite}.
    @param autoReply: see L{WebSocketPeer.autoReply}.
    """
    if clock is None:
        clock = Clock()
    root = _mount(resource, path)
    site = WebSocketSite(root, reactor=clock)
    return connectSite(site, path=path, headers=headers, offer=offer, origin=origin, autoReply=autoReply)


def connectFactory(
    factory: WebSocketServerFactory,
    *,
    clock: Clock | None = None,
    path: str = "/",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    offer: Sequence[str] = (),
    origin: str | None = None,
    autoReply: bool = True,
    **options: Any,
) -> WebSocketPeer:
    """
    Serve C{factory} with a L{txpulse.WebSocketResource} (built with the
    peer's clock and C{options}) and connect a peer to it.

    @param factory: its C{buildProtocol(request)} returns the application
        protocol (C{None} refuses with 403).
    @param options: any keyword argument of L{txpulse.WebSocketResource}
        (C{pingInterval}, C{idleTimeout}, C{subprotocols}, C{accept},
        C{maxMessageSize}, ...), with its default when not given
        (keepalive pings every 20 s, as in production).
    @param clock: see L{connectResource}.
    """
    if clock is None:
        clock = Clock()
    resource = WebSocketResource(factory, clock=clock, **options)
    return connectResource(
        resource, path=path, clock=clock, headers=headers, offer=offer, origin=origin, autoReply=autoReply
    )


def connectProtocol(
    app: WebSocketProtocol, *, clock: Clock | None = None, autoReply: bool = True, **options: Any
) -> WebSocketPeer:
    """
    Connect a peer to one application protocol (an object with the
    methods of Twisted's C{WebSocketProtocol}): the shortest way to test
    one.

    It is served by a real L{txpulse.WebSocketResource}, so the
    application's transport is the one it gets in production
    (C{sendTextMessage}, C{loseConnection}, C{attachProducer}, ...).

    @param options: any keyword argument of L{txpulse.WebSocketResource}
        (see L{connectFactory}).
    @param clock: see L{connectResource}.
    @param autoReply: see L{WebSocketPeer.autoReply}.
    """
    return connectFactory(_OneProtocol(app), clock=clock, autoReply=autoReply, **options)


class InMemoryServer:
    """
    A resource served on an in-memory network, for real
    L{txpulse.WebSocketClientEndpoint} clients: your client code against
    your server code, every byte through both real stacks, no sockets.

    Built the way Twisted's own WebSocket tests are: a L{MemoryReactorClock}
    that the site listens on and the clients connect through, and
    C{twisted.test.iosim} moving the bytes between them (see L{flush}).
    Give the server's resource the same reactor as its clock::

        reactor = MemoryReactorClock()
        server = InMemoryServer(WebSocketResource(factory, clock=reactor), reactor=reactor)
        client = server.connect(ClientFactory(), "/")   # a Deferred
        server.flush()

    @ivar reactor: the reactor (and clock) of both sides.
    """

    def __init__(
        self, resource: IResource, *, path: str = "/", reactor: MemoryReactorClock | None = None, port: int = 80
    ) -> None:
        """
        Listen on C{port} with a L{txpulse.WebSocketSite} serving
        C{resource} at C{path}.
        """
        self.reactor = MemoryReactorClock() if reactor is None else reactor
        self.port = port
        root = _mount(resource, path)
        self.site = WebSocketSite(root, reactor=self.reactor)
        self.reactor.listenTCP(port, self.site)
        self._pumps: list[IOPump] = []

    def endpoint(self, path: str = "/", **options: Any) -> WebSocketClientEndpoint:
        """
        A client endpoint for C{ws://localhost:PORT/PATH} on this network.

        @param options: keyword arguments of
            L{txpulse.WebSocketClientEndpoint.new} (C{headers},
            C{subprotocols}, C{pingInterval}, ...).
        """
        return WebSocketClientEndpoint.new(self.reactor, f"ws://localhost:{self.port}{path}", **options)

    def connect(self, factory: WebSocketClientFactory[A], path: str = "/", **options: Any) -> Deferred[A]:
        """
        Connect a client: C{endpoint(path, **options).connect(factory)},
        with the network flushed.

        @return: a L{Deferred} that has already fired with the client's
            application protocol (or failed, e.g. with
            L{txpulse.ConnectionRejected}) unless the server is still
            deciding (an asynchronous accept hook: fire it, then L{flush}).
        """
        connected = Deferred.fromCoroutine(self.endpoint(path, **options).connect(factory))
        self.flush()
        return connected

    def flush(self) -> None:
        """
        Complete pending connections and move bytes both ways until
        nothing moves (each pass also runs the calls due now on the clock).
        """
        completer = ConnectionCompleter(self.reactor)
        while True:
            pump = completer.succeedOnce()
            if pump is None:
                break
            self._pumps.append(pump)
        moved = True
        while moved:
            moved = False
            for pump in self._pumps:
                moved = pump.flush() or moved
        self._pumps = [pump for pump in self._pumps if not (pump.clientIO.disconnected and pump.serverIO.disconnected)]

    def advance(self, seconds: float) -> None:
        """
        Move the clock forward, then L{flush}.
        """
        self.reactor.advance(seconds)
        self.flush()

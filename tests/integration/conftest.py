"""
Shared fixtures for the loopback integration suite: a real Twisted reactor
serving a C{twisted.web} L{Site} on 127.0.0.1, talked to by real peers
(C{websockets} in a worker thread, autobahn on the reactor, and raw sockets
that write exactly the bytes a test wants).

Everything here is deliberately independent of txpulse's own codec: client
frames are built by hand (L{client_frame}), server frames are parsed by
wsproto's L{FrameProtocol}, and the accept key is computed with C{hashlib}.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site
from wsproto.frame_protocol import FrameProtocol, Opcode

T = TypeVar("T")

#: Upper bound for any single wait on an event, in seconds. Tests normally
#: finish in milliseconds; this only turns a hang into a clear failure.
WAIT = 5.0

#: RFC 6455 §1.3.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- bounded waits -------------------------------------------------------------


async def within(d: Deferred[T] | Awaitable[T], seconds: float = WAIT) -> T:
    """
    Await C{d}, failing with L{twisted.internet.defer.TimeoutError} after
    C{seconds} (the only kind of wait these tests use).
    """
    if not isinstance(d, Deferred):
        d = Deferred.fromCoroutine(d)  # type: ignore[arg-type]
    return await d.addTimeout(seconds, reactor)


def in_thread(coroutine_function: Callable[[], Awaitable[T]], seconds: float = WAIT) -> Deferred[T]:
    """
    Run an asyncio client (C{websockets}) in a worker thread with its own
    event loop, so the Twisted reactor keeps serving meanwhile.
    """

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine_function(), seconds)

    return deferToThread(asyncio.run, bounded())


# -- the server --------------------------------------------------------------


class TrackedChannel(HTTPChannel):
    """
    An L{HTTPChannel} that fires C{self.lost} when its TCP (or TLS)
    connection ends, so teardown can wait for every server-side connection.

    (txpulse's C{takeOver} wraps the channel's C{connectionLost} and calls
    the original, i.e. this method, after the WebSocket's.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            if not self.lost.called:
                self.lost.callback(None)


class TrackingSite(Site):
    """
    A L{Site} remembering the channels it built.
    """

    protocol = TrackedChannel

    def __init__(self, resource: Resource, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.channels: list[TrackedChannel] = []

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        self.channels.append(channel)
        return channel


@dataclass
class Server:
    """
    A listening L{Site}.

    @ivar port: the TCP port number on 127.0.0.1.
    @ivar site: the L{TrackingSite}.
    @ivar tls: whether the port speaks TLS.
    """

    port: int
    site: TrackingSite
    listening: Any
    tls: bool = False

    def url(self, path: str = "/echo") -> str:
        """
        The C{ws://} (or C{wss://}) URL of C{path} on this server.
        """
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        """
        Stop listening, then drop any server-side connection a test left
        open and wait until each is gone.
        """
        await self.listening.stopListening()
        for channel in self.site.channels:
            if not channel.lost.called and channel.transport is not None:
                channel.transport.abortConnection()
        for channel in self.site.channels:
            if channel.transport is not None:
                await within(channel.lost)


def site_for(resource: Resource, path: bytes = b"echo") -> TrackingSite:
    """
    A L{TrackingSite} with C{resource} mounted at C{/<path>}.
    """
    root = Resource()
    root.putChild(path, resource)
    return TrackingSite(root)


@pytest_twisted.async_yield_fixture
async def serve() -> Any:
    """
    A function starting a server: C{serve(resource_or_site, tlsOptions=None)}
    mounts a resource at C{/echo} (or serves a ready L{TrackingSite}) on
    127.0.0.1, port 0, and returns a L{Server}. Every server is stopped, and
    its connections closed, at teardown.
    """
    servers: list[Server] = []

    def start(thing: Resource | TrackingSite, tlsOptions: Any = None) -> Server:
        site = thing if isinstance(thing, TrackingSite) else site_for(thing)
        if tlsOptions is None:
            listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        else:
            listening = reactor.listenSSL(0, site, tlsOptions, interface="127.0.0.1")
        server = Server(listening.getHost().port, site, listening, tls=tlsOptions is not None)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


# -- application side ------------------------------------------------------


class Recorder:
    """
    An echo application that records what happens to it.

    Text C{"boom"} raises from C{textMessageReceived} (to exercise 1011).
    With a C{delay}, text messages are handled by an C{async def} that
    answers (or raises) C{delay} seconds later, so the wire holds further
    input until it is done (README: "Application slower than the peer").

    @ivar opened: fires with this recorder once C{negotiationFinished} ran.
    @ivar lost: fires (with C{None}) once C{connectionLost} ran.
    @ivar reason: the L{Failure} given to C{connectionLost}.
    @ivar pongs: a queue of pong payloads received.
    @ivar messages: every message received, in order.
    """

    def __init__(self, request: Any, delay: float | None = None) -> None:
        self.request = request
        self.delay = delay
        self.transport: Any = None
        self.opened: Deferred[Recorder] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self.pongs: DeferredQueue[bytes] = DeferredQueue()
        self.messages: list[str | bytes] = []

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.opened.callback(self)

    def textMessageReceived(self, message: str) -> Any:
        self.messages.append(message)
        if self.delay is not None:
            return self._slowly(message, self.delay)
        self._answer(message)
        return None

    async def _slowly(self, message: str, delay: float) -> None:
        await deferLater(reactor, delay)
        self._answer(message)

    def _answer(self, message: str) -> None:
        if message == "boom":
            raise RuntimeError("the application failed on purpose")
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.messages.append(data)
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.put(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)

    async def lostReason(self) -> Failure:
        """
        The L{Failure} given to C{connectionLost}, once it ran (bounded wait).
        """
        await within(self.lost)
        assert self.reason is not None
        return self.reason


class RecorderFactory:
    """
    Builds a L{Recorder} per connection and queues it in C{connections}.

    @param delay: passed to each L{Recorder}.
    """

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay
        self.connections: DeferredQueue[Recorder] = DeferredQueue()
        self.built: list[Recorder] = []

    def buildProtocol(self, request: Any) -> Recorder:
        recorder = Recorder(request, self.delay)
        self.built.append(recorder)
        recorder.opened.addCallback(self.connections.put)
        return recorder

    async def next(self) -> Recorder:
        """
        The next connection that opened (bounded wait).
        """
        return await within(self.connections.get())


@pytest.fixture
def recorder() -> RecorderFactory:
    """
    A fresh L{RecorderFactory}.
    """
    return RecorderFactory()


# -- hand-built client frames -------------------------------------------------


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    masked: bool = True,
    key: bytes = b"\x9a\x1c\x47\xe3",
) -> bytes:
    """
    One frame as a client sends it: masked with C{key} (RFC 6455 §5.3)
    unless C{masked} is false. Built by hand, independently of txpulse.
    """
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n < 0x10000:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not masked:
        return header + payload
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big") if n else b""
    return header + key + body


def close_payload(code: int, reason: str = "") -> bytes:
    """
    The payload of a close frame.
    """
    return struct.pack("!H", code) + reason.encode("utf-8")


# -- raw sockets ---------------------------------------------------------------


def accept_key_for(key: str) -> str:
    """
    C{Sec-WebSocket-Accept} for C{key}, computed independently of txpulse.
    """
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def upgrade_request(
    port: int,
    path: str = "/echo",
    *,
    key: str | None = None,
    version: str = "13",
    extra: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, str]:
    """
    A raw HTTP/1.1 upgrade request, and the key it carries.
    """
    key = key or base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
        *(f"{name}: {value}" for name, value in extra),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"), key


@dataclass
class HTTPResponse:
    """
    A parsed HTTP response head (and body, for non-101 answers).
    """

    raw: bytes
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Message:
    """
    A complete message (or control frame) received from the server.

    For C{Opcode.CLOSE}, C{code} and C{reason} are set and C{payload} is
    empty.
    """

    opcode: Opcode
    payload: bytes | str = b""
    code: int | None = None
    reason: str | None = None


@dataclass
class RawSocket:
    """
    A blocking TCP (or TLS) socket driven from worker threads, for tests
    that need exact bytes on the wire.

    @ivar buffer: bytes received but not parsed yet.
    @ivar reset: whether the server reset (aborted) the connection. Every method is a coroutine that runs
    its blocking work via C{deferToThread}, so the reactor keeps serving.

    Server frames are parsed by wsproto's L{FrameProtocol}, an oracle
    independent of txpulse.
    """

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    reset: bool = False
    frames: FrameProtocol = field(default_factory=lambda: FrameProtocol(client=True, extensions=[]))

    # -- blocking primitives (run in a thread) --

    def _recv_more(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buffer += data
        return True

    def _read_head(self) -> HTTPResponse:
        while b"\r\n\r\n" not in self.buffer:
            if not self._recv_more():
                raise ConnectionError(f"EOF before the response head: {bytes(self.buffer)!r}")
        end = self.buffer.index(b"\r\n\r\n") + 4
        raw = bytes(self.buffer[:end])
        del self.buffer[:end]
        status_line, *header_lines = raw[:-4].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return HTTPResponse(raw, int(status_line.split()[1]), headers)

    def _read_response(self) -> HTTPResponse:
        response = self._read_head()
        if response.status == 101:
            # What follows is WebSocket data: leave it in the buffer.
            return response
        if "content-length" in response.headers:
            size = int(response.headers["content-length"])
            while len(self.buffer) < size:
                if not self._recv_more():
                    break
            response.body = bytes(self.buffer[:size])
            del self.buffer[:size]
        elif response.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buffer:
                    if not self._recv_more():
                        raise ConnectionError("EOF inside a chunked body")
                line_end = self.buffer.index(b"\r\n")
                size = int(bytes(self.buffer[:line_end]).split(b";")[0], 16)
                while len(self.buffer) < line_end + 2 + size + 2:
                    if not self._recv_more():
                        raise ConnectionError("EOF inside a chunk")
                body += bytes(self.buffer[line_end + 2 : line_end + 2 + size])
                del self.buffer[: line_end + 2 + size + 2]
                if size == 0:
                    break
            response.body = body
        return response

    def _read_message(self) -> Message | None:
        """
        The next complete message or control frame; C{None} at EOF.
        """
        opcode: Opcode | None = None
        parts: list[Any] = []
        while True:
            if self.buffer:
                self.frames.receive_bytes(bytes(self.buffer))
                self.buffer.clear()
            for frame in self.frames.received_frames():
                if frame.opcode is Opcode.CLOSE:
                    code, reason = frame.payload
                    return Message(Opcode.CLOSE, code=int(code), reason=reason)
                if frame.opcode in (Opcode.PING, Opcode.PONG):
                    return Message(frame.opcode, bytes(frame.payload))
                if frame.opcode is not Opcode.CONTINUATION:
                    opcode = frame.opcode
                parts.append(frame.payload)
                if frame.message_finished:
                    assert opcode is not None
                    if opcode is Opcode.TEXT:
                        return Message(opcode, "".join(parts))
                    return Message(opcode, b"".join(bytes(p) for p in parts))
            if not self._recv_more():
                return None

    def _read_until_eof(self) -> bytes:
        try:
            while self._recv_more():
                pass
        except ConnectionResetError:
            self.reset = True
        data = bytes(self.buffer)
        self.buffer.clear()
        # Like any client, close our side once the server has closed its own
        # (a server may half-close and wait for this before it lets go).
        self.sock.close()
        return data

    # -- the coroutine API --

    async def send(self, data: bytes) -> None:
        """
        Send C{data} with one C{sendall}.
        """
        await within(deferToThread(self.sock.sendall, data))

    async def read_response(self) -> HTTPResponse:
        """
        Read the server's HTTP answer (head, and the body unless it is 101).
        """
        return await within(deferToThread(self._read_response))

    async def read_message(self) -> Message | None:
        """
        Read the next message or control frame from the server (C{None} at
        EOF).
        """
        return await within(deferToThread(self._read_message))

    async def read_all_messages(self) -> list[Message]:
        """
        Read messages and control frames until the server closes the
        connection, then close the socket.
        """
        messages = []
        while (message := await self.read_message()) is not None:
            messages.append(message)
        self.close()
        return messages

    async def read_until_eof(self) -> bytes:
        """
        Read until the server closes the connection, then close the
        socket; return what came. A reset (an aborted connection) also ends
        it, and sets C{reset}.
        """
        return await within(deferToThread(self._read_until_eof))

    def close(self) -> None:
        """
        Close the socket (idempotent).
        """
        self.sock.close()


def _blocking_connect(port: int, sslContext: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if sslContext is not None:
        sock = sslContext.wrap_socket(sock, server_hostname="localhost")
    return sock


@pytest_twisted.async_yield_fixture
async def raw() -> Any:
    """
    Raw-socket helpers, closed at teardown:

      - C{await raw.connect(port)} returns a connected L{RawSocket};
      - C{await raw.upgrade(port, path="/echo", extra=())} also performs
        the opening handshake, checks the C{101} and its accept key, and
        returns the L{RawSocket}.
    """
    sockets: list[RawSocket] = []

    class Raw:
        async def connect(self, port: int, sslContext: ssl.SSLContext | None = None) -> RawSocket:
            sock = await within(deferToThread(_blocking_connect, port, sslContext))
            rawSocket = RawSocket(sock)
            sockets.append(rawSocket)
            return rawSocket

        async def upgrade(
            self,
            port: int,
            path: str = "/echo",
            extra: Iterable[tuple[str, str]] = (),
            sslContext: ssl.SSLContext | None = None,
        ) -> RawSocket:
            rawSocket = await self.connect(port, sslContext)
            request, key = upgrade_request(port, path, extra=extra)
            await rawSocket.send(request)
            response = await rawSocket.read_response()
            assert response.status == 101, response.raw
            assert response.headers["sec-websocket-accept"] == accept_key_for(key)
            return rawSocket

    yield Raw()
    for rawSocket in sockets:
        rawSocket.close()


# -- peers -----------------------------------------------------------------------


def ws_connect(url: str, **kwargs: Any) -> Any:
    """
    C{websockets.asyncio.client.connect} with deterministic defaults: no
    proxy lookup, no keepalive pings, bounded open and close waits.
    """
    from websockets.asyncio.client import connect

    kwargs.setdefault("proxy", None)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", WAIT)
    kwargs.setdefault("close_timeout", WAIT)
    return connect(url, **kwargs)


def _autobahn_classes() -> tuple[type, type]:
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

    class AutobahnClient(WebSocketClientProtocol):  # type: ignore[misc]
        """
        Reports every event to its factory's Deferreds and queues.
        """

        def onOpen(self) -> None:
            self.factory.client = self
            self.factory.opened.callback(self)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.factory.messages.put((payload, isBinary))

        def onPing(self, payload: bytes) -> None:
            self.factory.pings.put(payload)
            super().onPing(payload)  # answers with a pong

        def onPong(self, payload: bytes) -> None:
            self.factory.pongs.put(payload)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            if not self.factory.opened.called:
                self.factory.opened.errback(ConnectionError(f"handshake failed: {reason}"))
            if not self.factory.closed.called:
                self.factory.closed.callback((wasClean, code, reason))
            # Wake up a test waiting for a message that will never come.
            self.factory.messages.put((None, (wasClean, code, reason)))

    class AutobahnClientFactory(WebSocketClientFactory):  # type: ignore[misc]
        """
        @ivar client: the protocol, once open.
        @ivar opened: fires with the protocol once open.
        @ivar closed: fires with C{(wasClean, code, reason)} from C{onClose}
            (C{code} is the peer's close code).
        @ivar messages: queue of C{(payload, isBinary)}; after the close,
            C{(None, (wasClean, code, reason))}.
        """

        protocol = AutobahnClient

        def __init__(self, url: str, **kwargs: Any) -> None:
            super().__init__(url, **kwargs)
            self.client: Any = None
            self.opened: Deferred[Any] = Deferred()
            self.closed: Deferred[tuple[bool, int | None, str | None]] = Deferred()
            self.messages: DeferredQueue[tuple[bytes, bool]] = DeferredQueue()
            self.pings: DeferredQueue[bytes] = DeferredQueue()
            self.pongs: DeferredQueue[bytes] = DeferredQueue()

    return AutobahnClient, AutobahnClientFactory


@pytest_twisted.async_yield_fixture
async def autobahn() -> Any:
    """
    C{await autobahn(url, protocols=None, **protocolOptions)} connects an
    autobahn client (on the Twisted reactor) and returns its factory once
    the connection is open (see L{_autobahn_classes}). Connections still
    open at teardown are dropped.
    """
    _, factoryClass = _autobahn_classes()
    factories: list[Any] = []

    async def connect(url: str, protocols: list[str] | None = None, **options: Any) -> Any:
        factory = factoryClass(url, protocols=protocols)
        if options:
            factory.setProtocolOptions(**options)
        factories.append(factory)
        reactor.connectTCP("127.0.0.1", factory.port, factory, timeout=WAIT)
        await within(factory.opened)
        return factory

    yield connect
    for factory in factories:
        if factory.client is not None and not factory.closed.called:
            factory.client.dropConnection(abort=True)
        if factory.client is not None:
            await within(factory.closed)

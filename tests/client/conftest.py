"""
Fixtures for the client suite: txpulse's client (and its CLI) against real
servers on 127.0.0.1.

  - L{serve_txpulse}: a C{twisted.web} L{Site} with a L{WebSocketResource}
    on the test's own reactor (plain TCP or TLS);
  - L{serve_websockets}: a C{websockets} server in a worker thread with its
    own asyncio event loop;
  - L{serve_autobahn}: an autobahn Twisted server on the test's reactor;
  - L{serve_raw}: a plain Twisted protocol on a port, for servers that
    misbehave on purpose (never answer, stop reading);
  - L{pki}: a CA and a server certificate generated at test time;
  - L{connect}: txpulse's client endpoint, with every connection it opened
    dropped at teardown.

Every wait is bounded (L{within}); every port, thread and connection is
released at teardown.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

from txpulse import ConnectionClosed
from txpulse.client import WebSocketClientEndpoint

T = TypeVar("T")

#: Upper bound for any single wait, in seconds. Tests normally finish in
#: milliseconds; this only turns a hang into a clear failure.
WAIT = 5.0


async def within(d: Deferred[T] | Awaitable[T], seconds: float = WAIT) -> T:
    """
    Await C{d}, failing with L{twisted.internet.defer.TimeoutError} after
    C{seconds}.
    """
    if not isinstance(d, Deferred):
        d = Deferred.fromCoroutine(d)  # type: ignore[arg-type]
    return await d.addTimeout(seconds, reactor)


def closed_port() -> int:
    """
    A loopback TCP port nobody listens on (bound, then released).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- client side ----------------------------------------------------------------


class ClientApp:
    """
    A client application protocol (Twisted's C{WebSocketProtocol} methods)
    that records what happens to it.

    @ivar url: what C{buildProtocol} was called with.
    @ivar opened: fires with this app once C{negotiationFinished} ran.
    @ivar messages: a queue of every text (C{str}) and binary (C{bytes})
        message received.
    @ivar lost: fires with C{None} once C{connectionLost} ran.
    @ivar reason: the L{Failure} given to C{connectionLost}.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.transport: Any = None
        self.opened: Deferred[ClientApp] = Deferred()
        self.messages: DeferredQueue[str | bytes] = DeferredQueue()
        self.pongs: DeferredQueue[bytes] = DeferredQueue()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.opened.callback(self)

    def textMessageReceived(self, message: str) -> None:
        self.messages.put(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.messages.put(data)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.put(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)

    async def next(self, seconds: float = WAIT) -> str | bytes:
        """
        The next message received (bounded wait).
        """
        return await within(self.messages.get(), seconds)

    async def closed(self, seconds: float = WAIT) -> ConnectionClosed:
        """
        The L{ConnectionClosed} given to C{connectionLost}, once it ran.
        """
        await within(self.lost, seconds)
        assert self.reason is not None
        assert isinstance(self.reason.value, ConnectionClosed), self.reason
        return self.reason.value


class ClientAppFactory:
    """
    The client factory: C{buildProtocol(url)} returns a new L{ClientApp}.
    """

    def __init__(self) -> None:
        self.built: list[ClientApp] = []

    def buildProtocol(self, url: str) -> ClientApp:
        app = ClientApp(url)
        self.built.append(app)
        return app


@pytest_twisted.async_yield_fixture
async def connect() -> Any:
    """
    C{await connect(url, factory=None, **options)}: connect txpulse's
    endpoint (C{WebSocketClientEndpoint.new(reactor, url, **options)}) and
    return the application protocol. Connections still open at teardown
    are dropped, and their C{connectionLost} awaited.
    """
    factories: list[ClientAppFactory] = []

    async def open_(url: str, factory: ClientAppFactory | None = None, **options: Any) -> ClientApp:
        factory = factory if factory is not None else ClientAppFactory()
        factories.append(factory)
        endpoint = WebSocketClientEndpoint.new(reactor, url, **options)
        app: ClientApp = await within(endpoint.connect(factory))
        return app

    yield open_
    for factory in factories:
        for app in factory.built:
            if app.transport is not None and not app.lost.called:
                app.transport.abortConnection()
                await within(app.lost)


# -- txpulse's server ----------------------------------------------------------


class TrackedChannel(HTTPChannel):
    """
    An L{HTTPChannel} firing C{lost} when its connection ends (txpulse's
    C{takeOver} calls the channel's original C{connectionLost} after the
    WebSocket's).
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
    A L{Site} remembering its channels, so a test (or teardown) can drop
    every server-side connection.
    """

    protocol = TrackedChannel

    def __init__(self, resource: Resource, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.channels: list[TrackedChannel] = []

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        self.channels.append(channel)
        return channel

    async def drop_connections(self) -> None:
        """
        Abort every server-side connection and wait until each is gone.
        """
        for channel in self.channels:
            if not channel.lost.called and channel.transport is not None:
                channel.transport.abortConnection()
        for channel in self.channels:
            if channel.transport is not None or channel.lost.called:
                await within(channel.lost)


@dataclass
class TxpulseServer:
    """
    A listening L{TrackingSite}.
    """

    port: int
    site: TrackingSite
    listening: Any
    tls: bool = False
    stopped: bool = False

    def url(self, path: str = "/echo", host: str = "127.0.0.1") -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{host}:{self.port}{path}"

    async def stop(self) -> None:
        """
        Stop listening, then drop every server-side connection.
        """
        if not self.stopped:
            self.stopped = True
            await self.listening.stopListening()
        await self.site.drop_connections()


@pytest_twisted.async_yield_fixture
async def serve_txpulse() -> Any:
    """
    C{serve_txpulse(resources, tlsOptions=None, port=0)}: serve
    C{{b"path": resource}} on 127.0.0.1 and return a L{TxpulseServer};
    stopped at teardown.
    """
    servers: list[TxpulseServer] = []

    def start(resources: dict[bytes, Resource], tlsOptions: Any = None, port: int = 0) -> TxpulseServer:
        root = Resource()
        for path, resource in resources.items():
            root.putChild(path, resource)
        site = TrackingSite(root)
        if tlsOptions is None:
            listening = reactor.listenTCP(port, site, interface="127.0.0.1")
        else:
            listening = reactor.listenSSL(port, site, tlsOptions, interface="127.0.0.1")
        server = TxpulseServer(listening.getHost().port, site, listening, tls=tlsOptions is not None)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


class ServerApp:
    """
    A server-side application protocol for txpulse's L{WebSocketResource}:
    echoes, and records the request and how the connection ended.
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        self.transport: Any = None
        self.opened: Deferred[ServerApp] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.opened.callback(self)

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)

    async def closed(self, seconds: float = WAIT) -> ConnectionClosed:
        """
        The L{ConnectionClosed} the server application saw.
        """
        await within(self.lost, seconds)
        assert self.reason is not None
        assert isinstance(self.reason.value, ConnectionClosed), self.reason
        return self.reason.value


class ServerAppFactory:
    """
    Builds a L{ServerApp} per accepted request and queues it.
    """

    def __init__(self) -> None:
        self.built: list[ServerApp] = []
        self.connections: DeferredQueue[ServerApp] = DeferredQueue()

    def buildProtocol(self, request: Any) -> ServerApp:
        app = ServerApp(request)
        self.built.append(app)
        app.opened.addCallback(self.connections.put)
        return app

    async def next(self, seconds: float = WAIT) -> ServerApp:
        """
        The next connection opened on the server (bounded wait).
        """
        return await within(self.connections.get(), seconds)


# -- websockets (asyncio, in a worker thread) ----------------------------------


@dataclass
class ThreadedServer:
    """
    A C{websockets} server running in its own thread and event loop.

    @ivar port: its port on 127.0.0.1.
    @ivar requests: the handshake request of every connection attempt
        (appended from the server thread before it answers).
    """

    handler: Callable[[Any], Awaitable[None]]
    options: dict[str, Any]
    port: int = 0
    requests: list[Any] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _error: BaseException | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="websockets-server", daemon=True)
        self._thread.start()
        if not ready.wait(WAIT):
            raise RuntimeError("the websockets server did not start")
        if self._error is not None:
            raise RuntimeError("the websockets server failed to start") from self._error

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as error:  # reported to the test thread
            self._error = error
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        userProcessRequest = self.options.get("process_request")

        def process_request(connection: Any, request: Any) -> Any:
            # Recorded before the server answers, so a test reading it after
            # the client's connect() returned never races the server.
            self.requests.append(request)
            if userProcessRequest is not None:
                return userProcessRequest(connection, request)
            return None

        options = {"ping_interval": None, "close_timeout": 1.0, **self.options, "process_request": process_request}
        async with serve(self.handler, "127.0.0.1", 0, **options) as server:
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()

    async def stop(self) -> None:
        """
        Stop the server (closing its connections) and join the thread,
        without blocking the reactor.
        """
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread is not None:
            await deferToThread(self._thread.join, WAIT)
            assert not self._thread.is_alive(), "the websockets server thread did not stop"

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


async def echo_handler(connection: Any) -> None:
    """
    Echo every message (text as text, binary as binary) until the client
    closes.
    """
    from websockets.exceptions import ConnectionClosed as WSConnectionClosed

    try:
        async for message in connection:
            await connection.send(message)
    except WSConnectionClosed:
        pass


@pytest_twisted.async_yield_fixture
async def serve_websockets() -> Any:
    """
    C{serve_websockets(handler=echo_handler, **serveOptions)}: a started
    L{ThreadedServer}; stopped (and its thread joined) at teardown.
    """
    servers: list[ThreadedServer] = []

    def start(handler: Callable[[Any], Awaitable[None]] = echo_handler, **options: Any) -> ThreadedServer:
        server = ThreadedServer(handler, options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


# -- autobahn (Twisted) ----------------------------------------------------------


def _autobahn_factory(subprotocols: tuple[str, ...], deny: int | None) -> Any:
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.websocket.types import ConnectionDeny

    class AutobahnEcho(WebSocketServerProtocol):  # type: ignore[misc]
        """
        Echoes every message; records the handshake request; picks the
        first offered subprotocol it speaks; refuses with C{deny}.
        """

        def onConnect(self, request: Any) -> str | None:
            self.factory.requests.append(request)
            if deny is not None:
                raise ConnectionDeny(deny, "denied by the test")
            for offered in request.protocols:
                if offered in subprotocols:
                    return offered
            return None

        def onOpen(self) -> None:
            self.factory.open.append(self)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            if self in self.factory.open:
                self.factory.open.remove(self)

    factory = WebSocketServerFactory()
    factory.protocol = AutobahnEcho
    factory.requests = []
    factory.open = []
    return factory


@pytest_twisted.async_yield_fixture
async def serve_autobahn() -> Any:
    """
    C{serve_autobahn(subprotocols=(), deny=None, **protocolOptions)}: an
    autobahn echo server on 127.0.0.1; returns C{(port, factory)}. Stopped,
    and its open connections dropped, at teardown.
    """
    ports: list[Any] = []
    factories: list[Any] = []

    def start(subprotocols: tuple[str, ...] = (), deny: int | None = None, **options: Any) -> tuple[int, Any]:
        factory = _autobahn_factory(subprotocols, deny)
        if options:
            factory.setProtocolOptions(**options)
        factories.append(factory)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        ports.append(port)
        return port.getHost().port, factory

    yield start
    for port in ports:
        await port.stopListening()
    for factory in factories:
        for proto in list(factory.open):
            proto.dropConnection(abort=True)


# -- raw Twisted servers ---------------------------------------------------------


class RawServerFactory(Factory):
    """
    Builds C{protocolClass} per connection and remembers each.
    """

    def __init__(self, protocolClass: type[Protocol]) -> None:
        self.protocol = protocolClass
        self.built: list[Protocol] = []
        self.connected: DeferredQueue[Protocol] = DeferredQueue()

    def buildProtocol(self, addr: Any) -> Protocol:
        proto = super().buildProtocol(addr)
        assert proto is not None
        self.built.append(proto)
        return proto


@pytest_twisted.async_yield_fixture
async def serve_raw() -> Any:
    """
    C{serve_raw(protocolClass)}: a plain Twisted protocol listening on
    127.0.0.1; returns C{(port, factory)}. At teardown the port closes and
    every connection is aborted.
    """
    ports: list[Any] = []
    factories: list[RawServerFactory] = []

    def start(protocolClass: type[Protocol]) -> tuple[int, RawServerFactory]:
        factory = RawServerFactory(protocolClass)
        factories.append(factory)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        ports.append(port)
        return port.getHost().port, factory

    yield start
    for port in ports:
        await port.stopListening()
    for factory in factories:
        for proto in factory.built:
            if proto.transport is not None and proto.connected:
                proto.transport.abortConnection()


# -- certificates --------------------------------------------------------------------


@dataclass
class PKI:
    """
    A throwaway CA and a server certificate it signed, valid for the IP
    address 127.0.0.1 only (so C{wss://localhost} is a host name mismatch).

    @ivar caFile: the CA certificate (PEM).
    @ivar keyFile: the server's private key (PEM).
    @ivar certFile: the server's certificate (PEM).
    @ivar serverOptions: Twisted TLS context options serving it.
    """

    caFile: Path
    keyFile: Path
    certFile: Path
    serverOptions: Any


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(directory: Path) -> PKI:
    """
    Generate a CA and a server certificate for 127.0.0.1 into C{directory}.
    """
    now = datetime.now(UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caCert = (
        x509.CertificateBuilder()
        .subject_name(_name("txpulse client-test CA"))
        .issuer_name(_name("txpulse client-test CA"))
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(caKey.public_key()), critical=False)
        .sign(caKey, hashes.SHA256())
    )
    serverKey = ec.generate_private_key(ec.SECP256R1())
    serverCert = (
        x509.CertificateBuilder()
        .subject_name(_name("txpulse test server"))
        .issuer_name(caCert.subject)
        .public_key(serverKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(serverKey.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(caKey.public_key()), critical=False)
        .sign(caKey, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    caFile = directory / "ca.pem"
    caFile.write_bytes(caCert.public_bytes(serialization.Encoding.PEM))
    keyFile = directory / "key.pem"
    keyFile.write_bytes(
        serverKey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certFile = directory / "cert.pem"
    certFile.write_bytes(serverCert.public_bytes(serialization.Encoding.PEM))
    serverOptions = PrivateCertificate.loadPEM(keyFile.read_bytes() + certFile.read_bytes()).options()
    return PKI(caFile, keyFile, certFile, serverOptions)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """
    A L{PKI} shared by the whole client suite.
    """
    return make_pki(tmp_path_factory.mktemp("client-pki"))

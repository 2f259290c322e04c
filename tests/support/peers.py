"""
Other WebSocket implementations as peers on loopback: a C{websockets}
server in a worker thread with its own asyncio event loop, an autobahn
server and an autobahn client on the test's reactor, and C{websockets}'
client with deterministic defaults.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.threads import deferToThread

from .waits import WAIT, within

# -- websockets (asyncio, in a worker thread) ----------------------------------


@dataclass
class ThreadedServer:
    """
    A C{websockets} server running in its own thread and event loop.

    @ivar port: its port on 127.0.0.1.
    @ivar requests: the handshake request of every connection attempt
        (appended from the server thread before it answers).
    @ivar responses: the handshake response to each of them (likewise).
    """

    handler: Callable[[Any], Awaitable[None]]
    options: dict[str, Any]
    port: int = 0
    requests: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _error: BaseException | None = None

    def start(self) -> None:
        """
        Start the thread and wait (bounded) until the server listens.
        """
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
        userProcessResponse = self.options.get("process_response")

        # Both recorded before the server answers, so a test reading them
        # after the client's connect() returned never races the server.
        def process_request(connection: Any, request: Any) -> Any:
            self.requests.append(request)
            if userProcessRequest is not None:
                return userProcessRequest(connection, request)
            return None

        def process_response(connection: Any, request: Any, response: Any) -> Any:
            if userProcessResponse is not None:
                response = userProcessResponse(connection, request, response) or response
            self.responses.append(response)
            return response

        options = {
            "ping_interval": None,
            "close_timeout": 1.0,
            **self.options,
            "process_request": process_request,
            "process_response": process_response,
        }
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
        """
        The C{ws://} URL of C{path} on this server.
        """
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


async def ws_close_received(url: str, **kwargs: Any) -> tuple[int, str]:
    """
    Connect with C{websockets} (L{ws_connect}) and wait for the server to
    close: the code and reason of its close frame. A message arriving first
    is an error.
    """
    from websockets.exceptions import ConnectionClosed

    async with ws_connect(url, **kwargs) as ws:
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("a message arrived instead of the close")


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
    autobahn echo server on 127.0.0.1; returns C{(port, factory)}
    (C{factory.open} lists the open protocols). Stopped, and its open
    connections dropped, at teardown.
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


def _autobahn_client_factory_class() -> type:
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

    return AutobahnClientFactory


@pytest_twisted.async_yield_fixture
async def autobahn() -> Any:
    """
    C{await autobahn(url, protocols=None, **protocolOptions)} connects an
    autobahn client (on the Twisted reactor) and returns its factory once
    the connection is open (see L{_autobahn_client_factory_class}).
    Connections still open at teardown are dropped.
    """
    factoryClass = _autobahn_client_factory_class()
    factories: list[Any] = []

    async def connect(url: str, protocols: list[str] | None = None, **options: Any) -> Any:
        factory = factoryClass(url, protocols=protocols)
        # autobahn gives the closing handshake 1 s by default: on a loaded
        # two-core CI machine that is not always enough, and a server that
        # never answers still fails the test at WAIT.
        options.setdefault("closeHandshakeTimeout", WAIT)
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

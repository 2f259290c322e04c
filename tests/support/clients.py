"""
txpulse's own client on loopback: a recording client application, and the
C{connect} fixture opening connections with L{WebSocketClientEndpoint}.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.python.failure import Failure

from txpulse import ConnectionClosed
from txpulse.client import WebSocketClientEndpoint

from .waits import WAIT, within


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

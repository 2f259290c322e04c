"""
Fixtures for the hardening suite: hostile peers against a live server.

Every test here starts a real L{WebSocketSite} on 127.0.0.1 (the reactor
pytest-twisted runs), with C{WebSocketResource(EchoFactory())} at C{/echo}
observed by a L{ConnectionRegistry} (as the twistd plugin mounts it) and a
plain static page at C{/static}. While a hostile peer (a raw socket from
the shared C{raw} fixture, writing exactly the bytes it wants)
attacks, a second, well-behaved peer (L{Bystander}: a C{websockets} client
driven from worker threads) stays connected and exchanges messages before
and after the attack; it must see no disruption. The L{logs} fixture
collects every log event the server emits, so each case can assert that the
attack left a line naming the attacker.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.static import Data

from txpulse import WebSocketResource
from txpulse.demos.apps import Echo, EchoFactory
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.server.site import WebSocketSite

from ..support.logs import LogLines, captured_logs
from ..support.rawsocket import RawSocket, raw  # noqa: F401  (raw: the fixture)
from ..support.servers import ConnectionTracking, LoopbackServer
from ..support.waits import WAIT, within

#: The slowest round trip (text + 4 KiB binary) the bystander tolerates, in
#: seconds. Loopback round trips take about a millisecond; this only has to
#: tell "served" from "stalled behind the attacker".
MAX_BYSTANDER_LATENCY = 1.0

#: The body of the static page at C{/static}.
STATIC_PAGE = b"<!doctype html><title>static</title><p>not a WebSocket\n"


# -- the application -------------------------------------------------------------


class ObservedEcho(Echo):
    """
    The stock L{Echo}, plus what a test needs to see from the server side:
    when it opened, and how it ended.

    @ivar lost: fires once C{connectionLost} ran.
    @ivar reason: the L{Failure} given to C{connectionLost}.
    """

    def __init__(self, opened: DeferredQueue[ObservedEcho]) -> None:
        self._opened = opened
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def negotiationFinished(self) -> None:
        self._opened.put(self)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)

    async def lostReason(self, seconds: float = WAIT) -> Failure:
        """
        The L{Failure} given to C{connectionLost} (bounded wait).
        """
        await within(self.lost, seconds)
        assert self.reason is not None
        return self.reason


class ObservedEchoFactory(EchoFactory):
    """
    An L{EchoFactory} whose protocols are L{ObservedEcho}s, queued as they
    open.
    """

    def __init__(self) -> None:
        self.opened: DeferredQueue[ObservedEcho] = DeferredQueue()

    def buildProtocol(self, request: object) -> ObservedEcho:
        return ObservedEcho(self.opened)

    async def next(self) -> ObservedEcho:
        """
        The next connection that opened (bounded wait).
        """
        return await within(self.opened.get())


# -- the server ------------------------------------------------------------------------


class HardenedSite(ConnectionTracking, WebSocketSite):
    """
    A L{WebSocketSite} (its own channels, unchanged) remembering its
    connections, so teardown can wait for every one of them to end.
    """


@dataclass(kw_only=True)
class HardenedServer(LoopbackServer):
    """
    A listening L{HardenedSite}.

    @ivar factory: the echo factory behind C{/echo}.
    @ivar registry: the registry observing C{/echo} (it logs one line per
        connection opened and closed, as under twistd).
    """

    factory: ObservedEchoFactory
    registry: ConnectionRegistry


@pytest_twisted.async_yield_fixture
async def hardened() -> AsyncIterator[Any]:
    """
    C{hardened(requestTimeout=5.0, **resourceOptions)} starts a
    L{HardenedSite} on 127.0.0.1 (port 0) with
    C{WebSocketResource(EchoFactory(), **resourceOptions)} at C{/echo}
    (keepalive off unless asked for) and a static page at C{/static}, and
    returns a L{HardenedServer}. Servers are stopped at teardown.
    """
    servers: list[HardenedServer] = []

    def start(requestTimeout: float = 5.0, **resourceOptions: Any) -> HardenedServer:
        factory = ObservedEchoFactory()
        registry = ConnectionRegistry()
        resourceOptions.setdefault("pingInterval", None)
        root = Resource()
        root.putChild(b"echo", WebSocketResource(factory, observer=registry.observerFor("/echo"), **resourceOptions))
        root.putChild(b"static", Data(STATIC_PAGE, "text/html"))
        site = HardenedSite(root, requestTimeout=requestTimeout)
        server = HardenedServer.listen(site, factory=factory, registry=registry)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


# -- the well-behaved peer -------------------------------------------------------------


class Bystander:
    """
    A well-behaved C{websockets} client (the synchronous API, driven from
    worker threads; its own background thread answers the server's pings).

    @ivar slowest: the slowest round trip seen, in seconds.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.exchanges = 0
        self.slowest = 0.0

    async def connect(self) -> None:
        from websockets.sync.client import connect

        self.ws = await within(
            deferToThread(
                connect,
                self.url,
                proxy=None,
                compression=None,
                open_timeout=WAIT,
                close_timeout=WAIT,
                ping_interval=None,
                legacy=True,
            )
        )

    async def exchange(self) -> None:
        """
        Send a text and a 4 KiB binary message and check both come back
        unchanged, within L{MAX_BYSTANDER_LATENCY}.
        """
        n = self.exchanges
        self.exchanges += 1
        text = f"bystander message {n}"
        data = bytes((n % 256,)) * 4096
        ws = self.ws

        def roundTrip() -> tuple[Any, Any, float]:
            start = time.monotonic()
            ws.send(text)
            echoedText = ws.recv(timeout=WAIT)
            ws.send(data)
            echoedData = ws.recv(timeout=WAIT)
            return echoedText, echoedData, time.monotonic() - start

        echoedText, echoedData, elapsed = await within(deferToThread(roundTrip))
        assert echoedText == text
        assert echoedData == data
        self.slowest = max(self.slowest, elapsed)
        assert elapsed < MAX_BYSTANDER_LATENCY, f"bystander round trip took {elapsed:.3f}s"

    async def close(self) -> None:
        """
        Close normally; the server must answer with 1000.
        """
        await within(deferToThread(self.ws.close))
        assert self.ws.close_code == 1000

    def abort(self) -> None:
        if self.ws is not None:
            self.ws.close_socket()


@asynccontextmanager
async def undisturbed(server: HardenedServer) -> AsyncIterator[Bystander]:
    """
    Around an attack: connect a L{Bystander} to C{/echo} and exchange
    messages before; after, exchange again on the I{same} connection and
    close it cleanly. Any disruption (a dropped connection, a lost or late
    echo, a close code other than 1000) fails the test.
    """
    bystander = Bystander(server.url())
    await bystander.connect()
    # Its server side, taken off the queue so tests see only their own.
    serverSide = await server.factory.next()
    try:
        await bystander.exchange()
        yield bystander
        await bystander.exchange()
        assert not serverSide.lost.called
        await bystander.close()
        failure = await serverSide.lostReason()
        assert (failure.value.code, failure.value.clean) == (1000, True)
    finally:
        bystander.abort()


# -- logs ---------------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[LogLines]:
    """
    A L{LogLines} collecting every event of C{globalLogPublisher} during
    the test.
    """
    lines = LogLines()
    with captured_logs(lines):
        yield lines


# -- small helpers -------------------------------------------------------------------------


def peer_of(sock: RawSocket) -> str:
    """
    How the server names this raw socket in its log lines (C{host:port}).
    """
    host, port = sock.sock.getsockname()[:2]
    return f"{host}:{port}"


def write_backlog(transport: Any) -> int:
    """
    Bytes a Twisted TCP transport holds in user space, not yet handed to the
    kernel (what a peer that does not read makes the server keep).
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def retained_bytes(obj: object) -> int:
    """
    The memory C{obj} holds: its own size plus, recursively, that of what
    its slots, attributes and containers refer to (each object counted
    once). Good enough to compare a connection's buffers with the payload
    they hold, without knowing how they are laid out.
    """
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, (bool, int, float, type)):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, (bytes, bytearray, str, memoryview)):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        else:
            for klass in type(item).__mro__:
                for name in getattr(klass, "__slots__", ()):
                    value = getattr(item, name, None)
                    if not callable(value):
                        stack.append(value)
            stack.extend(v for v in getattr(item, "__dict__", {}).values() if not callable(v))
    return total

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

Every wait is bounded; every port, thread and connection is released at
teardown. The building blocks are in L{tests.support}.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredQueue
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource

from ..support.clients import connect  # noqa: F401  (fixture)
from ..support.peers import serve_autobahn, serve_websockets  # noqa: F401  (fixtures)
from ..support.pki import PKI, make_pki
from ..support.servers import LoopbackServer, TrackingSite


@pytest_twisted.async_yield_fixture
async def serve_txpulse() -> Any:
    """
    C{serve_txpulse(resources, tlsOptions=None, port=0)}: serve
    C{{b"path": resource}} on 127.0.0.1 and return a L{LoopbackServer};
    stopped at teardown.
    """
    servers: list[LoopbackServer] = []

    def start(resources: dict[bytes, Resource], tlsOptions: Any = None, port: int = 0) -> LoopbackServer:
        root = Resource()
        for path, resource in resources.items():
            root.putChild(path, resource)
        server = LoopbackServer.listen(TrackingSite(root), tlsOptions, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """
    A L{PKI} for 127.0.0.1 only (so C{wss://localhost} is a host name
    mismatch), shared by the whole client suite.
    """
    return make_pki(tmp_path_factory.mktemp("client-pki"))

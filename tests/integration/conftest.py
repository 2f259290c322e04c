"""
Shared fixtures for the loopback integration suite: a real Twisted reactor
serving a C{twisted.web} L{Site} on 127.0.0.1, talked to by real peers
(C{websockets} in a worker thread, autobahn on the reactor, txpulse's own
client, and raw sockets that write exactly the bytes a test wants).

Everything here is deliberately independent of txpulse's own codec: client
frames are built by hand, server frames are parsed by wsproto's
L{FrameProtocol}, and the accept key is computed with C{hashlib} (see
L{tests.support.rawsocket}).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.web.resource import Resource

from ..support.apps import RecordingFactory
from ..support.clients import connect  # noqa: F401  (fixture)
from ..support.peers import autobahn, serve_autobahn, serve_websockets  # noqa: F401  (fixtures)
from ..support.rawsocket import raw  # noqa: F401  (fixture)
from ..support.servers import LoopbackServer, TrackingSite, site_for


@pytest_twisted.async_yield_fixture
async def serve() -> Any:
    """
    A function starting a server: C{serve(resource_or_site, tlsOptions=None)}
    mounts a resource at C{/echo} (or serves a ready L{TrackingSite}) on
    127.0.0.1, port 0 (C{startTLS=True}: TLS by C{startTLS}, see
    L{LoopbackServer.listen}), and returns a L{LoopbackServer}. Every server is
    stopped, and its connections closed, at teardown.
    """
    servers: list[LoopbackServer] = []

    def start(thing: Resource | TrackingSite, tlsOptions: Any = None, *, startTLS: bool = False) -> LoopbackServer:
        site = thing if isinstance(thing, TrackingSite) else site_for(thing)
        server = LoopbackServer.listen(site, tlsOptions, startTLS=startTLS)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def recorder() -> RecordingFactory:
    """
    A fresh L{RecordingFactory}.
    """
    return RecordingFactory(echo=True)

"""
Fixtures for the RFC 8441 suite: a L{WebSocketSite} built with
C{http2=True}, served over TLS (the test CA) on 127.0.0.1, with a recording
echo at C{/echo}, a static resource at C{/static}, and whatever else a test
mounts; and raw HTTP/2 peers (L{tests.http2.peer.H2Peer}) closed at teardown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.static import Data

from txpulse import WebSocketSite
from txpulse.server.resource import WebSocketResource

from ..support.apps import RecordingFactory
from ..support.pki import PKI, make_pki
from ..support.servers import ConnectionTracking, LoopbackServer
from .peer import H2Peer

# PrivateCertificate.options() hands pyOpenSSL objects to pyOpenSSL, which
# now warns about it; that is Twisted's business, not this suite's.
pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")


class TrackingWebSocketSite(ConnectionTracking, WebSocketSite):
    """
    A L{WebSocketSite} remembering its connections (dropped at teardown).
    """


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    """
    A CA and a server certificate for C{localhost} and C{127.0.0.1}.
    """
    return make_pki(tmp_path, dnsNames=["localhost"])


@pytest.fixture
def recorder() -> RecordingFactory:
    """
    A fresh recording echo factory.
    """
    return RecordingFactory(echo=True)


@pytest_twisted.async_yield_fixture
async def serve(pki: PKI, recorder: RecordingFactory) -> Any:
    """
    C{serve(mounts, http2WebSockets=True, **siteOptions)} starts a
    L{WebSocketSite}(C{http2=True}) over TLS whose root has C{/echo} (a
    L{WebSocketResource} of C{recorder}, no keepalive), C{/static} (a few
    bytes of text) and the given C{mounts}; returns the L{LoopbackServer}.
    """
    servers: list[LoopbackServer] = []

    def start(
        mounts: dict[str, Resource] | None = None,
        *,
        http2WebSockets: bool = True,
        **options: Any,
    ) -> LoopbackServer:
        root = Resource()
        root.putChild(b"echo", WebSocketResource(recorder, pingInterval=None))
        root.putChild(b"static", Data(b"static over h2\n", "text/plain"))
        for path, resource in (mounts or {}).items():
            root.putChild(path.encode(), resource)
        site = TrackingWebSocketSite(root, http2=True, **options)
        site.http2WebSockets = http2WebSockets
        server = LoopbackServer.listen(site, pki.serverOptions)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def peers(pki: PKI) -> Any:
    """
    C{await peers(server)} opens an L{H2Peer} to C{server} (in a worker
    thread: the TLS handshake blocks), closed at teardown.
    """
    opened: list[H2Peer] = []

    def open_peer(server: LoopbackServer, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> Deferred[H2Peer]:
        def keep(peer: H2Peer) -> H2Peer:
            opened.append(peer)
            return peer

        return H2Peer.call(H2Peer, server.port, str(pki.caFile), alpn).addCallback(keep)

    yield open_peer
    for peer in opened:
        peer.close()

"""
txpulse served for real: a C{twisted.web} site listening on 127.0.0.1 (plain
TCP or TLS) whose every connection is dropped, and waited for, at teardown
(the application to mount on it: L{tests.support.apps.RecordingFactory}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from .waits import within


class TrackedConnection:
    """
    One server-side connection of a L{ConnectionTracking} site, whatever
    protocol class the site builds.

    @ivar lost: fires once the connection is gone (after txpulse's
        C{takeOver}, which wraps the channel's C{connectionLost} and calls
        the original, i.e. the one wrapped here, after the WebSocket's).
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.lost: Deferred[None] = Deferred()
        original = protocol.connectionLost

        def connectionLost(reason: Failure) -> None:
            try:
                original(reason)
            finally:
                if not self.lost.called:
                    self.lost.callback(None)

        protocol.connectionLost = connectionLost

    @property
    def transport(self) -> Any:
        """
        The connection's TCP (or TLS) transport, also once txpulse took over.
        """
        return getattr(self.protocol, "_channel", self.protocol).transport


class ConnectionTracking:
    """
    A mixin for L{Site} classes remembering every connection they build, so
    a test (or teardown) can drop them all and wait until each is gone.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels: list[TrackedConnection] = []

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)  # type: ignore[misc]
        self.channels.append(TrackedConnection(protocol))
        return protocol

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


class TrackingSite(ConnectionTracking, Site):
    """
    A plain C{twisted.web} L{Site} remembering its connections.
    """


def site_for(resource: Resource, path: bytes = b"echo") -> TrackingSite:
    """
    A L{TrackingSite} with C{resource} mounted at C{/<path>}.
    """
    root = Resource()
    root.putChild(path, resource)
    return TrackingSite(root)


@dataclass
class LoopbackServer:
    """
    A L{ConnectionTracking} site listening on 127.0.0.1.

    @ivar port: the TCP port.
    @ivar tls: whether the port speaks TLS.
    """

    port: int
    site: Any
    listening: Any
    tls: bool = False
    stopped: bool = False

    @classmethod
    def listen(
        cls, site: ConnectionTracking, tlsOptions: Any = None, port: int = 0, *, startTLS: bool = False, **fields: Any
    ) -> Self:
        """
        Listen with C{site} on 127.0.0.1 (TLS with C{tlsOptions}, if given).

        @param startTLS: serve TLS the other way Twisted can: a plain TCP
            connection on which C{startTLS} is called (what
            L{twisted.internet.ssl.Port} does), instead of C{listenSSL}'s
            TLS wrapper protocol.
        """
        if tlsOptions is None:
            listening = reactor.listenTCP(port, site, interface="127.0.0.1")
        elif startTLS:
            listening = ssl.Port(port, site, tlsOptions, interface="127.0.0.1", reactor=reactor)
            listening.startListening()
        else:
            listening = reactor.listenSSL(port, site, tlsOptions, interface="127.0.0.1")
        return cls(listening.getHost().port, site, listening, tls=tlsOptions is not None, **fields)

    def url(self, path: str = "/echo", host: str = "127.0.0.1") -> str:
        """
        The C{ws://} (or C{wss://}) URL of C{path} on this server.
        """
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{host}:{self.port}{path}"

    async def stop(self) -> None:
        """
        Stop listening (once), then drop every server-side connection a test
        left open and wait until each is gone.
        """
        if not self.stopped:
            self.stopped = True
            await self.listening.stopListening()
        await self.site.drop_connections()

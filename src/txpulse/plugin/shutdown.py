# -*- test-case-name: tests.plugin.test_tap -*-
"""
Graceful shutdown for C{twistd txpulse}: when the service stops, every open
WebSocket is closed with 1001 ("going away") and given time to finish; then
every HTTP/2 connection gets a GOAWAY (its WebSocket streams were closed
with 1001 like the others).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred

from ..wire.twistedinternals import clearExitSignal, maybeGlobalReactor
from .metrics import ConnectionRegistry

__all__ = ["GracefulShutdown"]


class GracefulShutdown(service.Service):
    """
    On stop, closes every open WebSocket with 1001 ("going away") and waits
    up to C{timeout} seconds for the close handshakes.
    """

    def __init__(
        self, registry: ConnectionRegistry, timeout: float, reactor: Any = None, sites: Iterable[Any] = ()
    ) -> None:
        """
        @param sites: the L{txpulse.WebSocketSite}s whose HTTP/2
            connections get a GOAWAY once the WebSockets are closed.
        """
        self._registry = registry
        self._timeout = timeout
        self._reactor = reactor
        self._sites = list(sites)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._registry.closeAll(1001, "server shutting down", self._timeout).addCallback(self._drained)

    def _drained(self, _: None) -> None:
        for site in self._sites:
            site.goAway()
        # twistd re-raises the signal that stopped it (so its exit status says
        # "killed by SIGTERM"); a completed graceful shutdown is a normal
        # exit, so clear it (the reactor's _ISupportsExitSignalCapturing).
        clearExitSignal(maybeGlobalReactor(self._reactor))

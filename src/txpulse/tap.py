# -*- test-case-name: tests.test_tap -*-
"""
C{twistd txpulse}: the WebSocket demos and a static site in one resource tree.

Mounts C{/} (the static site shipped in C{txpulse/static}), C{/ws} (the
heartbeat demo) and C{/echo} (an echo service), and listens on every
C{--listen} endpoint (default C{tcp:8080}).
"""

from __future__ import annotations

from importlib.resources import files

from twisted.application import service, strports
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from .apps import EchoFactory, HeartbeatFactory
from .resource import WebSocketResource

__all__ = ["Options", "makeService", "buildRoot"]


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise usage.UsageError(f"not a number: {value!r}") from None
    if number <= 0:
        raise usage.UsageError(f"must be positive: {value!r}")
    return number


class Options(usage.Options):
    """
    Command-line options for C{twistd txpulse}.
    """

    optParameters = [
        ["heartbeat", None, 1.0, "Seconds between the /ws demo's heartbeat messages.", _positive],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """
        Listen on this Twisted endpoint string (repeatable; default tcp:8080),
        e.g. tcp:8080, ssl:8443:privateKey=key.pem:certKey=cert.pem.
        """
        self["listen"].append(endpoint)

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]


def buildRoot(options: Options) -> Resource:
    """
    Build the resource tree the plugin serves.
    """
    root = File(str(files("txpulse") / "static"))
    root.putChild(b"ws", WebSocketResource(HeartbeatFactory(options["heartbeat"])))
    root.putChild(b"echo", WebSocketResource(EchoFactory()))
    return root


def makeService(options: Options) -> service.MultiService:
    """
    One listening service per C{--listen} endpoint, all serving one site.
    """
    site = Site(buildRoot(options))
    top = service.MultiService()
    for description in options["listen"]:
        strports.service(description, site).setServiceParent(top)
    return top

"""
The WebSocket server of Twisted's WebSocket how-to, running on txpulse.

Serve this directory with::

    twist web --listen tcp:8080 --path examples

and this script answers WebSocket upgrades at C{/websocket-server.rpy}: it
sends C{heartbeat N} once a second (N counts from 1; the first goes out as
soon as the connection opens) and answers a text message C{X} with
C{reply to X}.

Apart from a docstring, comments and one guard in C{connectionLost}, this is
Twisted's C{docs/web/examples/websocket/websocket-server.rpy} with one line
changed: C{WebSocketResource} comes from C{txpulse} instead of
C{twisted.web.websocket}. The protocol class is written against Twisted's
API only (its types are still Twisted's C{WebSocketTransport}), which is the
point: code written for C{twisted.web.websocket} runs on txpulse unchanged.

C{twisted.web.script.ResourceScript} executes this file (by default once per
request) and serves the module-level C{resource}.
"""

from __future__ import annotations

from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.websocket import WebSocketTransport

# The one changed line (Twisted's reads
# "from twisted.web.websocket import WebSocketResource, WebSocketTransport").
from txpulse import WebSocketResource


class WebSocketDemo:
    loop: LoopingCall | None = None

    # A classmethod: the class itself is the factory that
    # WebSocketResource(factory) wants (factory.buildProtocol(request)).
    @classmethod
    def buildProtocol(cls, request: IRequest) -> WebSocketDemo:
        return cls()

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        self.counter = 0

    def negotiationFinished(self) -> None:
        def heartbeat() -> None:
            self.counter += 1
            self.transport.sendTextMessage(f"heartbeat {self.counter}")

        self.loop = LoopingCall(heartbeat)
        # now=True (the default): "heartbeat 1" goes out at once, then one
        # more every second.
        self.loop.start(1.0)

    def textMessageReceived(self, data: str) -> None:
        self.transport.sendTextMessage(f"reply to {data}")

    def connectionLost(self, reason: Failure) -> None:
        # Twisted's version calls stop() unconditionally; checking `running`
        # also covers a loop that already stopped (LoopingCall.stop() on a
        # stopped loop raises).
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    # Since WebSocketProtocol is a typing.Protocol and not a class, we must
    # provide implementations for all events, even those we don't care about.
    def bytesMessageReceived(self, data: bytes) -> None: ...
    def pongReceived(self, payload: bytes) -> None: ...


resource = WebSocketResource(WebSocketDemo)

"""
A small WebSocket protocol to show how to test one with L{txpulse.testing}
(see C{test_countdown.py} next to it).

A client sends C{count N} (1 <= N <= 60); the server answers C{N}, then
C{N-1} every second, down to C{liftoff!}, and closes with 1000. Anything
else gets C{error: ...} and the connection stays open; a binary message
closes it with 1003 ("unsupported data").

Serve it with::

    from twisted.web.resource import Resource
    from txpulse import WebSocketResource, WebSocketSite

    root = Resource()
    root.putChild(b"countdown", WebSocketResource(CountdownFactory()))
    site = WebSocketSite(root)

The protocol takes its clock from the factory (the reactor by default):
time is a dependency, which is what lets a test move it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from txpulse import CloseCode


class Countdown:
    """
    One client's countdown.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.transport: Any = None
        self.loop: LoopingCall | None = None
        self.remaining = 0

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        command, _, argument = message.partition(" ")
        if command != "count" or not argument.isdigit() or not 1 <= int(argument) <= 60:
            self.transport.sendTextMessage("error: send 'count N', 1 <= N <= 60")
            return
        if self.loop is not None:
            self.transport.sendTextMessage("error: already counting")
            return
        self.remaining = int(argument)
        self.loop = LoopingCall(self._tick)
        self.loop.clock = self.clock
        self.loop.start(1.0)  # the first number goes out at once

    def _tick(self) -> None:
        if self.remaining:
            self.transport.sendTextMessage(str(self.remaining))
            self.remaining -= 1
            return
        self.transport.sendTextMessage("liftoff!")
        self._stop()
        self.transport.loseConnection(CloseCode.NORMAL_CLOSURE)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.loseConnection(CloseCode.UNSUPPORTED_DATA, "text only")

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class CountdownFactory:
    """
    Builds a L{Countdown} per connection.
    """

    def __init__(self, clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.clock: IReactorTime = clock

    def buildProtocol(self, request: object) -> Countdown:
        return Countdown(self.clock)

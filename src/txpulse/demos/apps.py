# -*- test-case-name: tests.plugin.test_tap,tests.wire.test_protocol -*-
"""
The built-in demo applications: the heartbeat demo mounted at C{/ws} and the
echo service mounted at C{/echo}. Each is a factory with
C{buildProtocol(request)}, written against Twisted's WebSocket API only, so
they also serve as examples of that API.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ..wire.twistedinternals import maybeGlobalReactor

__all__ = ["HeartbeatFactory", "Heartbeat", "EchoFactory", "Echo"]


class Heartbeat:
    """
    Sends C{heartbeat N} every C{interval} seconds (N counts from 1) and
    answers a text message C{X} with C{reply to X}.
    """

    def __init__(self, clock: IReactorTime, interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._count = 0
        self._loop: LoopingCall | None = None
        self.transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self._loop = LoopingCall(self._beat)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=False)

    def _beat(self) -> None:
        self._count += 1
        self.transport.sendTextMessage(f"heartbeat {self._count}")

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(f"reply to {message}")

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None


class HeartbeatFactory:
    """
    Builds a L{Heartbeat} per connection.

    @param interval: seconds between heartbeats.
    @param clock: the timer source (default: the reactor).
    """

    def __init__(self, interval: float = 1.0, clock: IReactorTime | None = None) -> None:
        if interval <= 0:
            raise ValueError("heartbeat interval must be positive")
        self._interval = interval
        self._clock = clock

    def buildProtocol(self, request: object) -> Heartbeat:
        self._clock = maybeGlobalReactor(self._clock)
        return Heartbeat(self._clock, self._interval)


class Echo:
    """
    Echoes each message back: text as text, bytes as bytes.
    """

    transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        pass


class EchoFactory:
    """
    Builds an L{Echo} per connection.
    """

    def buildProtocol(self, request: object) -> Echo:
        return Echo()

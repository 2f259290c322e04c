"""
The recording application: one application protocol (Twisted's
C{WebSocketProtocol} methods) that records everything it is told, for the
in-memory tests and the loopback suites alike, server side or client side;
and its factory.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from txpulse import ConnectionClosed

from .waits import WAIT, within


class RecordingApp:
    """
    An application protocol that records what happens to it; optionally an
    echo.

    With C{echo}, every message is sent back as it came, and text
    C{"boom"} raises from C{textMessageReceived} instead (to exercise 1011).
    With a C{delay} as well, text messages are handled by an C{async def}
    that answers (or raises) C{delay} seconds later, so the wire holds
    further input until it is done (README: "Application slower than the
    peer").

    @ivar request: what C{buildProtocol} was called with (the upgrade
        request on a server, the URL on a client).
    @ivar events: every call, in order: C{("started", None)},
        C{("finished", None)}, C{("text", str)}, C{("bytes", bytes)},
        C{("pong", bytes)}.
    @ivar messages: every message received (C{str} or C{bytes}), in order.
    @ivar inbox: the same messages, as a queue to wait on (L{next}).
    @ivar pongs: a queue of pong payloads received.
    @ivar opened: fires with this app once C{negotiationFinished} ran.
    @ivar lost: fires (with C{None}) once C{connectionLost} ran.
    @ivar reason: the L{Failure} given to C{connectionLost}.
    """

    def __init__(self, request: Any = None, *, echo: bool = False, delay: float | None = None) -> None:
        self.request = request
        self.echo = echo
        self.delay = delay
        self.transport: Any = None
        self.events: list[tuple[str, Any]] = []
        self.messages: list[str | bytes] = []
        self.inbox: DeferredQueue[str | bytes] = DeferredQueue()
        self.pongs: DeferredQueue[bytes] = DeferredQueue()
        self.opened: Deferred[RecordingApp] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport
        self.events.append(("started", None))

    def negotiationFinished(self) -> None:
        self.events.append(("finished", None))
        if not self.opened.called:
            self.opened.callback(self)

    def _received(self, kind: str, message: str | bytes) -> None:
        self.events.append((kind, message))
        self.messages.append(message)
        self.inbox.put(message)

    def textMessageReceived(self, message: str) -> Any:
        self._received("text", message)
        if not self.echo:
            return None
        if self.delay is not None:
            return self._slowly(message, self.delay)
        self._answer(message)
        return None

    async def _slowly(self, message: str, delay: float) -> None:
        await deferLater(reactor, delay)
        self._answer(message)

    def _answer(self, message: str) -> None:
        if message == "boom":
            raise RuntimeError("the application failed on purpose")
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self._received("bytes", data)
        if self.echo:
            self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        self.events.append(("pong", payload))
        self.pongs.put(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        if not self.lost.called:
            self.lost.callback(None)

    def messageEvents(self) -> list[tuple[str, Any]]:
        """
        The C{("text", ...)} and C{("bytes", ...)} entries of L{events}.
        """
        return [e for e in self.events if e[0] in ("text", "bytes")]

    async def next(self, seconds: float = WAIT) -> str | bytes:
        """
        The next message received (bounded wait).
        """
        return await within(self.inbox.get(), seconds)

    async def lostReason(self, seconds: float = WAIT) -> Failure:
        """
        The L{Failure} given to C{connectionLost}, once it ran (bounded wait).
        """
        await within(self.lost, seconds)
        assert self.reason is not None
        return self.reason

    async def closed(self, seconds: float = WAIT) -> ConnectionClosed:
        """
        The L{ConnectionClosed} given to C{connectionLost}, once it ran.
        """
        reason = await self.lostReason(seconds)
        assert isinstance(reason.value, ConnectionClosed), reason
        return reason.value


class RecordingFactory:
    """
    Builds a L{RecordingApp} per connection (server or client side) and
    queues it in C{connections} once it opened.

    @param echo: passed to each L{RecordingApp}.
    @param delay: likewise.
    @ivar built: every app built, in order.
    """

    def __init__(self, *, echo: bool = False, delay: float | None = None) -> None:
        self.echo = echo
        self.delay = delay
        self.connections: DeferredQueue[RecordingApp] = DeferredQueue()
        self.built: list[RecordingApp] = []

    def buildProtocol(self, request: Any) -> RecordingApp:
        app = RecordingApp(request, echo=self.echo, delay=self.delay)
        self.built.append(app)
        app.opened.addCallback(self.connections.put)
        return app

    async def next(self, seconds: float = WAIT) -> RecordingApp:
        """
        The next connection that opened (bounded wait).
        """
        return await within(self.connections.get(), seconds)

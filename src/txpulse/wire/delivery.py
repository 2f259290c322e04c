# -*- test-case-name: tests.wire.test_protocol -*-
"""
L{Delivery}: how the events a read produced reach the application's
protocol (C{textMessageReceived}, C{bytesMessageReceived},
C{pongReceived}, and C{pingReceived} if it has one), for
L{txpulse.wire.protocol.WebSocketWire}.

An application callback may return an awaitable (a L{Deferred}, a
coroutine): the events after it are held back, and reading from the peer
paused, until it is done, so the application sees messages one at a time
and in order, and a slow consumer holds its peer back instead of piling
messages up. An application callback that raises closes the connection
with 1011 and no reason (the traceback is logged, not sent).

Apart from the rest of the wire because this is where the wire meets the
application's code: what it may return, and what happens when it fails.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.connection import Close, Pong
from ..core.frames import CloseCode
from .backpressure import HOLD_APPLICATION
from .state import WireState

__all__ = ["Delivery"]

_log = Logger(namespace="txpulse.wire.protocol")


class Delivery(WireState):
    """
    Hands a L{txpulse.wire.protocol.WebSocketWire}'s received events to its
    application, one at a time, waiting on the awaitables it returns.
    """

    __slots__ = ()

    def _deliver(self, events: list[Any]) -> None:
        app = self._app
        self._dispatching = True
        try:
            for index, event in enumerate(events):
                kind = type(event)
                result: object = None
                try:
                    if kind is str:
                        self._lastMessage = self._lastReceived
                        self.messagesIn += 1
                        result = app.textMessageReceived(event)
                    elif kind is bytes:
                        self._lastMessage = self._lastReceived
                        self.messagesIn += 1
                        result = app.bytesMessageReceived(event)
                    elif kind is Pong:
                        self._pongReceived()
                        app.pongReceived(event.payload)
                    elif kind is Close:
                        self._startClosing()
                    else:
                        pingReceived = getattr(app, "pingReceived", None)
                        if pingReceived is not None:
                            pingReceived(event.payload)
                except Exception:
                    self._applicationFailed(Failure())
                    return
                if result is not None and (isinstance(result, Deferred) or inspect.isawaitable(result)):
                    if self._waitFor(result, events[index + 1 :]):
                        return
        finally:
            self._dispatching = False

    def _waitFor(self, result: Awaitable[object], rest: list[Any]) -> bool:
        """
        The application returned an awaitable: stop reading until it is done.

        @return: whether delivery must stop here (the awaitable is pending).
        """
        d: Deferred[object] = result if isinstance(result, Deferred) else ensureDeferred(result)  # type: ignore[arg-type]
        fired: list[bool] = []

        def noteFired(value: object) -> object:
            fired.append(True)
            return value

        d.addBoth(noteFired)
        if fired:
            d.addErrback(self._applicationFailed)
            return False
        self._pending = list(rest)
        # Answers to the messages held back must go out before the echo of
        # a close that arrived with them.
        self._conn.hold_close_reply = True
        self._pauseReading(HOLD_APPLICATION)
        d.addCallbacks(self._resumeDelivery, self._applicationFailed)
        return True

    def _resumeDelivery(self, _: object) -> None:
        pending = self._pending
        self._pending = None
        self._conn.hold_close_reply = False
        if not self._connected:
            return
        self._resumeReading(HOLD_APPLICATION)
        if pending:
            self._deliver(pending)
        self._flush()

    def _applicationFailed(self, failure: Failure) -> None:
        """
        An application callback raised: log the traceback, close with 1011
        and no reason (internal details stay internal).
        """
        _log.failure("Application error handling a WebSocket message", failure)
        self._pending = None
        self._conn.hold_close_reply = False
        self._conn.fail(CloseCode.INTERNAL_ERROR)
        if not self._dispatching:
            self._flush()

# -*- test-case-name: tests.client.test_reconnect -*-
"""
L{ReconnectingWebSocketService}: one WebSocket connection kept alive across
server restarts, built on Twisted's L{ClientService} and L{backoffPolicy}.

L{ClientService} retries whatever its endpoint's C{connect} fails with and
watches the protocols its factory builds. So the service gives it an
endpoint (L{_WebSocketStreamEndpoint}) whose C{connect} succeeds only once
the WebSocket handshake did: a refused or broken handshake is an ordinary
failed attempt (retried with backoff), and the protocol L{ClientService}
watches exists only for an open WebSocket. Its C{transport.loseConnection}
starts the WebSocket closing handshake (code 1000), so stopping the service
closes cleanly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocolFactory, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..wire.twistedinternals import unwrapClientServiceProtocol
from .endpoint import WebSocketClientEndpoint, WebSocketClientFactory, _ClientHandshake

__all__ = ["ReconnectingWebSocketService"]

_log = Logger()


class _CloseOnLose:
    """
    The transport L{ClientService} sees: losing it closes the WebSocket with
    1000 (and waits for the handshake) instead of cutting TCP.
    """

    def __init__(self, handshake: _ClientHandshake) -> None:
        self._handshake = handshake

    def loseConnection(self) -> None:
        wire = self._handshake.wire
        if wire is not None:
            wire.loseConnection(1000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handshake.transport, name)


class _OpenWebSocket:
    """
    What L{ClientService} tracks for one open WebSocket.

    @ivar app: the application protocol.
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.transport: Any = None
        self.closed = False
        self._lostWaiters: list[Deferred[None]] = []

    def whenLost(self) -> Deferred[None]:
        """
        Fires once this WebSocket's connection is gone.
        """
        if self.closed:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._lostWaiters.append(d)
        return d

    def lost(self) -> None:
        self.app = None
        self.closed = True
        waiters, self._lostWaiters = self._lostWaiters, []
        for d in waiters:
            d.callback(None)

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport

    def connectionLost(self, reason: Failure) -> None:
        self.app = None


class _OpenWebSocketFactory:
    def buildProtocol(self, addr: object) -> _OpenWebSocket:
        return _OpenWebSocket()

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass


@implementer(IStreamClientEndpoint)
class _WebSocketStreamEndpoint:
    """
    An endpoint whose C{connect} fires once the WebSocket is open (see the
    module docstring); cancelling it drops the attempt.
    """

    def __init__(
        self,
        endpoint: WebSocketClientEndpoint,
        factory: WebSocketClientFactory[Any],
        noteFailure: Callable[[Failure], None],
    ) -> None:
        self._endpoint = endpoint
        self._factory = factory
        self._noteFailure = noteFailure

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        async def connectAndHandshake() -> Any:
            endpoint = self._endpoint
            handshake: _ClientHandshake = await endpoint.tcpEndpoint.connect(endpoint.protocolFactory(self._factory))  # type: ignore[assignment]
            app = await handshake.whenOpened()
            tracked: Any = protocolFactory.buildProtocol(handshake.transport.getPeer())  # type: ignore[union-attr]
            tracked.makeConnection(_CloseOnLose(handshake))
            opened: _OpenWebSocket = unwrapClientServiceProtocol(tracked)
            opened.app = app

            def forget(reason: Failure) -> None:
                # Forget the protocol before the application hears of the
                # loss, so `service.protocol` is already None by then.
                opened.app = None

            def lost(reason: Failure) -> None:
                self._noteFailure(reason)
                opened.lost()
                tracked.connectionLost(reason)

            handshake.notifyLost(forget, lost)
            return tracked

        def failed(reason: Failure) -> Failure:
            self._noteFailure(reason)
            return reason

        return Deferred.fromCoroutine(connectAndHandshake()).addErrback(failed)


class ReconnectingWebSocketService(Service):
    """
    Keeps one WebSocket connection open, reconnecting with exponential
    backoff and jitter whenever it drops, a connection attempt fails or a
    handshake is refused.

    Stopping the service closes the current connection with 1000 and stops
    retrying (an attempt in progress is dropped).

    @ivar protocol: the current application protocol, or C{None} while
        disconnected.
    """

    def __init__(
        self,
        endpoint: WebSocketClientEndpoint,
        factory: WebSocketClientFactory[Any],
        *,
        retryPolicy: Callable[[int], float] | None = None,
        clock: IReactorTime | None = None,
        prepareConnection: Callable[[Any], object] | None = None,
        onRetry: Callable[[int, Failure, float], object] | None = None,
    ) -> None:
        """
        @param endpoint: where to connect.
        @param factory: builds the application protocol for each connection.
        @param retryPolicy: seconds to wait before attempt N (default:
            C{backoffPolicy()}, 1 s doubling to 60 s, with jitter).
        @param clock: for the retry delays (default: the endpoint's reactor).
        @param prepareConnection: called with each new application protocol
            once its WebSocket is open.
        @param onRetry: called each time the service schedules another
            attempt, with the number of consecutive failed attempts (1 after
            a connection that was open is lost), the reason (the failed
            attempt's failure, or the lost connection's) and the delay in
            seconds before the next attempt, as C{retryPolicy} chose it:
            one call per retry, e.g. for a status line. It must not stop the
            service synchronously; what it raises is logged and ignored.
        """
        super().__init__()
        self.endpoint = endpoint
        self._prepare = prepareConnection
        self._onRetry = onRetry
        self._policy = retryPolicy if retryPolicy is not None else backoffPolicy()
        self._lastFailure: Failure | None = None
        self._current: _OpenWebSocket | None = None
        self._waiting: list[Deferred[Any]] = []
        self._client = ClientService(
            _WebSocketStreamEndpoint(endpoint, factory, self._noteFailure),
            _OpenWebSocketFactory(),  # type: ignore[arg-type]
            retryPolicy=self._retryDelay,
            clock=clock if clock is not None else endpoint.clock,
            prepareConnection=self._opened,
        )

    @property
    def protocol(self) -> Any:
        """
        The current application protocol, or C{None}.
        """
        return None if self._current is None else self._current.app

    def _noteFailure(self, reason: Failure) -> None:
        self._lastFailure = reason

    def _retryDelay(self, attempt: int) -> float:
        # ClientService asks for the delay once per retry, after the failed
        # attempt or the lost connection was noted by _noteFailure.
        delay = self._policy(attempt)
        if self._onRetry is not None:
            reason = self._lastFailure if self._lastFailure is not None else Failure(ConnectionDone())
            try:
                self._onRetry(attempt, reason, delay)
            except Exception:
                _log.failure("onRetry hook failed")
        return delay

    def _opened(self, tracked: Any) -> object:
        # ClientService's prepareConnection: runs as a callback of the
        # connection attempt, not inside ClientService's state machine, so
        # the waiters fired here may call back into the service (e.g. stop
        # it) safely; ClientService's own whenConnected fires mid-transition.
        opened: _OpenWebSocket = unwrapClientServiceProtocol(tracked)
        self._current = opened
        result = None if self._prepare is None else self._prepare(opened.app)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(opened.app)
        return result

    def whenConnected(self) -> Deferred[Any]:
        """
        A Deferred that fires with the application protocol as soon as a
        WebSocket is open (at once if one is).
        """
        if self.protocol is not None:
            return succeed(self.protocol)
        d: Deferred[Any] = Deferred()
        self._waiting.append(d)
        return d

    def startService(self) -> None:
        super().startService()
        self._client.startService()

    def stopService(self) -> Deferred[None]:
        """
        Close the current connection with 1000 (waiting for the closing
        handshake) and stop retrying.
        """
        super().stopService()
        stopping = self._client.stopService()
        current = self._current
        if current is None or current.closed:
            return stopping
        # A connection may have opened while ClientService still counted it
        # as an attempt (our waiters fire from prepareConnection): close it
        # ourselves and wait for it, whatever ClientService's state.
        wire = getattr(current.app, "transport", None)
        if wire is not None:
            wire.loseConnection(1000)
        return gatherResults([stopping, current.whenLost()]).addCallback(lambda _: None)

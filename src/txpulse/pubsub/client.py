# -*- test-case-name: tests.pubsub.test_client -*-
"""
L{PubSubClient}: a client of a txpulse pub/sub hub (the C{/pubsub} mount)
that stays connected and subscribed, and resumes where it left off after
every reconnection: the application sees each publication once, in order,
and is told when that cannot be (the history it would need is gone).

Theory of operation. Each subscription keeps the last position it
delivered (C{offset} within C{epoch}; L{Position}). Per connection, a
subscription is I{waiting} (its subscribe was sent, the server's
C{{"subscribed"}} answer has not arrived) or I{live}:

  - On every open connection each subscription is sent again, with
    C{"since": {"offset": N, "epoch": E}} once a position is known, and
    waits.
  - The answer decides where delivery continues. To a plain subscribe:
    from the answer's position (C{TOP}: what follows is newer). To a
    C{since}: with C{"recovered": true} from N (the server replays
    N+1 ... TOP, then the live ones); otherwise (C{false}, absent, or a
    server without positions) from C{TOP}, and the application is told
    once (C{onRecoveryFailed}) that it missed publications and must reload
    its state.
  - A live subscription delivers a publication of its epoch only if its
    offset is the next one: one at or below the last delivered is a
    duplicate (dropped: the seam between a replay and what the client had
    already seen); one further on means a gap, which the client heals by
    subscribing again from its last position (the server starts that
    subscription over: answer, replay, live) and dropping what arrives
    before the answer. A publication of another epoch (the topic's history
    was lost while connected, e.g. a Redis restart without its data) is
    delivered after telling the application, and the position moves to it.
  - While a connection has ever answered a subscribe, deliveries for a
    waiting subscription belong to the subscription the server is
    replacing and are dropped (they come again in the replay). A server
    that never answers (the first version of the protocol, without
    positions) has its deliveries passed on as they come, without
    positions and without de-duplication: the client then behaves as a
    plain subscriber.

What this does not cover: publishing. The protocol has no acknowledgement
for a publish, so a publication sent just before the connection dropped
may be lost; L{PubSubClient.publish} refuses (L{NotConnected}) while there
is no open connection rather than queue, so the caller knows what was not
sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..client.endpoint import WebSocketClientEndpoint
from ..client.service import ReconnectingWebSocketService
from .history import Position

__all__ = ["PubSubClient", "NotConnected", "Delivered", "RecoveryFailed"]

_log = Logger()

#: C{callback(data, position)}: one publication of the subscribed topic, with
#: its L{Position} (C{None} from a server without positions).
Delivered = Callable[[Any, "Position | None"], object]

#: C{onRecoveryFailed(topic, position)}: publications of C{topic} were missed
#: and cannot be replayed; delivery continues after C{position} (C{None}
#: from a server without positions). The application reloads its state.
RecoveryFailed = Callable[[str, "Position | None"], object]


class NotConnected(Exception):
    """
    L{PubSubClient.publish} was called while the client had no open
    connection: the publication was not sent.
    """


def _position(message: dict[str, Any]) -> Position | None:
    """
    The C{offset} and C{epoch} of a server message, or C{None} if it has
    no valid pair (a server without positions).
    """
    offset, epoch = message.get("offset"), message.get("epoch")
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 and isinstance(epoch, str) and epoch:
        return Position(offset, epoch)
    return None


@dataclass(slots=True)
class _Subscription:
    """
    One topic the application subscribed to.

    @ivar position: the last position delivered (or answered), C{None}
        until one is known.
    @ivar waiting: the subscribe of the current connection was sent and
        not answered yet.
    @ivar asked: the C{since} of that subscribe (C{None}: none).
    """

    topic: str
    callback: Delivered
    onRecoveryFailed: RecoveryFailed | None
    position: Position | None
    waiting: bool = False
    asked: Position | None = None


class _PubSubConnection:
    """
    The application protocol of one connection: hands each server message
    to its L{PubSubClient}.
    """

    def __init__(self, client: PubSubClient) -> None:
        self._client = client
        self.transport: Any = None
        #: Whether the server answered a subscribe on this connection (it
        #: then answers every subscribe before delivering; see the module
        #: docstring).
        self.answers = False

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self._client._opened(self)

    def textMessageReceived(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            _log.warn("Ignored a message that is not JSON from the pub/sub server: {text!r}", text=text[:200])
            return
        if isinstance(message, dict):
            self._client._received(self, message)

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self._client._lost(self)


class _ConnectionFactory:
    def __init__(self, client: PubSubClient) -> None:
        self._client = client

    def buildProtocol(self, url: str) -> _PubSubConnection:
        return _PubSubConnection(self._client)


class PubSubClient(Service):
    """
    A pub/sub client that resumes by itself (see the module docstring),
    as a Twisted service: C{startService} connects (and reconnects with
    backoff, as L{ReconnectingWebSocketService} does), C{stopService}
    closes with 1000.

    Example::

        client = PubSubClient(WebSocketClientEndpoint.new(reactor, "ws://host:8080/pubsub"),
                              onRecoveryFailed=lambda topic, position: reload(topic))
        client.subscribe("prices", lambda data, position: show(data))
        client.startService()
        await client.whenConnected()
        client.publish("prices", {"EUR": 1.08})

    Callbacks run in the reactor thread, in the order of the server's
    messages; what they raise is logged and does not disturb the client.
    They may subscribe, unsubscribe and publish.

    @ivar service: the underlying L{ReconnectingWebSocketService}.
    """

    def __init__(
        self,
        endpoint: WebSocketClientEndpoint,
        *,
        onRecoveryFailed: RecoveryFailed | None = None,
        onError: Callable[[str], object] | None = None,
        retryPolicy: Callable[[int], float] | None = None,
        clock: IReactorTime | None = None,
        onRetry: Callable[[int, Failure, float], object] | None = None,
    ) -> None:
        """
        @param endpoint: where the hub is (its C{/pubsub} mount, or any
            mount of a L{txpulse.pubsub.PubSubFactory}).
        @param onRecoveryFailed: called as C{onRecoveryFailed(topic,
            position)} for a subscription without its own, when it missed
            publications that cannot be replayed (see L{subscribe}).
        @param onError: called with the text of each C{{"error"}} reply
            (a refused subscribe or publish; the reply does not say which);
            default: logged as a warning.
        @param retryPolicy: seconds to wait before reconnection attempt N
            (default: L{ReconnectingWebSocketService}'s).
        @param clock: for the retry delays (default: the endpoint's reactor).
        @param onRetry: see L{ReconnectingWebSocketService}.
        """
        super().__init__()
        self._onRecoveryFailed = onRecoveryFailed
        self._onError = onError
        self._subscriptions: dict[str, _Subscription] = {}
        self._connection: _PubSubConnection | None = None
        self._waiting: list[Deferred[None]] = []
        self.service = ReconnectingWebSocketService(
            endpoint, _ConnectionFactory(self), retryPolicy=retryPolicy, clock=clock, onRetry=onRetry
        )

    # -- the application's side ---------------------------------------------

    @property
    def connected(self) -> bool:
        """
        Whether a connection is open (L{publish} works).
        """
        return self._connection is not None

    def whenConnected(self) -> Deferred[None]:
        """
        A Deferred that fires once a connection is open (at once if one
        is); the subscriptions have been sent on it by then.
        """
        if self._connection is not None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    @property
    def topics(self) -> frozenset[str]:
        """
        The topics subscribed to.
        """
        return frozenset(self._subscriptions)

    def position(self, topic: str) -> Position | None:
        """
        The position of the last publication of C{topic} delivered (or the
        topic's position when the subscription started), C{None} if none
        is known; e.g. to store it and resume from it in another process
        (C{subscribe(topic, callback, since=position)}).

        @raise KeyError: if C{topic} is not subscribed to.
        """
        return self._subscriptions[topic].position

    def subscribe(
        self,
        topic: str,
        callback: Delivered,
        *,
        since: Position | None = None,
        onRecoveryFailed: RecoveryFailed | None = None,
    ) -> None:
        """
        Subscribe to C{topic}, now if connected, else as soon as a
        connection opens, and again on every reconnection (resuming).

        @param callback: called as C{callback(data, position)} for every
            publication of C{topic}, once each, in order: C{data} is what
            was published (decoded JSON), C{position} its L{Position}
            (C{None} from a server without positions).
        @param since: resume after this position (e.g. one stored by an
            earlier run) instead of starting from the topic's present.
        @param onRecoveryFailed: called as C{onRecoveryFailed(topic,
            position)} when publications of C{topic} were missed and cannot
            be replayed (the epoch changed, or they are older than the
            server's history keeps): once per such event, before the next
            publication is delivered; delivery continues after
            C{position}. The application reloads its state there. Default:
            the client's C{onRecoveryFailed}, else a warning in the log.
        @raise ValueError: if C{topic} is already subscribed to
            (L{unsubscribe} first).
        """
        if topic in self._subscriptions:
            raise ValueError(f"already subscribed to {topic!r}")
        subscription = _Subscription(topic, callback, onRecoveryFailed, since)
        self._subscriptions[topic] = subscription
        if self._connection is not None:
            self._send(self._connection, subscription)

    def unsubscribe(self, topic: str) -> None:
        """
        Stop delivering C{topic} and forget its position (no error if it
        was not subscribed to).
        """
        if self._subscriptions.pop(topic, None) is None:
            return
        connection = self._connection
        if connection is not None:
            connection.transport.sendTextMessage(json.dumps({"action": "unsubscribe", "topic": topic}))

    def publish(self, topic: str, data: Any) -> None:
        """
        Publish C{data} (anything JSON can encode) to C{topic}.

        Nothing is queued while disconnected: the caller decides what to
        do with a publication that could not be sent (wait for
        L{whenConnected} and send it again, drop it, ...). A publication
        sent is not acknowledged; one sent just before the connection
        drops may be lost.

        @raise NotConnected: if no connection is open.
        @raise TypeError: for data JSON cannot encode.
        @raise ValueError: for C{NaN} or infinite floats.
        """
        connection = self._connection
        if connection is None:
            raise NotConnected(f"not connected: the publication to {topic!r} was not sent")
        text = json.dumps({"action": "publish", "topic": topic, "data": data}, allow_nan=False)
        connection.transport.sendTextMessage(text)

    def startService(self) -> None:
        super().startService()
        self.service.startService()

    def stopService(self) -> Deferred[None]:
        """
        Close the connection with 1000 and stop reconnecting; the
        subscriptions and their positions are kept, so starting again
        resumes them.
        """
        super().stopService()
        return self.service.stopService()

    # -- the connection's side ------------------------------------------------

    def _opened(self, connection: _PubSubConnection) -> None:
        self._connection = connection
        for subscription in list(self._subscriptions.values()):
            self._send(connection, subscription)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def _lost(self, connection: _PubSubConnection) -> None:
        if self._connection is connection:
            self._connection = None
        for subscription in self._subscriptions.values():
            subscription.waiting = False

    def _send(self, connection: _PubSubConnection, subscription: _Subscription) -> None:
        """
        Send C{subscription}'s subscribe (from its position, if known) and
        wait for the answer.
        """
        request: dict[str, Any] = {"action": "subscribe", "topic": subscription.topic}
        since = subscription.position
        if since is not None:
            request["since"] = {"offset": since.offset, "epoch": since.epoch}
        subscription.waiting = True
        subscription.asked = since
        connection.transport.sendTextMessage(json.dumps(request))

    def _received(self, connection: _PubSubConnection, message: dict[str, Any]) -> None:
        if connection is not self._connection:
            return
        if "subscribed" in message:
            self._answered(connection, message)
        elif "topic" in message and "data" in message:
            self._delivered(connection, message)
        elif "error" in message:
            error = str(message["error"])
            if self._onError is None:
                _log.warn("The pub/sub server refused a request: {error}", error=error)
            else:
                self._call(self._onError, error)

    def _answered(self, connection: _PubSubConnection, message: dict[str, Any]) -> None:
        connection.answers = True
        topic = message["subscribed"]
        subscription = self._subscriptions.get(topic) if isinstance(topic, str) else None
        if subscription is None or not subscription.waiting:
            return  # unsubscribed meanwhile (or not ours)
        subscription.waiting = False
        top = _position(message)
        asked = subscription.asked
        if asked is None:
            # A fresh subscription starts from the present.
            subscription.position = top
        elif top is not None and message.get("recovered") is True and top.epoch == asked.epoch:
            # The replay of asked+1 ... TOP follows: the position stays.
            subscription.position = asked
        else:
            subscription.position = top
            self._recoveryFailed(subscription, top)

    def _delivered(self, connection: _PubSubConnection, message: dict[str, Any]) -> None:
        topic = message["topic"]
        subscription = self._subscriptions.get(topic) if isinstance(topic, str) else None
        if subscription is None:
            return
        if subscription.waiting and connection.answers:
            return  # from the subscription being replaced: replayed after the answer
        position = _position(message)
        last = subscription.position
        if position is not None and last is not None:
            if position.epoch == last.epoch:
                if position.offset <= last.offset:
                    return  # a duplicate (the seam between replay and live)
                if position.offset > last.offset + 1:
                    # A gap: start over from the last one delivered.
                    _log.info(
                        "Gap in {topic!r} ({last} to {offset}): subscribing again from {last}",
                        topic=topic,
                        last=last.offset,
                        offset=position.offset,
                    )
                    self._send(connection, subscription)
                    return
            else:
                subscription.position = Position(position.offset - 1, position.epoch)
                self._recoveryFailed(subscription, subscription.position)
                if self._subscriptions.get(topic) is not subscription:
                    return
        if position is not None:
            subscription.position = position
        self._call(subscription.callback, message["data"], position)

    def _recoveryFailed(self, subscription: _Subscription, position: Position | None) -> None:
        hook = subscription.onRecoveryFailed or self._onRecoveryFailed
        if hook is None:
            _log.warn(
                "Publications of {topic!r} were missed and could not be recovered; continuing after {position}",
                topic=subscription.topic,
                position=position,
            )
            return
        self._call(hook, subscription.topic, position)

    def _call(self, function: Callable[..., object], *args: Any) -> None:
        try:
            function(*args)
        except Exception:
            _log.failure("A pub/sub client callback failed", Failure())

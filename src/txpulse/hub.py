# -*- test-case-name: tests.test_hub -*-
"""
The pub/sub L{Hub}: topics, subscribers, fan-out, and the JSON protocol
mounted at C{/pubsub}.

Wire format (JSON text messages)::

    client -> server   {"action": "subscribe",   "topic": T}
                       {"action": "unsubscribe", "topic": T}
                       {"action": "publish",     "topic": T, "data": D}
    server -> client   {"topic": T, "data": D}       to every subscriber of T
                       {"error": "..."}              to a client whose message was refused

Delivery: L{Hub.publish} hands the message to the hub's broker; the broker
(L{txpulse.broker.memory.MemoryBroker} in one process, the Redis broker
across processes) calls L{Hub.deliver} in every process with subscribers,
which serializes the frame I{once} and writes the same bytes to each local
subscriber.

Batching: the first message delivered in a reactor turn is written to every
subscriber at once (so a burst's first message does not wait for the rest
of the burst); the ones after it, in the same turn, are queued on each
subscriber and written at the end of the turn, one write per subscriber
for the whole batch, or as soon as the batch holds C{maxBatch} bytes (a
server-side loop publishing megabytes in one turn must not pile them up
unchecked). Order is kept per subscriber.

Slow subscribers: a subscriber whose write backlog (the growth of its
queue since its transport's buffer filled) is over C{maxBacklog} bytes is
disconnected with close code 1008 ("subscriber too slow") and a log line,
checked before each turn's first delivery and after each batch is written;
the others keep receiving, in order, and the memory a slow subscriber holds
stays bounded by its transport's buffer, plus C{maxBacklog}, plus about two
batches (the one that filled the buffer, and the one that went over the
limit; a batch is C{maxBatch} bytes plus at most one message).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .core.frames import Opcode, encode_frame

__all__ = ["Hub", "HubError", "Subscriber", "Broker", "PubSubFactory", "PubSubProtocol", "Authorize"]

_log = Logger()

#: Close code for a subscriber that cannot keep up (RFC 6455 §7.4.1: 1008,
#: "a message that violates its policy").
TOO_SLOW = 1008


class HubError(Exception):
    """
    A refused hub request; its message is what the client is told.
    """


class Subscriber(Protocol):
    """
    What the hub delivers to: a L{txpulse.wire.WebSocketWire}, or anything
    with these methods. C{sendFrame} writes a serialized frame now;
    C{queueFrame} queues one and returns whether it started a new batch
    (the hub then remembers to flush this subscriber); C{flush} writes and
    empties the batch, so that the next C{queueFrame} starts a new one;
    C{writeBacklog} says how far behind the reader is, in bytes.
    """

    def sendFrame(self, frame: bytes) -> None: ...

    def queueFrame(self, frame: bytes) -> bool: ...

    def flush(self) -> None: ...

    def loseConnection(self, code: int = 1000, reason: str = "") -> None: ...

    def abortConnection(self) -> None: ...

    def isOpen(self) -> bool: ...

    @property
    def writeBacklog(self) -> int: ...


class Broker(Protocol):
    """
    Carries published messages to every process with subscribers.

    The hub tells the broker which topics have local subscribers
    (C{subscribe} on the first, C{unsubscribe} after the last), publishes
    through it, and receives through the C{deliver} callback given to
    C{start}. Payloads are the complete JSON envelope, as text.
    """

    def start(self, deliver: Callable[[str, str], None]) -> None: ...

    def subscribe(self, topic: str) -> None: ...

    def unsubscribe(self, topic: str) -> None: ...

    def publish(self, topic: str, payload: str) -> None: ...

    def stop(self) -> object: ...


#: Per-topic authorization: C{(identity, action, topic) -> bool}, where
#: action is C{"subscribe"} or C{"publish"} and identity is what the
#: accept hook (e.g. the Bearer-key check) attached to the connection.
Authorize = Callable[[object, str, str], bool]


class Hub:
    """
    Topics and their local subscribers.

    @ivar broker: the L{Broker} messages travel through.
    """

    def __init__(
        self,
        broker: Broker | None = None,
        *,
        maxTopicsPerConnection: int = 100,
        maxTopicLength: int = 200,
        maxBacklog: int = 1 << 20,
        maxBatch: int = 64 << 10,
        authorize: Authorize | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param broker: default: an in-process L{MemoryBroker}.
        @param maxTopicsPerConnection: subscriptions one connection may hold.
        @param maxTopicLength: longest topic name, in characters.
        @param maxBacklog: how far behind (C{writeBacklog}, in bytes) a
            subscriber may fall before it is disconnected (1008).
        @param maxBatch: how many bytes of messages a turn may queue on a
            subscriber before they are written (and slow subscribers
            checked) without waiting for the turn's end.
        @param authorize: per-topic authorization hook (default: allow all).
        @param clock: schedules the end-of-turn flush of batched deliveries
            (default: the global reactor, looked up at the first delivery so
            that a hub built before a reactor is installed uses that one).
        """
        if broker is None:
            from .broker.memory import MemoryBroker

            broker = MemoryBroker()
        self.broker = broker
        self.maxTopicsPerConnection = maxTopicsPerConnection
        self.maxTopicLength = maxTopicLength
        self.maxBacklog = maxBacklog
        self.maxBatch = maxBatch
        self.authorize = authorize
        self._clock = clock
        #: Subscribers with frames queued in this turn, flushed at its end;
        #: C{None} until the turn's first delivery.
        self._queued: list[Subscriber] | None = None
        #: Bytes queued per subscriber (at most) since the last batch write.
        self._batchBytes = 0
        self._topics: dict[str, set[Subscriber]] = {}
        self._subscriptions: dict[Subscriber, set[str]] = {}
        broker.start(self.deliver)

    @property
    def clock(self) -> IReactorTime:
        """
        What schedules the end-of-turn flush of batched deliveries.
        """
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    @clock.setter
    def clock(self, clock: IReactorTime) -> None:
        self._clock = clock

    # -- subscriptions ------------------------------------------------------

    def checkTopic(self, topic: object) -> str:
        """
        Validate a topic name.

        @raise HubError: for a non-string, empty or too long name.
        """
        if not isinstance(topic, str) or not topic:
            raise HubError("topic must be a non-empty string")
        if len(topic) > self.maxTopicLength:
            raise HubError(f"topic longer than {self.maxTopicLength} characters")
        return topic

    def subscribe(self, subscriber: Subscriber, topic: str) -> None:
        """
        Add C{subscriber} to C{topic} (idempotent).

        @raise HubError: for a bad topic name or too many subscriptions.
        """
        self.checkTopic(topic)
        topics = self._subscriptions.setdefault(subscriber, set())
        if topic in topics:
            return
        if len(topics) >= self.maxTopicsPerConnection:
            raise HubError(f"subscribed to too many topics (limit {self.maxTopicsPerConnection})")
        topics.add(topic)
        subscribers = self._topics.get(topic)
        if subscribers is None:
            subscribers = self._topics[topic] = set()
            self.broker.subscribe(topic)
        subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, topic: str) -> None:
        """
        Remove C{subscriber} from C{topic} (no error if it was not there).
        """
        topics = self._subscriptions.get(subscriber)
        if topics is None or topic not in topics:
            return
        topics.discard(topic)
        if not topics:
            del self._subscriptions[subscriber]
        subscribers = self._topics[topic]
        subscribers.discard(subscriber)
        if not subscribers:
            del self._topics[topic]
            self.broker.unsubscribe(topic)

    def unsubscribeAll(self, subscriber: Subscriber) -> None:
        """
        Drop every subscription of C{subscriber} (its connection closed).
        """
        for topic in list(self._subscriptions.get(subscriber, ())):
            self.unsubscribe(subscriber, topic)

    def topicsOf(self, subscriber: Subscriber) -> frozenset[str]:
        """
        The topics C{subscriber} is subscribed to.
        """
        return frozenset(self._subscriptions.get(subscriber, ()))

    def subscribers(self, topic: str) -> frozenset[Subscriber]:
        """
        The local subscribers of C{topic}.
        """
        return frozenset(self._topics.get(topic, ()))

    # -- publishing ------------------------------------------------------------

    def publish(self, topic: str, data: Any) -> None:
        """
        Publish C{data} (anything JSON can encode) to C{topic}: every
        subscriber, in every process the broker reaches, receives
        C{{"topic": topic, "data": data}}.

        @raise HubError: for a bad topic name.
        @raise TypeError: for data JSON cannot encode.
        """
        self.checkTopic(topic)
        payload = json.dumps({"topic": topic, "data": data}, ensure_ascii=False, separators=(",", ":"))
        self.broker.publish(topic, payload)

    def deliver(self, topic: str, payload: str) -> None:
        """
        Write C{payload} (a JSON envelope, from the broker) to every local
        subscriber of C{topic}: encoded once, the same frame to all; the
        turn's first delivery at once, later ones batched (see the module
        docstring).
        """
        subscribers = self._topics.get(topic)
        if not subscribers:
            return
        frame = encode_frame(Opcode.TEXT, payload.encode("utf-8"))
        queued = self._queued
        if queued is None:
            self._queued = []
            self._batchBytes = 0
            self.clock.callLater(0, self._endTurn)
            for subscriber in list(subscribers):
                try:
                    if not subscriber.isOpen():
                        continue
                    if subscriber.writeBacklog > self.maxBacklog:
                        self._dropSlow(subscriber)
                        continue
                    subscriber.sendFrame(frame)
                except Exception:
                    # One broken subscriber must not stop the fan-out.
                    _log.failure("Delivering to a subscriber of {topic} failed", Failure(), topic=topic)
            return
        for subscriber in subscribers:
            try:
                if subscriber.queueFrame(frame):
                    queued.append(subscriber)
            except Exception:
                _log.failure("Delivering to a subscriber of {topic} failed", Failure(), topic=topic)
        self._batchBytes += len(frame)
        if self._batchBytes >= self.maxBatch:
            self._writeBatch()

    def _endTurn(self) -> None:
        """
        The end of the turn: write what is queued; the next delivery is
        again the first of its turn.
        """
        self._writeBatch()
        self._queued = None

    def _writeBatch(self) -> None:
        """
        Write each subscriber's batch, then drop the subscribers that are
        now too far behind.
        """
        queued = self._queued
        self._queued = []
        self._batchBytes = 0
        for subscriber in queued or ():
            try:
                # Written first, then judged by what is left of it: a reader
                # that keeps up takes the batch into the kernel (backlog 0),
                # and only this subscriber's own bytes count against it.
                subscriber.flush()
                if subscriber.writeBacklog > self.maxBacklog:
                    self._dropSlow(subscriber)
            except Exception:
                _log.failure("Flushing a subscriber failed", Failure())

    def _dropSlow(self, subscriber: Subscriber) -> None:
        _log.warn(
            "Disconnecting a subscriber too slow to keep up: {backlog} bytes queued (limit {limit})",
            backlog=subscriber.writeBacklog,
            limit=self.maxBacklog,
        )
        self.unsubscribeAll(subscriber)
        subscriber.loseConnection(TOO_SLOW, "subscriber too slow")


class PubSubProtocol:
    """
    One client of the hub, speaking the JSON wire format in the module
    docstring.
    """

    def __init__(self, hub: Hub, maxPublishSize: int) -> None:
        self._hub = hub
        self._maxPublishSize = maxPublishSize
        self.transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def _error(self, message: str) -> None:
        self.transport.sendTextMessage(json.dumps({"error": message}))

    def textMessageReceived(self, message: str) -> None:
        try:
            request = json.loads(message)
        except ValueError:
            self._error("message is not valid JSON")
            return
        if not isinstance(request, dict):
            self._error("message must be a JSON object")
            return
        action = request.get("action")
        try:
            topic = self._hub.checkTopic(request.get("topic"))
            if action == "subscribe":
                self._authorize("subscribe", topic)
                self._hub.subscribe(self.transport, topic)
            elif action == "unsubscribe":
                self._hub.unsubscribe(self.transport, topic)
            elif action == "publish":
                if "data" not in request:
                    raise HubError("publish needs 'data'")
                self._authorize("publish", topic)
                if len(message) > self._maxPublishSize:
                    raise HubError(f"published message larger than {self._maxPublishSize} bytes")
                self._hub.publish(topic, request["data"])
            else:
                raise HubError("action must be 'subscribe', 'unsubscribe' or 'publish'")
        except HubError as refused:
            self._error(str(refused))

    def _authorize(self, action: str, topic: str) -> None:
        authorize = self._hub.authorize
        if authorize is not None and not authorize(getattr(self.transport, "identity", None), action, topic):
            raise HubError(f"not allowed to {action} to {topic!r}")

    def bytesMessageReceived(self, data: bytes) -> None:
        self._error("binary messages are not part of the pub/sub protocol")

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        if self.transport is not None:
            self._hub.unsubscribeAll(self.transport)


class PubSubFactory:
    """
    Builds a L{PubSubProtocol} per connection to a shared L{Hub}: mount it
    with C{WebSocketResource(PubSubFactory(hub))}.
    """

    def __init__(self, hub: Hub, maxPublishSize: int = 64 * 1024) -> None:
        """
        @param maxPublishSize: largest publish request accepted, in
            characters of JSON; larger ones get an error reply.
        """
        self.hub = hub
        self._maxPublishSize = maxPublishSize

    def buildProtocol(self, request: object) -> PubSubProtocol:
        return PubSubProtocol(self.hub, self._maxPublishSize)

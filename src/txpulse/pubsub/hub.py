# -*- test-case-name: tests.pubsub.test_hub -*-
"""
The pub/sub L{Hub}: topics and their local subscribers, in namespaces, and
publishing through the hub's broker. The per-connection JSON protocol
mounted at C{/pubsub} is in L{txpulse.pubsub.protocol}.

The hub is one class, L{Hub}, written in parts, one job per module:

  - here: the subscriptions (who is subscribed to which broker channel),
    the limits on them, and publishing;
  - L{txpulse.pubsub.namespace}: what one mount's clients can reach
    (L{Namespace}), and who may use which topic;
  - L{txpulse.pubsub.envelope}: the JSON envelope
    C{{"topic": T, "data": D}} (strict JSON) and broker channel names;
  - L{txpulse.pubsub.fanout}: writing deliveries to the local subscribers,
    batched per reactor turn, and dropping the ones too slow to keep up;
  - L{txpulse.pubsub.recovery}: positions, and replaying what a
    subscriber missed before it goes live;
  - L{txpulse.pubsub.failures}: counting and logging the broker's
    failures;
  - L{txpulse.pubsub.interfaces}: what the hub delivers to
    (L{Subscriber}) and its hooks (L{Authorize}, L{HistoryFor}).

Every name those modules had here before they were split out is still
importable from this module.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..logs.summary import SummaryLog
from ..wire.twistedinternals import maybeGlobalReactor
from .broker import Broker, PositionedBroker
from .envelope import _CONTROL, SEPARATOR, _qualified, channelFor, checkEnvelope, dumpJSON, loadJSON, topicOfChannel
from .failures import FAILURE_LOG_INTERVAL, HISTORY_FAILED, PUBLISH_FAILED
from .fanout import TOO_SLOW
from .history import DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_MAX_TOPICS, History, Position
from .interfaces import Authorize, HistoryFor, Subscriber
from .namespace import Namespace
from .recovery import DEFAULT_REPLAY_PER_TURN, REPLAY_POLL_INTERVAL, Recovery, _Pending

__all__ = [
    "Hub",
    "HubError",
    "Namespace",
    "Subscriber",
    "Broker",
    "PositionedBroker",
    "Authorize",
    "HistoryFor",
    "Position",
    "History",
    "channelFor",
    "topicOfChannel",
    "loadJSON",
    "dumpJSON",
    "checkEnvelope",
    "DEFAULT_HISTORY_MAX_BYTES",
    "DEFAULT_HISTORY_MAX_TOPICS",
    "DEFAULT_REPLAY_PER_TURN",
    # Defined here, or moved out of this module and re-exported.
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_HISTORY_TTL",
    "REPLAY_POLL_INTERVAL",
    "TOO_SLOW",
    "SEPARATOR",
    "FAILURE_LOG_INTERVAL",
    "HISTORY_FAILED",
    "PUBLISH_FAILED",
]

_log = Logger()

#: Publications kept per topic by default (L{Hub}'s C{historySize}; the
#: plugin's C{--history-size}): a 1 s outage of a topic carrying 1,000
#: messages/s, or 10 s at 100/s. What it costs is measured in the README
#: ("Delivery guarantees"): about 230 bytes per 100-byte publication kept,
#: so at most about 230 KB for a topic that busy, and only as much as
#: its traffic over the ttl for a quieter one.
DEFAULT_HISTORY_SIZE = 1000

#: Seconds a publication is kept by default (C{historyTtl};
#: C{--history-ttl}): longer than a node restart plus a few of the
#: clients' reconnection backoffs (0.5 s doubling up to 30 s), short
#: enough that quiet topics hold little.
DEFAULT_HISTORY_TTL = 120.0


class HubError(Exception):
    """
    A refused hub request; its message is what the client is told.
    """


class Hub(Recovery):
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
        historySize: int = DEFAULT_HISTORY_SIZE,
        historyTtl: float = DEFAULT_HISTORY_TTL,
        historyFor: HistoryFor | None = None,
        historyMaxBytes: int | None = None,
        historyMaxTopics: int | None = None,
        replayPerTurn: int = DEFAULT_REPLAY_PER_TURN,
    ) -> None:
        """
        @param broker: default: an in-process L{MemoryBroker}.
        @param maxTopicsPerConnection: subscriptions one connection may
            hold at once; also the distinct topics a C{/pubsub} connection
            may publish to over its life (not counting those it is
            subscribed to: see L{txpulse.pubsub.protocol.PubSubProtocol}),
            since each new topic costs the broker a position and a history.
            Past either: an C{{"error"}} reply.
        @param maxTopicLength: longest topic name, in characters.
        @param maxBacklog: how far behind (C{writeBacklog}, in bytes) a
            subscriber may fall before it is disconnected (1008).
        @param maxBatch: how many bytes of messages a turn may queue on a
            subscriber before they are written (and slow subscribers
            checked) without waiting for the turn's end; also the largest
            slice of a replay written at once.
        @param authorize: per-topic authorization hook of every namespace
            without its own (default: allow all); it sees the root's topics
            as they are and topic T of namespace N as C{N/T} (see
            L{Namespace.allowed}).
        @param clock: schedules the end-of-turn flush of batched deliveries
            (default: the global reactor, looked up at the first delivery so
            that a hub built before a reactor is installed uses that one);
            also the default broker's clock (the history's ttl).
        @param historySize: publications kept per topic for subscribers
            that resume (C{since}); 0 turns history off (positions are
            still given).
        @param historyTtl: seconds a publication is kept; 0 turns history
            off.
        @param historyFor: per-topic override of the two (see
            L{HistoryFor}); asked once per topic, when the broker first
            sees it.
        @param historyMaxBytes: the memory all topics' histories may hold
            together (0: no bound); past it the oldest publications are
            dropped (see L{txpulse.pubsub.broker.memory.MemoryBroker}).
            Given to a broker that has a C{maxBytes} attribute (the
            in-process one); C{None}: the broker's own (default
            L{DEFAULT_HISTORY_MAX_BYTES}).
        @param historyMaxTopics: the most topics with history (0: no
            bound); past it the least recently published topic's history is
            dropped. Given to a broker with a C{maxTopics} attribute;
            C{None}: the broker's own (default L{DEFAULT_HISTORY_MAX_TOPICS}).
        @param replayPerTurn: bytes all replays together write per reactor
            turn (at least one message each); the rest goes on in the next
            turns (see L{txpulse.pubsub.recovery}).
        @raise ValueError: for a negative C{historySize}, C{historyTtl},
            C{historyMaxBytes} or C{historyMaxTopics}, or a
            C{replayPerTurn} under 1.
        """
        if historySize < 0 or historyTtl < 0:
            raise ValueError("historySize and historyTtl must not be negative")
        if (historyMaxBytes or 0) < 0 or (historyMaxTopics or 0) < 0:
            raise ValueError("historyMaxBytes and historyMaxTopics must not be negative")
        if replayPerTurn < 1:
            raise ValueError("replayPerTurn must be 1 or more")
        if broker is None:
            from .broker.memory import MemoryBroker

            broker = MemoryBroker(clock=clock)
        if historyMaxBytes is not None and hasattr(broker, "maxBytes"):
            setattr(broker, "maxBytes", historyMaxBytes)  # noqa: B010 (not part of the Broker protocol)
        if historyMaxTopics is not None and hasattr(broker, "maxTopics"):
            setattr(broker, "maxTopics", historyMaxTopics)  # noqa: B010
        self.broker = broker
        self.replayPerTurn = replayPerTurn
        self.historySize = historySize
        self.historyTtl = historyTtl
        self.historyFor = historyFor
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
        #: Local subscribers per broker channel, and channels per subscriber.
        self._topics: dict[str, set[Subscriber]] = {}
        self._subscriptions: dict[Subscriber, set[str]] = {}
        #: Subscriptions not live yet (waiting for their broker's history,
        #: or being replayed), per channel.
        self._recovering: dict[str, dict[Subscriber, _Pending]] = {}
        #: Replays with more to write, in the order they are served.
        self._replays: deque[tuple[Subscriber, str, _Pending]] = deque()
        #: Bytes replays wrote in this turn; the call that starts the next
        #: pass over C{_replays} (and sets this back to 0).
        self._replaySpent = 0
        self._replayCall: IDelayedCall | None = None
        self._root = Namespace(self, "")
        #: Broker failures per kind (L{HISTORY_FAILED}, L{PUBLISH_FAILED}),
        #: since the hub started; logged in aggregate (L{Hub.noteBrokerFailure}).
        self.brokerFailures: Counter[str] = Counter()
        self._failureLog: SummaryLog | None = None
        #: Whether the broker gives positions and keeps history.
        self.positions = callable(getattr(broker, "history", None))
        if self.positions:
            broker.start(self.deliver, self.historyLimits)
        else:
            broker.start(self.deliver)

    def historyLimits(self, channel: str) -> tuple[int, float]:
        """
        C{(size, ttl)} of the history of broker channel C{channel}:
        C{historyFor}'s answer if it has one, else C{historySize} and
        C{historyTtl}; C{(0, 0.0)} if either is 0 (history off).
        """
        size, ttl = self.historySize, self.historyTtl
        hook = self.historyFor
        if hook is not None:
            override = hook(_qualified(channel))
            if override is not None:
                size, ttl = override
        if size <= 0 or ttl <= 0:
            return (0, 0.0)
        return (int(size), float(ttl))

    @property
    def clock(self) -> IReactorTime:
        """
        What schedules the end-of-turn flush of batched deliveries.
        """
        self._clock = maybeGlobalReactor(self._clock)
        return self._clock

    @clock.setter
    def clock(self, clock: IReactorTime) -> None:
        self._clock = clock

    # -- namespaces ---------------------------------------------------------

    def namespace(self, name: str = "", authorize: Authorize | None = None) -> Namespace:
        """
        A view of the topics of namespace C{name}: what one mount's clients
        can reach, and nothing else (see L{txpulse.pubsub.namespace}).

        @param name: the namespace (C{""}: the root, the hub's own methods).
        @param authorize: who may subscribe or publish to its topics, seen
            as its clients name them (default: the hub's C{authorize}, which
            sees topic T of a namespace other than the root as C{name/T}).
        @raise ValueError: for a name with control characters.
        """
        return Namespace(self, name, authorize)

    # -- subscriptions (the root namespace) -------------------------------------

    def checkTopic(self, topic: object) -> str:
        """
        Validate a topic name.

        @raise HubError: for a non-string, empty or too long name, or one
            with control characters.
        """
        if not isinstance(topic, str) or not topic:
            raise HubError("topic must be a non-empty string")
        if len(topic) > self.maxTopicLength:
            raise HubError(f"topic longer than {self.maxTopicLength} characters")
        if _CONTROL.search(topic) is not None:
            raise HubError("topic must not contain control characters")
        return topic

    def subscribe(
        self, subscriber: Subscriber, topic: str, since: Position | None = None, *, answer: bool = False
    ) -> Deferred[None] | None:
        """
        Add C{subscriber} to C{topic} of the root namespace: see
        L{Namespace.subscribe}.
        """
        return self._root.subscribe(subscriber, topic, since, answer=answer)

    def unsubscribe(self, subscriber: Subscriber, topic: str) -> None:
        """
        Remove C{subscriber} from C{topic} (no error if it was not there).
        """
        self._root.unsubscribe(subscriber, topic)

    def unsubscribeAll(self, subscriber: Subscriber) -> None:
        """
        Drop every subscription of C{subscriber}, in every namespace (its
        connection closed).
        """
        for channel in list(self._subscriptions.get(subscriber, ())):
            self._unsubscribe(subscriber, channel)

    def topicsOf(self, subscriber: Subscriber) -> frozenset[str]:
        """
        The topics of the root namespace C{subscriber} is subscribed to.
        """
        return self._root.topicsOf(subscriber)

    def subscribers(self, topic: str) -> frozenset[Subscriber]:
        """
        The local subscribers of C{topic} (root namespace).
        """
        return self._root.subscribers(topic)

    def _subscribe(
        self, subscriber: Subscriber, channel: str, topic: str, since: Position | None, answer: bool
    ) -> Deferred[None] | None:
        """
        Subscribe C{subscriber} to C{channel} (see L{Namespace.subscribe}).

        @return: C{None} if the subscription is live, else a L{Deferred}
            that fires when it is (its history read and replayed), or when
            it is abandoned (unsubscribed, asked again, disconnected).
        """
        channels = self._subscriptions.setdefault(subscriber, set())
        if channel in channels:
            if not answer:
                return None
            # Asked again, for an answer: the subscription starts over (its
            # reply, its replay from since), without the broker noticing.
            self._detach(subscriber, channel)
        elif len(channels) >= self.maxTopicsPerConnection:
            raise HubError(f"subscribed to too many topics (limit {self.maxTopicsPerConnection})")
        else:
            channels.add(channel)
        if channel not in self._topics and channel not in self._recovering:
            self.broker.subscribe(channel)
        if not answer:
            self._topics.setdefault(channel, set()).add(subscriber)
            return None
        if not self.positions:
            reply: dict[str, Any] = {"subscribed": topic}
            if since is not None:
                reply["recovered"] = False
            self._topics.setdefault(channel, set()).add(subscriber)
            self._writeTexts(subscriber, [dumpJSON(reply)])
            return None
        pending = _Pending(topic, since)
        self._recovering.setdefault(channel, {})[subscriber] = pending
        try:
            history = cast(PositionedBroker, self.broker).history(channel, since)
        except Exception:
            _log.failure("Reading the history of {channel!r} failed", Failure(), channel=channel)
            self._resume(subscriber, channel, pending, None)
            return self._waitFor(subscriber, channel, pending)
        if isinstance(history, Deferred):
            history.addCallbacks(
                lambda answered: self._resume(subscriber, channel, pending, answered),
                lambda failure: self._historyFailed(failure, subscriber, channel, pending),
            )
        else:
            self._resume(subscriber, channel, pending, history)
        return self._waitFor(subscriber, channel, pending)

    def _detach(self, subscriber: Subscriber, channel: str) -> None:
        """
        Take C{subscriber} off C{channel}'s live subscribers or pending
        recoveries (its subscription stays counted).
        """
        subscribers = self._topics.get(channel)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._topics[channel]
        waiting = self._recovering.get(channel)
        if waiting is not None:
            pending = waiting.pop(subscriber, None)
            if not waiting:
                del self._recovering[channel]
            if pending is not None and pending.done is not None:
                # Abandoned: whoever waits goes on, in a turn of its own
                # (this may run inside a delivery, or a subscribe).
                self.clock.callLater(0, pending.finish)

    def _unsubscribe(self, subscriber: Subscriber, channel: str) -> None:
        channels = self._subscriptions.get(subscriber)
        if channels is None or channel not in channels:
            return
        channels.discard(channel)
        if not channels:
            del self._subscriptions[subscriber]
        self._detach(subscriber, channel)
        if channel not in self._topics and channel not in self._recovering:
            self.broker.unsubscribe(channel)

    # -- publishing ------------------------------------------------------------

    def publish(self, topic: str, data: Any) -> Position | Deferred[Position] | None:
        """
        Publish C{data} (anything JSON can encode) to C{topic} of the root
        namespace: every subscriber, in every process the broker reaches,
        receives C{{"topic": topic, "data": data}} (with its position,
        C{"offset"} and C{"epoch"}, from a broker with positions).

        @return: what the broker's C{publish} returns: the position, a
            L{Deferred} firing with it, or C{None}.

        @raise HubError: for a bad topic name.
        @raise ValueError: for C{NaN} or infinite floats (not JSON), nesting
            too deep, or lone surrogates in strings.
        @raise TypeError: for data JSON cannot encode.
        """
        return self._root.publish(topic, data)

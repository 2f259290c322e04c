# -*- test-case-name: tests.pubsub.test_hub -*-
"""
The pub/sub L{Hub}: topics, namespaces, subscribers, fan-out, and the JSON
envelope C{{"topic": T, "data": D}} that travels through the brokers. The
per-connection JSON protocol mounted at C{/pubsub} is in
L{txpulse.pubsub.protocol}.

Namespaces: each mount's topics live in a namespace of their own
(L{Hub.namespace}); the hub's own methods are those of the root namespace
(C{""}), whose broker channel for topic T is T itself, so that
C{hub.publish("news", ...)} from server code reaches C{/pubsub}. Topic T of
namespace N travels on channel C{N + "\x1f" + T}; topic and namespace
names may not contain control characters, so no client of one namespace
can name a channel of another. Deliveries carry the topic as the
namespace's clients see it.

Strict JSON: requests are parsed without C{NaN}/C{Infinity} and with a
bound on nesting (both are an C{{"error"}} reply), and data is encoded with
C{allow_nan=False} (server code publishing C{NaN} gets a L{ValueError}).

Delivery: L{Hub.publish} hands the message to the hub's broker; the broker
(L{txpulse.pubsub.broker.memory.MemoryBroker} in one process, the Redis broker
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

Positions and recovery: a broker that has a C{history} method (the
in-process one does; see L{Broker}) gives every publication a position,
and the hub writes it into the one frame of each delivery:
C{{"topic": T, "data": D, "offset": N, "epoch": E}}. A subscription made
with C{answer=True} (the C{/pubsub} protocol's) is answered with the
topic's position, C{{"subscribed": T, "offset": TOP, "epoch": E}}, before
any delivery on it; one made C{since} a position is answered with
C{"recovered": true} and followed by the publications after it, then the
live ones, or with C{"recovered": false} and the live ones only. While the
broker reads the history (a L{Deferred}, for a broker across processes),
the subscriber is not yet among the topic's subscribers: what is
delivered to the topic meanwhile is kept aside for it, and written after
the history, minus what the history already had (compared by offset). So
the seam between replay and live has no gap and no duplicate. Both
brokers shipped here have positions (the Redis one keeps them in Redis,
L{txpulse.pubsub.broker.redis}); a broker without C{history} (a
third-party one written for the first version of this protocol) delivers
without positions, and subscriptions are then answered
C{{"subscribed": T}}, with C{"recovered": false} when asked to recover.

Broker failures (Redis unreachable): a history read that fails is
answered C{"recovered": false} without a position, and a publication from
a C{/pubsub} client whose L{Deferred} fails is dropped from the hub's
point of view (the broker already delivered it locally, or will, and
logs the outage itself). Neither logs a traceback: each kind is logged
once, in one line, then summed up once every L{FAILURE_LOG_INTERVAL}
seconds while failures go on (a L{txpulse.logs.summary.SummaryLog}), and
counted in L{Hub.brokerFailures}.

Replays are paced: a replay is written in slices of at most C{maxBatch}
bytes, and all replays together write at most C{replayPerTurn} bytes per
reactor turn (at least one message each); what is left goes on in the
next turns, round-robin over the subscribers replaying. So a thousand
clients resuming at once, or one client asking for the same replay a
thousand times, cannot hold the reactor for more than one slice's worth
of work per turn. A slice is written to a subscriber only while it keeps
up (C{writeBacklog} is 0: the transport's buffer has room, or has just
filled): a reader that does not read holds at most its buffer and one
slice, not the replay. Until its replay is written the subscription is
not live, so what is delivered to the topic meanwhile is kept aside, as
while the history is read (above), and counts against C{maxBacklog}: over
it, the subscriber is disconnected as too slow (1008). A subscription
that is not live yet when C{subscribe} returns (history still being read,
or replay still being written) comes with a L{Deferred} that fires when it
is; the C{/pubsub} protocol returns it from C{textMessageReceived}, so the
connection is not read meanwhile (L{txpulse.wire.protocol}): a client's
pipelined requests wait in TCP, one replay at a time per connection, and
re-subscribing the same topic a thousand times costs one replay at a time
(each new request abandons the replay in progress).

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
import re
from collections import Counter, deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.frames import Opcode, encode_frame
from ..logs.peers import peerOf
from ..logs.summary import OTHERS, SummaryLog
from ..wire.twistedinternals import maybeGlobalReactor
from .broker import Broker, PositionedBroker
from .history import DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_MAX_TOPICS, History, Position, positioned

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

#: Bytes all replays together write per reactor turn by default (L{Hub}'s
#: C{replayPerTurn}): about 1,700 messages of 150 bytes, a few milliseconds
#: of work (measured: 1,000 clients resuming 1,000 messages each at once
#: keep another connection's round trip under 10 ms; see the README).
DEFAULT_REPLAY_PER_TURN = 256 << 10

#: Seconds between two looks at replays that all wait for their readers
#: (C{writeBacklog} above 0): a replay waiting on a reader is looked at
#: every turn only while some other replay is being written.
REPLAY_POLL_INTERVAL = 0.02

#: Close code for a subscriber that cannot keep up (RFC 6455 §7.4.1: 1008,
#: "a message that violates its policy").
TOO_SLOW = 1008

#: Between a namespace and a topic in a broker channel name: a control
#: character, which topic and namespace names may not contain.
SEPARATOR = "\x1f"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

#: Seconds between two summary lines of the broker's failures (history
#: reads, publications): during an outage, each kind of failure is logged
#: once in full, then summed up once per interval (L{Hub.brokerFailures}).
FAILURE_LOG_INTERVAL = 10.0

#: What L{Hub.noteBrokerFailure} counts: reading a channel's history
#: (positions and recovery), and a publication from a C{/pubsub} client.
HISTORY_FAILED = "Reading the history"
PUBLISH_FAILED = "Publishing"


def _summarizeFailures(what: str, counts: Mapping[str, int], seconds: float) -> None:
    top = sorted(counts.items(), key=lambda item: -item[1])[:3]
    _log.warn(
        "{what} failed {count} more time(s) in the last {seconds:.0f}s; most on {channels}",
        what=what,
        count=sum(counts.values()),
        seconds=seconds,
        channels=", ".join(
            f"{'other topics' if channel == OTHERS else repr(_qualified(channel))} ({count})" for channel, count in top
        ),
    )


def channelFor(namespace: str, topic: str) -> str:
    """
    The broker channel of C{topic} in C{namespace}: the topic itself in the
    root namespace (C{""}), else C{namespace + SEPARATOR + topic}.
    """
    return namespace + SEPARATOR + topic if namespace else topic


def topicOfChannel(channel: str) -> str:
    """
    The topic, as its namespace's clients see it, of a broker channel.
    """
    _namespace, separator, topic = channel.partition(SEPARATOR)
    return topic if separator else channel


def _askQualified(hook: Authorize, prefix: str, identity: object, action: str, topic: str) -> bool:
    """
    Ask the hub's C{hook} about C{topic} of the namespace whose topics it
    sees behind C{prefix} (see L{Namespace.allowed}).
    """
    return hook(identity, action, prefix + topic)


def _refuseConstant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: Built once: C{json.loads} with any keyword argument builds a new decoder
#: per call, which doubled the cost of parsing a small request.
_decodeStrict = json.JSONDecoder(parse_constant=_refuseConstant).decode


def loadJSON(text: str) -> Any:
    """
    Parse JSON strictly: C{NaN}, C{Infinity} and C{-Infinity} are refused,
    and so is nesting too deep for the parser.

    @raise ValueError: for anything but valid JSON.
    """
    try:
        return _decodeStrict(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumpJSON(value: Any) -> str:
    """
    Encode C{value} as compact JSON text that every JSON parser accepts.

    @raise ValueError: for C{NaN} or infinite floats, nesting too deep, or
        strings with lone surrogates (not encodable as UTF-8).
    @raise TypeError: for values JSON cannot encode.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise ValueError("data nested too deeply to encode as JSON") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("data holds a lone surrogate, which UTF-8 cannot encode") from None
    return text


def checkEnvelope(channel: str, payload: str) -> str | None:
    """
    Check a payload that arrived from outside this process (e.g. from
    Redis) before it is relayed: it must be a strict JSON envelope
    C{{"topic": T, "data": D}} whose T is the topic of C{channel}.

    @return: why it is refused, or C{None} if it is good.
    """
    try:
        envelope = loadJSON(payload)
    except ValueError as error:
        return f"not valid JSON ({error})"
    if not isinstance(envelope, dict) or set(envelope) != {"topic", "data"}:
        return 'not a {"topic", "data"} envelope'
    if envelope["topic"] != topicOfChannel(channel):
        return f"topic {envelope['topic']!r} does not match the channel"
    return None


class HubError(Exception):
    """
    A refused hub request; its message is what the client is told.
    """


class Subscriber(Protocol):
    """
    What the hub delivers to: a L{txpulse.wire.protocol.WebSocketWire}, or anything
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


#: Per-topic authorization: C{(identity, action, topic) -> bool}, where
#: action is C{"subscribe"} or C{"publish"} and identity is what the
#: accept hook (e.g. the Bearer-key check) attached to the connection.
Authorize = Callable[[object, str, str], bool]

#: Per-topic history limits: C{topic -> (size, ttl)}, or C{None} for the
#: hub's defaults. It sees topics as the hub's C{authorize} does (the
#: root's as they are, topic T of namespace N as C{N/T}).
HistoryFor = Callable[[str], "tuple[int, float] | None"]


def _qualified(channel: str) -> str:
    """
    How hooks see the topic of C{channel}: C{N/T} for topic T of namespace N.
    """
    namespace, separator, topic = channel.partition(SEPARATOR)
    return f"{namespace}/{topic}" if separator else channel


class _Pending:
    """
    A subscription that is not live yet: waiting for its broker's
    L{History}, then for its replay to be written.

    @ivar buffer: what was delivered to its channel meanwhile,
        C{(payload, offset, epoch)}, to be written after the replay.
    @ivar buffered: the characters in C{buffer} (checked against the hub's
        C{maxBacklog}).
    @ivar history: the broker's answer, once it came.
    @ivar next: the index in C{history.publications} of the next one to
        replay.
    @ivar done: fires when the subscription is live, or abandoned
        (C{None} until someone waits for it).
    """

    __slots__ = ("topic", "since", "buffer", "buffered", "history", "next", "done")

    def __init__(self, topic: str, since: Position | None) -> None:
        self.topic = topic
        self.since = since
        self.buffer: list[tuple[str, int | None, str | None]] = []
        self.buffered = 0
        self.history: History | None = None
        self.next = 0
        self.done: Deferred[None] | None = None

    def finish(self) -> None:
        """
        Tell whoever waits that the subscription is live (or abandoned).
        """
        done, self.done = self.done, None
        if done is not None:
            done.callback(None)


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
            turns (see the module docstring).
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
        #: since the hub started; logged in aggregate (L{noteBrokerFailure}).
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
        can reach, and nothing else (see the module docstring).

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

    def _waitFor(self, subscriber: Subscriber, channel: str, pending: _Pending) -> Deferred[None] | None:
        """
        C{None} if C{pending} is no longer pending (live, or abandoned),
        else a L{Deferred} that fires when it is no longer.
        """
        if self._recovering.get(channel, {}).get(subscriber) is not pending:
            return None
        if pending.done is None:
            pending.done = Deferred()
        return pending.done

    def _historyFailed(self, failure: Failure, subscriber: Subscriber, channel: str, pending: _Pending) -> None:
        self.noteBrokerFailure(HISTORY_FAILED, channel, failure)
        self._resume(subscriber, channel, pending, None)

    def noteBrokerFailure(self, what: str, channel: str, failure: Failure) -> None:
        """
        Count a failure of the broker (C{what}: L{HISTORY_FAILED} or
        L{PUBLISH_FAILED}) on C{channel}, and log it: the first of its kind
        in one warning line (no traceback: the broker logs the outage
        itself), the next ones summed up once every
        L{FAILURE_LOG_INTERVAL} seconds, per channel (the three busiest
        named), while they go on. So an outage seen by a thousand
        subscribers makes a few lines, not a thousand tracebacks.
        """
        self.brokerFailures[what] += 1
        if self._failureLog is None:
            self._failureLog = SummaryLog(_summarizeFailures, FAILURE_LOG_INTERVAL, clock=self.clock)
        if self._failureLog.note(what, channel):
            _log.warn(
                "{what} of {channel!r} failed: {error} (further failures are summed up every {interval:.0f}s)",
                what=what,
                channel=_qualified(channel),
                error=failure.getErrorMessage(),
                interval=FAILURE_LOG_INTERVAL,
            )

    def _resume(self, subscriber: Subscriber, channel: str, pending: _Pending, history: History | None) -> None:
        """
        The broker answered C{pending}'s subscription with C{history}
        (C{None}: it failed): write the reply, the replay, then what was
        delivered meanwhile and is not in the replay; the subscriber is
        then live.
        """
        if not self._isPending(subscriber, channel, pending):
            return  # unsubscribed (or subscribed again) meanwhile
        reply: dict[str, Any] = {"subscribed": pending.topic}
        pending.history = history
        if history is None:
            if pending.since is not None:
                reply["recovered"] = False
        else:
            if pending.since is not None:
                reply["recovered"] = history.recovered
            reply["offset"] = history.offset
            reply["epoch"] = history.epoch
            if history.recovered and history.publications:
                # A replay: written in slices, maybe over several turns
                # (see the module docstring), then the subscription is live.
                self._writeTexts(subscriber, [dumpJSON(reply)])
                if not self._isPending(subscriber, channel, pending):
                    return  # dropped as too slow by that write
                if not self._replays and self._replaySpent < self.replayPerTurn and not subscriber.writeBacklog:
                    if self._replaySlice(subscriber, channel, pending, self.replayPerTurn - self._replaySpent):
                        return
                self._replays.append((subscriber, channel, pending))
                self._scheduleReplays(0)
                return
        self._goLive(subscriber, channel, pending, [dumpJSON(reply)])

    def _isPending(self, subscriber: Subscriber, channel: str, pending: _Pending) -> bool:
        """
        Whether C{pending} is still C{subscriber}'s subscription to
        C{channel}, waiting to go live.
        """
        waiting = self._recovering.get(channel)
        return waiting is not None and waiting.get(subscriber) is pending

    def _replaySlice(self, subscriber: Subscriber, channel: str, pending: _Pending, budget: int) -> bool:
        """
        Write the next slice of C{pending}'s replay: at most C{maxBatch} and
        C{budget} bytes (at least one message); the subscription goes live
        after the last one.

        @return: whether the replay is over.
        """
        history = pending.history
        assert history is not None
        publications, epoch = history.publications, history.epoch
        index, end = pending.next, len(publications)
        limit = min(self.maxBatch, budget)
        texts: list[str] = []
        size = 0
        while index < end and (size < limit or not texts):
            offset, payload = publications[index]
            index += 1
            text = positioned(payload, offset, epoch)
            texts.append(text)
            size += len(text)
        pending.next = index
        self._replaySpent += size
        if self._replayCall is None:
            # Whatever is left of the budget is this turn's only.
            self._scheduleReplays(0)
        if index < end:
            self._writeTexts(subscriber, texts)
            return False
        self._goLive(subscriber, channel, pending, texts)
        return True

    def _goLive(self, subscriber: Subscriber, channel: str, pending: _Pending, texts: list[str]) -> None:
        """
        C{pending}'s reply and replay are written, up to C{texts}: write
        those, then what was delivered meanwhile and is not in the replay;
        the subscriber is then live.
        """
        waiting = self._recovering[channel]
        del waiting[subscriber]
        if not waiting:
            del self._recovering[channel]
        history = pending.history
        for payload, offset, epoch in pending.buffer:
            if offset is None or epoch is None:
                texts.append(payload)
            elif history is None or epoch != history.epoch or offset > history.offset:
                texts.append(positioned(payload, offset, epoch))
            # else: in the replay already, or from before the subscription
        pending.buffer = []
        self._topics.setdefault(channel, set()).add(subscriber)
        self._writeTexts(subscriber, texts)
        pending.finish()

    def _scheduleReplays(self, delay: float) -> None:
        if self._replayCall is None:
            self._replayCall = self.clock.callLater(delay, self._replayTurn)

    def _replayTurn(self) -> None:
        """
        A new turn: write the next slice of each replay in progress, in
        turn, until this turn's C{replayPerTurn} is spent; a replay whose
        reader is behind (C{writeBacklog} above 0) waits for a later turn.
        """
        self._replayCall = None
        self._replaySpent = 0
        replays = self._replays
        budget = self.replayPerTurn
        wrote = False
        for _ in range(len(replays)):
            if self._replaySpent >= budget:
                break
            subscriber, channel, pending = entry = replays.popleft()
            if not self._isPending(subscriber, channel, pending):
                continue  # abandoned
            try:
                if not subscriber.isOpen():
                    # Closing: its connectionLost drops the subscription.
                    self._detach(subscriber, channel)
                    continue
                if subscriber.writeBacklog:
                    replays.append(entry)
                    continue
                wrote = True
                if not self._replaySlice(subscriber, channel, pending, budget - self._replaySpent):
                    replays.append(entry)
            except Exception:
                _log.failure("Replaying to a subscriber failed", Failure())
        if replays:
            self._scheduleReplays(0 if wrote else REPLAY_POLL_INTERVAL)

    def _writeTexts(self, subscriber: Subscriber, texts: list[str]) -> None:
        """
        Write C{texts} to C{subscriber} after what is queued for it: in this
        turn's batch if one is being made, else at once.
        """
        try:
            if not subscriber.isOpen():
                return
            started = False
            for text in texts:
                started = subscriber.queueFrame(encode_frame(Opcode.TEXT, text.encode("utf-8"))) or started
            queued = self._queued
            if queued is not None:
                if started:
                    queued.append(subscriber)
                return
            subscriber.flush()
            if subscriber.writeBacklog > self.maxBacklog:
                self._dropSlow(subscriber)
        except Exception:
            _log.failure("Writing to a subscriber failed", Failure())

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

    def deliver(self, topic: str, payload: str, offset: int | None = None, epoch: str | None = None) -> None:
        """
        Write C{payload} (a JSON envelope, from the broker) to every local
        subscriber of broker channel C{topic}, with its position if it has
        one: encoded once, the same frame to all; the turn's first delivery
        at once, later ones batched (see the module docstring). Kept aside
        for the subscribers of C{topic} waiting for their history.
        """
        if self._recovering:
            waiting = self._recovering.get(topic)
            if waiting:
                behind: list[tuple[Subscriber, int]] = []
                for waiter, pending in waiting.items():
                    pending.buffer.append((payload, offset, epoch))
                    pending.buffered += len(payload)
                    if pending.buffered > self.maxBacklog:
                        behind.append((waiter, pending.buffered))
                for waiter, buffered in behind:
                    # Still waiting for its history or its replay, while the
                    # topic goes on: as far behind as a slow reader.
                    self._dropSlow(waiter, buffered)
        subscribers = self._topics.get(topic)
        if not subscribers:
            return
        if offset is not None and epoch is not None:
            payload = f'{payload[:-1]},"offset":{offset},"epoch":"{epoch}"}}'
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

    def _dropSlow(self, subscriber: Subscriber, kept: int | None = None) -> None:
        """
        Disconnect C{subscriber} with 1008: its backlog is over
        C{maxBacklog}, or (C{kept}) the deliveries kept aside for a
        subscription of it that is not live yet are.
        """
        _log.warn(
            "Disconnecting subscriber {peer}, too slow to keep up: {backlog} bytes queued (limit {limit}); "
            "close 1008 sent behind them",
            peer=peerOf(subscriber),
            backlog=subscriber.writeBacklog if kept is None else kept,
            limit=self.maxBacklog,
        )
        self.unsubscribeAll(subscriber)
        subscriber.loseConnection(TOO_SLOW, "subscriber too slow")


class Namespace:
    """
    The topics of one namespace of a L{Hub}: what one mount's clients can
    reach. Subscriptions and deliveries live in the hub; a namespace only
    maps its topic names to broker channels, and knows who may use them.

    @ivar hub: the L{Hub}.
    @ivar name: the namespace's name (C{""}: the root).
    """

    def __init__(self, hub: Hub, name: str, authorize: Authorize | None = None) -> None:
        if not isinstance(name, str) or _CONTROL.search(name) is not None:
            raise ValueError(f"a namespace name may not contain control characters: {name!r}")
        self.hub = hub
        self.name = name
        self._authorize = authorize

    @property
    def authorize(self) -> Authorize | None:
        """
        The per-topic authorization hook, called with topics as this
        namespace's clients name them: this namespace's own; else the hub's,
        which (see L{allowed}) sees topic T of namespace N as C{N/T}
        (C{None}: everything is allowed).
        """
        if self._authorize is not None:
            return self._authorize
        hook = self.hub.authorize
        if hook is None or not self.name:
            return hook
        return partial(_askQualified, hook, self.name + "/")

    def allowed(self, identity: object, action: str, topic: str) -> bool:
        """
        Whether C{identity} may C{action} (C{"subscribe"} or C{"publish"})
        on C{topic}.

        A namespace with its own hook asks it with C{topic} as is. Without
        one, the hub's hook decides, and it sees every namespace: the root's
        topics as they are, and topic T of namespace N as C{N/T} (chat room
        C{"staff"} is C{"chat/staff"}, not the C{/pubsub} topic C{"staff"};
        the name rooms had when they were root topics, so hooks written for
        that keep matching). A root topic spelled C{N/T} is seen under the
        same name, so a hook that guards C{N/T} guards both (keep C{"/"} out
        of namespace names, or C{"a/b"}'s topic C{"c"} and C{"a"}'s topic
        C{"b/c"} would share a name too).
        """
        own = self._authorize
        if own is not None:
            return bool(own(identity, action, topic))
        hook = self.hub.authorize
        if hook is None:
            return True
        return bool(hook(identity, action, self.name + "/" + topic if self.name else topic))

    def checkTopic(self, topic: object) -> str:
        """
        Validate a topic name (see L{Hub.checkTopic}).
        """
        return self.hub.checkTopic(topic)

    def channel(self, topic: str) -> str:
        """
        The broker channel of C{topic}.
        """
        return channelFor(self.name, topic)

    def subscribe(
        self, subscriber: Subscriber, topic: str, since: Position | None = None, *, answer: bool = False
    ) -> Deferred[None] | None:
        """
        Add C{subscriber} to C{topic}.

        Without C{answer} (server code, the chat): idempotent, silent, and
        live at once. With C{answer} (the C{/pubsub} protocol), or C{since}:
        the subscription is answered, before any delivery on it, with
        C{{"subscribed": T, "offset": TOP, "epoch": E}}; from C{since}, with
        C{"recovered": true} and the publications after C{since}, or
        C{"recovered": false} (see L{Broker}, C{history}); then the live
        ones. Asked again for an answer, a subscription starts over (the
        client names the position it has).

        Authorization is the caller's (L{allowed}), for recovery as for
        any subscription.

        @return: C{None} once the subscription is live; else (its history
            is still being read, or its replay written: see the module
            docstring) a L{Deferred} that fires when it is, or when it is
            abandoned. A protocol that returns it from
            C{textMessageReceived} is not read meanwhile, which is what
            bounds the work one connection's pipelined requests can queue.
        @raise HubError: for a bad topic name or too many subscriptions.
        """
        topic = self.checkTopic(topic)
        return self.hub._subscribe(subscriber, self.channel(topic), topic, since, answer or since is not None)

    def unsubscribe(self, subscriber: Subscriber, topic: str) -> None:
        """
        Remove C{subscriber} from C{topic} (no error if it was not there).
        """
        if isinstance(topic, str):
            self.hub._unsubscribe(subscriber, self.channel(topic))

    def topicsOf(self, subscriber: Subscriber) -> frozenset[str]:
        """
        The topics of this namespace C{subscriber} is subscribed to.
        """
        prefix = channelFor(self.name, "")
        channels = self.hub._subscriptions.get(subscriber, ())
        if not prefix:
            return frozenset(channel for channel in channels if SEPARATOR not in channel)
        return frozenset(channel[len(prefix) :] for channel in channels if channel.startswith(prefix))

    def subscribers(self, topic: str) -> frozenset[Subscriber]:
        """
        The local subscribers of C{topic}.
        """
        return frozenset(self.hub._topics.get(self.channel(topic), ()))

    def publish(self, topic: str, data: Any) -> Position | Deferred[Position] | None:
        """
        Publish C{data} to C{topic}: see L{Hub.publish}.
        """
        self.checkTopic(topic)
        return self.hub.broker.publish(self.channel(topic), dumpJSON({"topic": topic, "data": data}))

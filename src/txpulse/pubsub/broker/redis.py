# -*- test-case-name: tests.redis.test_redis_broker,tests.redis.test_redis_positions -*-
"""
The Redis broker: several server processes (on one machine or many) fan
out as one, with positions, history and recovery across them.

Use it with C{twistd txpulse --broker redis://host:port/db} (or
C{redis://:password@host:port/db}, C{redis://user:password@...}), or from
code::

    hub = Hub(RedisBroker.fromURL("redis://127.0.0.1:6379/0"))

How it works
============

  - Every process keeps B{two} connections to Redis, whatever the number of
    WebSockets and topics: one in subscribed mode (Redis allows nothing but
    C{(UN)SUBSCRIBE} and C{PING} on it) and one for the scripts below.
  - Topic C{T} travels on the Redis channel C{<prefix>T} (prefix
    C{"txpulse:"} by default), so txpulse shares a Redis with other users
    without clashing. Redis pub/sub channels are global: the C{/db} part of
    the URL selects the database of the positions and streams, but does not
    separate channels. Give each deployment sharing a Redis its own
    C{prefix}.
  - The process subscribes to C{<prefix>T} only while some local client
    wants C{T}: the hub calls L{RedisBroker.subscribe} on the first local
    subscriber and L{RedisBroker.unsubscribe} after the last one.
  - The connections show up in C{CLIENT LIST} as
    C{txpulse-sub-<origin>} and C{txpulse-pub-<origin>}, where C{origin}
    is a random identifier of the process (L{RedisBroker.origin}). A
    connection counts as up once Redis has answered that C{CLIENT SETNAME}
    (a TCP connection to a stopped server does not) and, for the
    publishing one, loaded the two scripts.

The parts
=========

L{RedisBroker} is one class, written in parts, one job per module:

  - here: the broker's interface to the hub (L{txpulse.pubsub.broker.Broker}:
    publishing, history reads, subscriptions), its settings and state;
  - L{txpulse.pubsub.broker.scripts}: what is kept in Redis, and running
    the Lua scripts that read and write it;
  - L{txpulse.pubsub.broker.relay}: what comes from Redis, delivered in
    offset order, gaps healed from the streams, every message checked;
  - L{txpulse.pubsub.broker.outage}: when Redis goes away and comes back:
    publications that wait, are settled, or reach this process only;
  - L{txpulse.pubsub.broker.streams}: the Lua scripts, and the per-channel
    sequencer (L{txpulse.pubsub.broker.streams.Track});
  - L{txpulse.pubsub.broker.links}: the two connections to Redis.

The Redis client's parser: txredisapi parses the rest of a reply a
reactor turn after each bulk string (it pauses the connection meanwhile),
so a history read of a thousand publications took a thousand turns on a
busy process, with every reply behind it waiting (publications stalled
for seconds in the chaos test); the links parse all they received at
once instead (L{txpulse.pubsub.broker.links.linkProtocolClass}).

Guarantees
==========

While Redis is reachable: every publication Redis accepted reaches every
process subscribed to its channel, once, in offset order, with its
position, including across reconnections of the subscribed connection,
as long as the stream still holds it (C{size} and C{ttl}); a client that
resumes on any process gets what it missed from the stream. Redis with
an append-only file (C{appendfsync always}; C{everysec} may lose the last
second, and then offsets of that second are given again in the same
epoch) keeps positions and history across its restarts. Without
persistence a restart loses them: the next use makes a new epoch, and
clients resuming from the old one are told C{"recovered": false}, once.
C{tests/deploy/test_chaos.py} checks this end to end (three nodes behind
nginx, one SIGKILLed, one SIGTERMed, Redis restarted, with and without
its append-only file).

Cost
====

Measured with C{bench/redisbroker.py} (two brokers in one process, 100
subscribers, 100-byte messages, 500 in flight; medians of 5 runs on a
shared 2-core machine; throughput through Redis and back, CPU per
message):

  - the at-most-once pub/sub broker as it was: 13,500 messages/s, 73
    microseconds of Python CPU, 1.0 of Redis CPU;
  - the same with this broker's parser
    (L{txpulse.pubsub.broker.links.linkProtocolClass}): 25,800
    messages/s, 38 microseconds;
  - this broker, history off: 18,000 messages/s, 50 microseconds, 7.7 of
    Redis CPU; history on: 18,800 messages/s, 49 microseconds, 11.2 of
    Redis CPU (one Redis core: about 90,000 publications/s).

So positions cost about 12 microseconds of Python CPU per message (the
script's arguments, a Deferred per publication, the position to parse and
write) and 10 of Redis CPU, about 30% of the throughput at equal parser;
against the broker as it was, throughput is a third higher. Reading the
streams instead of pub/sub (C{XREAD BLOCK}, prototyped in the same bench,
with the same parser) was slower (16,200 messages/s, 56 microseconds),
needs a stream even with history off and one blocking read naming every
stream a process wants: fan-out stays on pub/sub, and the streams are read
only to heal.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._extras import MissingExtra
from ...logs.summary import SummaryLog
from ...wire.twistedinternals import maybeGlobalReactor
from ..history import History, Position
from .links import Link, send
from .outage import LOADING_RETRY, Outage
from .relay import DROP_LOG_INTERVAL, _summarizeDrops
from .scripts import _PUBLISH, MAX_CACHED
from .streams import Track, parseRead

__all__ = [
    "RedisBroker",
    "DEFAULT_PREFIX",
    "DEFAULT_POSITION_TTL",
    "DEFAULT_OUTAGE_BUFFER",
    # Defined here, or moved out of this module and re-exported.
    "DEFAULT_PORT",
    "DROP_LOG_INTERVAL",
    "LOADING_RETRY",
    "MAX_CACHED",
]

_log = Logger()

#: Prepended to every topic to make its Redis channel name.
DEFAULT_PREFIX = "txpulse:"

#: The port Redis listens on unless the URL says otherwise.
DEFAULT_PORT = 6379

#: Seconds a topic's position is kept in Redis at least after its last
#: publication (L{RedisBroker}'s C{positionTtl}): the floor under the
#: history's ttl, which is how long it is kept when longer. A topic quiet
#: for longer starts over in a new epoch (clients that resume are told
#: C{"recovered": false}, as they would be anyway: its history is gone).
#: It was a day, whatever the history's ttl: 100,000 one-message topics
#: then held 54 MB of Redis for a day after their history expired.
DEFAULT_POSITION_TTL = 60.0

#: Seconds publications wait for an unreachable Redis before they are
#: delivered locally only (L{RedisBroker}'s C{outageBuffer}): longer than a
#: Redis restart, short enough that local subscribers notice little.
DEFAULT_OUTAGE_BUFFER = 2.0


def _noHistory(channel: str) -> tuple[int, float]:
    return (0, 0.0)


def _txredisapi() -> Any:
    """
    Import C{txredisapi} (which imports the global reactor, so not before
    a broker is actually built).
    """
    try:
        import txredisapi  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as missing:
        if (missing.name or "").partition(".")[0] != "txredisapi":
            raise
        raise MissingExtra("redis") from None
    return txredisapi


class RedisBroker(Outage):
    """
    A L{txpulse.pubsub.hub.Broker} with positions, history and recovery
    across processes, through Redis (see the module docstring for the
    guarantees, and L{txpulse.pubsub.broker.scripts} for the data layout).

    @ivar origin: this broker's random identifier, which names its
        connections in C{CLIENT LIST}.
    @ivar prefix: prepended to a topic to make its Redis channel and key
        names.
    @ivar address: C{host:port} of the Redis server (for log lines; never
        the password).
    @ivar localOnly: publications Redis never got (no connection at the
        time), delivered to this process's subscribers only, without a
        position; since the broker started.
    @ivar unconfirmed: publications sent to Redis whose reply never came
        (the connection was lost) or was an error: delivered to this
        process's subscribers without a position, and (if Redis ran the
        script after all) to every process with one.
    @ivar healed: publications delivered from the stream because pub/sub
        had not brought them (a gap, a reconnection).
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        db: int | None = None,
        username: str | None = None,
        password: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        reactor: Any = None,
        retryPolicy: Callable[[int], float] | None = None,
        connectTimeout: float = 5.0,
        pingInterval: float | None = 15.0,
        pingTimeout: float = 10.0,
        positionTtl: float = DEFAULT_POSITION_TTL,
        outageBuffer: float = DEFAULT_OUTAGE_BUFFER,
        maxBuffered: int = 10_000,
    ) -> None:
        """
        @param host: the Redis server's host name or address.
        @param port: its TCP port.
        @param db: the database to C{SELECT} (where the positions and
            streams are; pub/sub ignores it, see the module docstring).
        @param username: for Redis 6 ACLs (C{AUTH username password}).
        @param password: for C{AUTH}.
        @param prefix: prepended to a topic to make its channel and key
            names.
        @param reactor: an C{IReactorTCP} and C{IReactorTime} (default: the
            global reactor).
        @param retryPolicy: seconds to wait before the Nth consecutive
            reconnection attempt (default: exponential backoff from 0.5 s to
            10 s, plus up to 1 s of jitter), as for L{twisted.application.internet.ClientService}.
        @param connectTimeout: seconds a TCP connection attempt may take.
        @param pingInterval: seconds between two C{PING}s on each connection
            (C{None}: never, and a silently dead connection goes unnoticed).
        @param pingTimeout: seconds within which any Redis reply must come
            before the connection is dropped and re-established.
        @param positionTtl: the least number of seconds a topic's position
            (epoch and offset) is kept in Redis after its last publication;
            it is kept as long as its history's ttl when that is longer.
            Past it, the topic starts over in a new epoch (clients that
            resume are told C{"recovered": false}).
        @param outageBuffer: seconds publications made while Redis is
            unreachable wait for it (at most C{maxBuffered} of them), to be
            published in order, with positions, once it is back (a Redis
            restart then loses nothing); past it, they and the next ones are
            delivered to this process's subscribers only, without positions
            (C{0}: at once).
        @param maxBuffered: the most publications waiting for Redis.
        """
        txredisapi = _txredisapi()
        reactor = maybeGlobalReactor(reactor)
        self._reactor = reactor
        self._connectionError: type[Exception] = txredisapi.ConnectionError
        self._responseError: type[Exception] = txredisapi.ResponseError
        self.origin = secrets.token_hex(8)
        self.prefix = prefix
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.positionTtl = positionTtl
        self.outageBuffer = outageBuffer
        self.maxBuffered = maxBuffered
        #: Publications waiting for Redis, and what gives up on them.
        self._buffered: list[tuple[str, str, Deferred[Position]]] = []
        self._giveUp: Any = None
        self._gaveUp = False
        #: Publications lost in flight with a connection: (number, channel,
        #: payload, answer), until Redis says whether it ran them.
        self._unanswered: list[tuple[int, str, str, Deferred[Position]]] = []
        #: Publications lost in flight and then delivered here without a
        #: position (given up on): (number, channel, payload), until Redis
        #: says whether it ran them; and, per channel, the payloads of those
        #: whose positioned copy (if Redis ran them) is not to be delivered
        #: here again.
        self._givenUp: list[tuple[int, str, str]] = []
        #: Numbers of publications lost in flight whose copy Redis already
        #: delivered here (so Redis ran them: not delivered again).
        self._ranInFlight: set[int] = set()
        self._deliveredHere: dict[str, list[str]] = {}
        self._sequence = 0
        self._originKey = f"{prefix}origin:{self.origin}".encode()
        self._deliver: Callable[..., None] | None = None
        self._limits: Callable[[str], tuple[int, float]] = _noHistory
        self._limitsOf: dict[str, tuple[int, float]] = {}
        self._argsOf: dict[str, tuple[tuple[bytes, bytes, bytes], str]] = {}
        #: The wanted channels, each with its sequencer.
        self._tracks: dict[str, Track] = {}
        self._started = False
        self._stopping = False
        # The loss window: since when Redis has been unusable (None while
        # both connections are ready), whether that was logged, and how many
        # messages were published only locally meanwhile.
        self._downSince: float | None = None
        self._lossLogged = False
        self._everConnected = False
        self._unsent = 0
        self._unsentInFlight = 0
        self._publishErrorLogged = False
        self.localOnly = 0
        #: Whether Redis refused to load the scripts (run them with EVAL).
        self._evalOnly = False
        self.unconfirmed = 0
        self.healed = 0
        self._pingInterval = pingInterval
        self._pinger: LoopingCall | None = None
        # Messages from Redis dropped: logged in aggregate.
        self._drops = SummaryLog(_summarizeDrops, DROP_LOG_INTERVAL, clock=reactor)

        endpoint = HostnameEndpoint(reactor, host, port, timeout=connectTimeout)
        if retryPolicy is None:
            retryPolicy = backoffPolicy(initialDelay=0.25, maxDelay=10.0, factor=2.0)
        options = {
            "charset": "utf-8",
            "dbid": db,
            "username": username,
            "password": password,
            "convertNumbers": False,
            "replyTimeout": pingTimeout,
        }
        self._publisher = Link(self, "pub", txredisapi.RedisProtocol, options, endpoint, retryPolicy)
        self._subscriber = Link(self, "sub", txredisapi.SubscriberProtocol, options, endpoint, retryPolicy)

    @classmethod
    def fromURL(cls, url: str, reactor: Any = None, **kwargs: Any) -> RedisBroker:
        """
        A broker for C{redis://[[username]:password@]host[:port][/db]}.

        @param reactor: as for L{RedisBroker.__init__}.
        @param kwargs: any other keyword argument of L{RedisBroker.__init__}
            (C{prefix}, C{retryPolicy}, ...).
        @raise ValueError: for a URL that is not C{redis://}, or a bad port
            or database number.
        """
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"not a redis:// URL: {parts.scheme}://...")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ValueError("the Redis URL has a bad port number") from None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the Redis database must be a number, not {path!r}")
        return cls(
            parts.hostname or "localhost",
            port,
            db=int(path) if path else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            reactor=reactor,
            **kwargs,
        )

    # -- the Broker interface ------------------------------------------------

    def start(self, deliver: Callable[..., None], limits: Callable[[str], tuple[int, float]] | None = None) -> None:
        """
        Deliver publications to C{deliver(channel, payload, offset,
        epoch)}, keeping C{limits(channel)} (size, ttl) of each channel's
        (default: none), and connect to Redis (in the background: until it
        is reachable, delivery is local only, without positions).
        """
        self._deliver = deliver
        if limits is not None:
            self._limits = limits
        if self._started:
            return
        self._started = True
        self._downSince = self._reactor.seconds()
        self._publisher.start()
        self._subscriber.start()
        if self._pingInterval is not None:
            self._pinger = LoopingCall(self._ping)
            self._pinger.clock = self._reactor
            self._pinger.start(self._pingInterval, now=False).addErrback(
                lambda failure: _log.failure("Pinging Redis failed", failure)
            )

    def subscribe(self, channel: str) -> None:
        """
        Receive C{channel} from Redis (idempotent); kept across
        reconnections.
        """
        if channel in self._tracks:
            return
        track = self._tracks[channel] = Track(channel, history=self._limitsFor(channel)[0] > 0)
        protocol = self._subscriber.protocol
        if protocol is not None:
            self._subscribeOn(protocol, track)

    def unsubscribe(self, channel: str) -> None:
        """
        Stop receiving C{channel} from Redis.
        """
        track = self._tracks.pop(channel, None)
        if track is None:
            return
        track.wake(everyone=True)
        self._deliveredHere.pop(channel, None)
        protocol = self._subscriber.protocol
        if protocol is not None:
            send(protocol, "UNSUBSCRIBE", self.prefix + channel)

    def publish(self, channel: str, payload: str) -> Deferred[Position] | None:
        """
        Give C{payload} the channel's next position and keep it, in Redis
        (L{txpulse.pubsub.broker.streams.PUBLISH}); every process subscribed to the channel, this one
        included, delivers it when Redis publishes it (in offset order).

        Without a connection to Redis: kept until Redis is back (then
        published, in order), for C{outageBuffer} seconds of outage; past
        that, delivered to this process's subscribers only, without a
        position, and counted (L{RedisBroker.localOnly}).

        @return: a L{Deferred} firing with the position Redis gave it, or
            failing if the reply never came (the publication is then
            delivered here without a position, and counted:
            L{RedisBroker.unconfirmed}) or Redis did not come back in time
            (delivered here only); C{None} once given up on Redis.
        """
        protocol = self._publisher.protocol
        if protocol is None:
            if self.outageBuffer > 0 and not self._gaveUp and len(self._buffered) < self.maxBuffered:
                waiting: Deferred[Position] = Deferred()
                self._buffered.append((channel, payload, waiting))
                self._scheduleGiveUp()
                return waiting
            self._unsent += 1
            self.localOnly += 1
            self._deliverUnpositioned(channel, payload)
            return None
        return self._publishOn(protocol, channel, payload)

    def _publishOn(self, protocol: Any, channel: str, payload: str) -> Deferred[Position]:
        (positionName, historyName, channelName), limits = self._scriptArgs(channel)
        # Published while the channel's subscription is not confirmed: its
        # echo may not come, so the reply delivers it (through the track,
        # which keeps the order, and drops the echo if it comes too).
        track = self._tracks.get(channel)
        if track is not None and not track.confirmed:
            track.holds += 1
        else:
            track = None
        self._sequence += 1
        sequence = self._sequence
        args = (channelName, payload, f"{limits} {secrets.token_hex(6)} {sequence}")
        running = self._run(protocol, _PUBLISH, (positionName, historyName, self._originKey), args)
        return running.addCallbacks(
            self._published,
            self._publishFailed,
            callbackArgs=(channel, payload, track),
            errbackArgs=(channel, payload, track, sequence),
        )

    def _published(self, reply: Any, channel: str, payload: str, track: Track | None) -> Position:
        epoch, _, number = str(reply).partition(" ")
        offset = int(number)
        if track is not None:
            track.holds -= 1
            if self._tracks.get(channel) is track:
                track.buffer.append((offset, epoch, payload))
                self._pump(track)
        return Position(offset, epoch)

    def history(self, channel: str, since: Position | None) -> Deferred[History]:
        """
        The channel's position, and with C{since} the publications after
        it if they are all kept (see L{History}), read in one script
        (L{txpulse.pubsub.broker.streams.READ}); a channel without a position gets a new epoch, at
        offset 0.

        Consistent with deliveries: read after the channel's subscription
        was confirmed, everything published after the answer reaches this
        process through pub/sub, and the answer waits until pub/sub has
        delivered what was published before it (a C{PING} on the
        subscribed connection, then the channel's track up to the
        answer's offset); read before, the answer is where the channel's
        track starts (if it had none), and the stream is read from there
        once the subscription is confirmed. (Read while the subscribed
        connection is down, with the track further behind: what the heal
        brings up to the answer's offset may reach the subscriber after
        the answer; clients drop it by offset.)

        @return: fails without a connection to Redis (the hub then answers
            C{"recovered": false} without a position).
        """
        protocol = self._publisher.protocol
        if protocol is None:
            return fail(self._connectionError(f"Redis at {self.address} is not reachable"))
        size, ttl = self._limitsFor(channel)
        track = self._tracks.get(channel)
        if track is not None and not track.confirmed:
            track.holds += 1
        else:
            track = None
        running = self._read(
            protocol,
            channel,
            since.epoch if since is not None else "",
            since.offset if since is not None else 0,
            int(ttl * 1000) if size else 0,
            "history",
        )

        def answered(reply: Any) -> History | Deferred[History]:
            history, _complete = parseRead(reply)
            if since is None:
                history = history._replace(recovered=False, publications=())
            if track is not None:
                track.seed(history)
                return history
            # Read with the subscription confirmed: pub/sub may still be
            # bringing publications up to the answer's offset. The answer
            # waits until they are delivered (the hub keeps them aside for
            # the subscriber, and drops those the answer has), so that
            # none reaches the subscriber after it, twice: a PING on the
            # subscribed connection, sent now, is answered after every
            # message published before the read (Redis keeps a
            # connection's order), then the track delivers up to the
            # answer's offset (unless a gap is being healed, at once).
            subscribed = self._subscriber.protocol
            if subscribed is None:
                return history
            try:
                barrier: Deferred[Any] = subscribed.execute_command("PING")
            except Exception:
                return history

            def caughtUp(_: object) -> History | Deferred[History]:
                current = self._tracks.get(channel)
                if current is None or current.epoch != history.epoch or current.offset >= history.offset:
                    return history
                delivered: Deferred[History] = Deferred()
                current.waitFor(history.epoch, history.offset, lambda: delivered.callback(history))
                return delivered

            return barrier.addBoth(caughtUp)

        def release(result: Any) -> Any:
            if track is not None:
                track.holds -= 1
                self._pump(track)
            return result

        return running.addCallback(answered).addBoth(release)

    def stop(self) -> Deferred[None]:
        """
        Close both connections and stop reconnecting; no more deliveries.

        @return: fires once both connections are closed.
        """
        self._stopping = True
        self._deliver = None
        for track in self._tracks.values():
            track.wake(everyone=True)
        self._tracks.clear()
        if self._giveUp is not None and self._giveUp.active():
            self._giveUp.cancel()
        self._giveUp = None
        buffered, self._buffered = self._buffered, []
        buffered += [(channel, payload, answer) for _, channel, payload, answer in self._unanswered]
        self._unanswered = []
        if buffered:
            _log.warn(
                "Stopped with {count} publication(s) waiting for Redis at {address}: not delivered",
                count=len(buffered),
                address=self.address,
            )
            failure = Failure(self._connectionError("the broker stopped"))
            for _channel, _payload, waiting in buffered:
                waiting.errback(failure)
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self._drops.stop()
        stopped = gatherResults([self._publisher.stop(), self._subscriber.stop()], consumeErrors=True)
        return stopped.addCallback(lambda _: None)

    # -- state ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """
        Whether both connections to Redis are up (so publishing reaches the
        other processes and their messages reach this one).
        """
        return self._publisher.protocol is not None and self._subscriber.protocol is not None

    @property
    def channels(self) -> frozenset[str]:
        """
        The Redis channels this broker wants to be subscribed to.
        """
        return frozenset(self.prefix + channel for channel in self._tracks)

    def confirmed(self, channel: str) -> bool:
        """
        Whether Redis confirmed this broker's subscription to C{channel}
        on its current connection (from then on, every publication of the
        channel reaches this process).
        """
        track = self._tracks.get(channel)
        return track is not None and track.confirmed

    def _ping(self) -> None:
        for link in (self._publisher, self._subscriber):
            if link.protocol is not None:
                # No answer within pingTimeout: txredisapi aborts the
                # connection, and the link reconnects.
                send(link.protocol, "PING")

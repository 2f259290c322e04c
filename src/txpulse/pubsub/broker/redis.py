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

Data in Redis (L{txpulse.pubsub.broker.streams} has the scripts)
================================================================

For hub channel C{C} (a topic, or C{namespace + "\\x1f" + topic}):

  - C{<prefix>position:C}, a hash: C{epoch} (12 random hex digits) and
    C{offset} (the latest). Kept as long as the channel's history (its
    ttl), and at least C{positionTtl} (60 s by default), after the last
    publication: a channel quiet for longer starts over in a new epoch,
    and a client resuming from the old one is told C{"recovered": false}
    (it would be anyway: its publications are gone with the history).
    So Redis holds a channel's keys for about its history's ttl, whatever
    the number of channels.
  - C{<prefix>history:C}, a stream: one entry per kept publication, with
    the id C{<offset>-0} (the offset I{is} the id: C{XRANGE} by offset)
    and fields C{p} (the JSON envelope) and C{t} (Redis' clock, ms).
    C{MAXLEN ~ size} (at least C{size} entries, a little more: Redis trims
    whole nodes), expires C{ttl} after the last publication; entries older
    than C{ttl} do not count for recovery. No stream with history off.
  - The pub/sub message on C{<prefix>C}: C{"<offset> <epoch> <envelope>"}.
  - C{<prefix>origin:<origin>}: the number of the last publication of
    this process Redis ran (see "When Redis goes away"), kept a day after
    its last publication (one key per process).

One Redis server (or a primary with replicas): Redis Cluster is not
supported (a script's keys would have to share a hash slot).

Publishing is one Lua script (C{EVALSHA}, loaded on every new connection;
C{EVAL} if Redis lost it): take the epoch, or create it if the hash is
absent (first use, expiry, or a Redis that lost its data; the stream is
deleted with it, offsets start again at 1), C{HINCRBY} the offset, C{XADD}
the entry, refresh the expiries, C{PUBLISH} the message, record the
publication's number in the origin key, and answer C{"<epoch> <offset>"}. Redis runs a script atomically, so offsets have no
gap and no duplicate across processes, and every subscriber of the channel
receives the publications in offset order. A second script answers
subscriptions: the position (creating it if absent) and, from a given
position, the publications after it if the epoch matches and the one right
after it is still kept and younger than the ttl.

Delivery: in offset order, gaps healed
======================================

Every publication, this process's own included, is delivered to local
subscribers when Redis publishes it back, so every process delivers the
same sequence. (The broker before positions delivered its own at once
and dropped the echo; with offsets that would have let a process deliver
its own N+1 before another process's N.) The cost is one round trip to
Redis before a process's own subscribers see its publication.

Each subscribed channel has a L{Track}: the last offset delivered. The
next offset is delivered at once. One further on (a gap: the subscribed
connection dropped, or Redis dropped it for a full output buffer) waits,
with everything after it, while the missing ones are read from the stream
(C{XRANGE}); what the stream no longer has is skipped, and clients see the
gap by offset. Every (re)confirmed subscription reads the stream from the
last delivered offset: a process that was cut off from Redis (or from its
subscribed connection) delivers what the others published meanwhile, in
order. A new epoch on pub/sub (Redis lost its data) is delivered as it
comes: clients see the epoch change.

Consistency with subscriptions (the L{txpulse.pubsub.hub.Broker}
contract): a history read after Redis confirmed the channel's
subscription is answered once pub/sub has delivered up to the answer's
offset (so none of those reaches the subscriber after it: the hub drops
the ones the answer has); one read before is where the track starts, and
the stream is read from there once the subscription is confirmed. Own
publications made before the subscription was confirmed are delivered
from the script's reply, through the track (in order, the echo dropped).

Other programs publish with positions by running the same script
(L{txpulse.pubsub.broker.streams.PUBLISH}, whose keys and arguments are a
supported interface; the README shows it with C{redis-cli --eval}): their
publications are numbered, kept and replayed like the servers' own. A
bare JSON envelope published on the channel (C{PUBLISH txpulse:news
'{"topic":"news","data":"hi"}'}) is live only: delivered to the
subscribers connected at that moment, without a position, kept nowhere,
so never replayed to a client that resumes, and it does not advance the
offsets (a resuming client is told C{"recovered": true} without it).

Every message from Redis is checked before it is relayed
(L{txpulse.pubsub.hub.checkEnvelope}): it must be strict JSON (no C{NaN}),
an object with exactly C{topic} and C{data}, and its C{topic} must be the
topic of the channel it came on, so a foreign publisher cannot make a
message look like another topic's. Anything else is dropped, with a
warning (the first one at once, then one line every L{DROP_LOG_INTERVAL}
seconds while drops go on, counting them per channel: a
L{txpulse.logs.summary.SummaryLog}).

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

When Redis goes away
====================

Nothing crashes, and nothing Redis might have is lost or doubled:

  - A publication made while the publishing connection is down waits for
    Redis (C{outageBuffer}, 2 s by default, at most C{maxBuffered}), and
    is published, in order and with its position, once Redis is back: a
    Redis restart loses nothing. Past C{outageBuffer} of outage, what
    waits and what comes next is delivered to this process's subscribers
    only, without a position, counted (L{RedisBroker.localOnly}) and
    logged: local delivery keeps working.
  - A publication whose script was in flight when the connection dropped
    waits too: every script also records the publication's number in this
    process's origin key (C{<prefix>origin:<origin>}), and Redis runs a
    connection's commands in order, so once the connection is back one
    C{GET} says which ones Redis ran (every process gets those from pub/sub
    or the streams) and which it did not (published again, before anything
    newer). Past C{outageBuffer}: delivered here at once, without a
    position, counted (L{RedisBroker.unconfirmed}), and its L{Deferred}
    fails; it is I{not} published again once Redis is back. If Redis ran
    it all the same (it was frozen, e.g. C{SIGSTOP}, and ran what it had
    received once it woke up), every other process gets it with its
    position, and this one does not deliver that copy (matched by
    channel and envelope text): this process's subscribers get each of its
    publications exactly once, in publishing order, the ones of the outage
    without a position. (Likewise, a copy that arrives while the
    publication is still waiting for the connection means Redis ran it: it
    is delivered with its position and not again at the give-up.)
  - Subscriptions made meanwhile are answered C{"recovered": false}
    without a position.

One warning is logged when Redis is lost (or cannot be reached at
start-up), with the reason; both connections then retry with exponential
backoff (from 0.5 s up to 10 s, plus up to 1 s of jitter). A publishing
connection is ready once Redis has loaded its data (C{LOADING} after a
restart with an append-only file) and the scripts. Once both are back,
every wanted channel is subscribed again and healed from its stream, and
one line logs how long Redis was gone and how many messages reached only
this process meanwhile. A connection that stops answering (a silent
network failure, a stopped server) is noticed by a C{PING} every
C{pingInterval} seconds that must be answered within C{pingTimeout}.

The Redis client's parser: txredisapi parses the rest of a reply a
reactor turn after each bulk string (it pauses the connection meanwhile),
so a history read of a thousand publications took a thousand turns on a
busy process, with every reply behind it waiting (publications stalled
for seconds in the chaos test); the links parse all they received at
once instead (L{txpulse.pubsub.broker.links.linkProtocolClass}).

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
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, FirstError, fail, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._extras import MissingExtra
from ...logs.summary import SummaryLog
from ...wire.twistedinternals import maybeGlobalReactor
from ..history import History, Position
from ..hub import checkEnvelope
from .links import Link, ignore, send
from .streams import PUBLISH, READ, Script, Track, historyKey, parseMessage, parseRead, positionKey

__all__ = ["RedisBroker", "DEFAULT_PREFIX", "DEFAULT_POSITION_TTL", "DEFAULT_OUTAGE_BUFFER"]

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

#: Channels whose limits (and script arguments) are cached; past it, the
#: caches start over (the hub's limits hook is asked again).
MAX_CACHED = 10_000

#: Seconds publications wait for an unreachable Redis before they are
#: delivered locally only (L{RedisBroker}'s C{outageBuffer}): longer than a
#: Redis restart, short enough that local subscribers notice little.
DEFAULT_OUTAGE_BUFFER = 2.0

#: Seconds between two attempts to load the scripts while Redis is still
#: loading its data.
LOADING_RETRY = 0.1

_PUBLISH = Script(PUBLISH)
_READ = Script(READ)

#: Seconds between two log lines about dropped (malformed or spoofed)
#: messages from Redis.
DROP_LOG_INTERVAL = 10.0


def _summarizeDrops(key: str, counts: Mapping[str, int], seconds: float) -> None:
    top = sorted(counts.items(), key=lambda item: -item[1])[:3]
    _log.warn(
        "Dropped {count} more message(s) from Redis in the last {seconds:.0f}s (malformed or spoofed); "
        "most on {channels}",
        count=sum(counts.values()),
        seconds=seconds,
        channels=", ".join(f"{channel!r} ({count})" for channel, count in top),
    )


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


class RedisBroker:
    """
    A L{txpulse.pubsub.hub.Broker} with positions, history and recovery
    across processes, through Redis (see the module docstring for the data
    layout and the guarantees).

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
        (L{PUBLISH}); every process subscribed to the channel, this one
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

    def history(self, channel: str, since: Position | None) -> Deferred[History]:
        """
        The channel's position, and with C{since} the publications after
        it if they are all kept (see L{History}), read in one script
        (L{READ}); a channel without a position gets a new epoch, at
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

    # -- publications and reads ------------------------------------------------

    def _limitsFor(self, channel: str) -> tuple[int, float]:
        limits = self._limitsOf.get(channel)
        if limits is None:
            if len(self._limitsOf) >= MAX_CACHED:
                # Many short-lived topics: start over rather than grow.
                self._limitsOf.clear()
                self._argsOf.clear()
            size, ttl = self._limits(channel)
            if size <= 0 or ttl <= 0:
                size, ttl = 0, 0.0
            limits = self._limitsOf[channel] = (int(size), float(ttl))
        return limits

    def _scriptArgs(self, channel: str) -> tuple[tuple[bytes, bytes, bytes], str]:
        """
        The keys and the pub/sub channel of C{channel}, encoded, and
        C{"<size> <ttl> <keep>"} (ms) for the publish script; cached per
        channel (bytes go to Redis as they are: encoding them on every
        publication was a measurable part of its cost).
        """
        cached = self._argsOf.get(channel)
        if cached is None:
            size, ttl = self._limitsFor(channel)
            ttlMs = max(1, int(ttl * 1000))
            keep = max(ttlMs, int(self.positionTtl * 1000))
            names = (positionKey(self.prefix, channel), historyKey(self.prefix, channel), self.prefix + channel)
            encoded = tuple(name.encode("utf-8") for name in names)
            cached = self._argsOf[channel] = ((encoded[0], encoded[1], encoded[2]), f"{size} {ttlMs} {keep}")
        return cached

    def _run(
        self, protocol: Any, script: Script, keys: tuple[str | bytes, ...], args: tuple[object, ...]
    ) -> Deferred[Any]:
        """
        Run C{script}: C{EVALSHA} (the connection loaded it before it was
        ready), or C{EVAL} if Redis refused to load it (e.g. an ACL without
        C{SCRIPT}). No reply timeout: a dead connection is noticed by the
        pings, and fails every command in flight.

        Redis no longer knowing the script (C{NOSCRIPT}: C{SCRIPT FLUSH},
        a failover) drops the connection, and every command in flight
        fails; the new connection loads the scripts again. Running each
        refused one again with C{EVAL} instead could run a publication
        after one sent later (the later one's C{EVALSHA} may already find
        the script the first C{EVAL} loaded): offsets out of publishing
        order.
        """
        try:
            if self._evalOnly:
                running: Deferred[Any] = protocol.execute_command(
                    b"EVAL", script.sourceBytes, b"%d" % len(keys), *keys, *args, apply_timeout=False
                )
            else:
                running = protocol.execute_command(
                    b"EVALSHA", script.shaBytes, b"%d" % len(keys), *keys, *args, apply_timeout=False
                )
        except Exception:
            return fail()

        def unknown(failure: Failure) -> Failure:
            if failure.check(self._responseError) and str(failure.value).startswith("NOSCRIPT"):
                if protocol.connected:
                    _log.warn(
                        "Redis at {address} lost the broker's scripts (SCRIPT FLUSH?); reconnecting to load them",
                        address=self.address,
                    )
                    protocol.transport.abortConnection()
            return failure

        return running.addErrback(unknown)

    def _read(self, protocol: Any, channel: str, epoch: str, after: int, ttlMs: int, mode: str) -> Deferred[Any]:
        size, ttl = self._limitsFor(channel)
        keep = max(int(ttl * 1000), int(self.positionTtl * 1000))
        keys = (positionKey(self.prefix, channel), historyKey(self.prefix, channel))
        return self._run(protocol, _READ, keys, (epoch, after, ttlMs, secrets.token_hex(6), keep, mode))

    def _published(self, reply: Any, channel: str, payload: str, track: Track | None) -> Position:
        epoch, _, number = str(reply).partition(" ")
        offset = int(number)
        if track is not None:
            track.holds -= 1
            if self._tracks.get(channel) is track:
                track.buffer.append((offset, epoch, payload))
                self._pump(track)
        return Position(offset, epoch)

    def _publishFailed(
        self, failure: Failure, channel: str, payload: str, track: Track | None, sequence: int
    ) -> Failure | Deferred[Position]:
        """
        A publication's script failed. The connection was lost with it in
        flight: whether Redis ran it is unknown until the connection is
        back (the origin key says), so it waits: then it
        is published again if Redis did not run it, or left to the streams
        if it did; past C{outageBuffer}, delivered here only. Refused by
        Redis (e.g. out of memory): delivered here only, counted, the
        first refusal per connection logged.
        """
        if track is not None:
            track.holds -= 1
            if self._tracks.get(channel) is track:
                self._pump(track)
        if failure.check(self._connectionError) and not self._stopping:
            answer: Deferred[Position] = Deferred()
            self._unanswered.append((sequence, channel, payload, answer))
            self._scheduleGiveUp()
            return answer
        self._unsent += 1
        self.unconfirmed += 1
        self._deliverUnpositioned(channel, payload)
        if not failure.check(self._connectionError) and not self._publishErrorLogged:
            self._publishErrorLogged = True
            _log.warn(
                "Redis at {address} refused a publication: {error}; delivered to this process only "
                "(further errors on this connection are not logged)",
                address=self.address,
                error=failure.getErrorMessage(),
            )
        return failure

    def _scheduleGiveUp(self) -> None:
        if self._giveUp is None and not self._gaveUp:
            since = self._downSince if self._downSince is not None else self._reactor.seconds()
            delay = max(0.0, since + self.outageBuffer - self._reactor.seconds())
            self._giveUp = self._reactor.callLater(delay, self._deliverBuffered)

    def _settleUnanswered(self, protocol: Any) -> Deferred[None]:
        """
        The publishing connection is back (not yet ready): ask Redis which
        of the publications lost in flight it ran (the origin key holds the
        number of the last one; a connection's commands run in order), and
        publish the others again, in order, before anything newer.
        """
        if not self._unanswered and not self._givenUp:
            return succeed(None)
        asking: Deferred[Any] = protocol.execute_command(b"GET", self._originKey)

        def settle(last: Any) -> None:
            ran = int(last) if last is not None else 0
            givenUp, self._givenUp = self._givenUp, []
            for sequence, channel, payload in givenUp:
                if sequence > ran:
                    # Redis never ran it: no copy will come, and it is not
                    # published again (it was delivered here, and its
                    # Deferred failed: not accepted).
                    self._forget(channel, payload)
                # Else Redis ran it: its copy comes (pub/sub or the stream)
                # and is delivered to the other processes only.
            unanswered, self._unanswered = self._unanswered, []
            self._ranInFlight = set()
            for sequence, channel, payload, answer in unanswered:
                if sequence <= ran:
                    # Redis ran it: every process (this one too) gets it,
                    # with its position, from pub/sub or the stream.
                    answer.errback(Failure(self._connectionError("published, but the reply was lost")))
                else:
                    self._publishOn(protocol, channel, payload).chainDeferred(answer)

        return asking.addCallback(settle)

    def _deliverBuffered(self) -> None:
        """
        Redis stayed away for C{outageBuffer} seconds: deliver what waited
        for it to this process's subscribers only, without positions (and
        so the next ones, until it is back), and count them.
        """
        self._giveUp = None
        self._gaveUp = True
        unanswered, self._unanswered = self._unanswered, []
        ranInFlight, self._ranInFlight = self._ranInFlight, set()
        for sequence, channel, payload, answer in unanswered:
            # Whether Redis ran it is unknown: delivered here now, and if
            # Redis did run it, its positioned copy is delivered to the
            # other processes only (exactly once here too). The origin key
            # says which, once Redis is back (_settleUnanswered).
            if sequence in ranInFlight:
                answer.errback(Failure(self._connectionError("published, but the reply was lost")))
                continue
            self._unsent += 1
            self._unsentInFlight += 1
            self.unconfirmed += 1
            self._deliverUnpositioned(channel, payload)
            if channel in self._tracks and len(self._givenUp) < self.maxBuffered:
                self._givenUp.append((sequence, channel, payload))
                self._deliveredHere.setdefault(channel, []).append(payload)
            answer.errback(Failure(self._connectionError(f"Redis at {self.address} is unreachable")))
        buffered, self._buffered = self._buffered, []
        if buffered:
            _log.warn(
                "Redis at {address} still unreachable after {seconds:g} s: {count} publication(s) that waited for "
                "it delivered to this process's subscribers only, and the next ones at once",
                address=self.address,
                seconds=self.outageBuffer,
                count=len(buffered),
            )
        failure = Failure(self._connectionError(f"Redis at {self.address} is unreachable: delivered locally only"))
        for channel, payload, waiting in buffered:
            self._unsent += 1
            self.localOnly += 1
            self._deliverUnpositioned(channel, payload)
            waiting.errback(failure)

    def _publishBuffered(self, protocol: Any) -> None:
        """
        The publishing connection is ready: publish what waited for it, in
        order, before anything newer.
        """
        if self._giveUp is not None and self._giveUp.active():
            self._giveUp.cancel()
        self._giveUp = None
        self._gaveUp = False
        buffered, self._buffered = self._buffered, []
        for channel, payload, waiting in buffered:
            self._publishOn(protocol, channel, payload).chainDeferred(waiting)

    def _forget(self, channel: str, payload: str) -> None:
        """
        C{payload}, delivered here without a position, will not come from
        Redis (again) on C{channel}: stop watching for it.
        """
        waiting = self._deliveredHere.get(channel)
        if waiting and payload in waiting:
            waiting.remove(payload)
            if not waiting:
                del self._deliveredHere[channel]

    def _deliverPositioned(self, channel: str, payload: str, offset: int, epoch: str) -> None:
        """
        Deliver a publication from Redis (with its position) here, unless it
        is the copy of one of this process's publications already delivered
        here without a position (lost in flight, given up on, and run by
        Redis after all): that one only moves the channel's track on.
        Matched by payload (the exact envelope text), first come first
        matched: another process publishing the very same envelope while
        the copy is awaited has its own delivery taken for the copy, so the
        count and the content are right, not the exact spot.
        """
        deliver = self._deliver
        if deliver is None:
            return
        if self._deliveredHere:
            waiting = self._deliveredHere.get(channel)
            if waiting and payload in waiting:
                self._forget(channel, payload)
                return
        if self._unanswered:
            # The copy of a publication lost in flight, before it is given
            # up on: Redis ran it, so it is not to be delivered here again
            # without a position.
            for sequence, lost, lostPayload, _ in self._unanswered:
                if lost == channel and lostPayload == payload and sequence not in self._ranInFlight:
                    self._ranInFlight.add(sequence)
                    break
        deliver(channel, payload, offset, epoch)

    def _deliverUnpositioned(self, channel: str, payload: str) -> None:
        deliver = self._deliver
        if deliver is not None:
            try:
                deliver(channel, payload, None, None)
            except Exception:
                _log.failure("Delivering a local publication to {channel!r} failed", Failure(), channel=channel)

    def _subscribeOn(self, protocol: Any, track: Track) -> None:
        """
        C{SUBSCRIBE} to C{track}'s channel; once Redis confirms it, heal
        the track from the stream (what was published before the
        subscription took effect, after what was delivered).
        """
        try:
            subscribing = protocol.execute_command("SUBSCRIBE", self.prefix + track.channel, apply_timeout=False)
        except Exception:
            return  # the link is going down; it subscribes again when back

        def confirmed(_: object) -> None:
            if self._tracks.get(track.channel) is track and self._subscriber.protocol is protocol:
                track.confirmed = True
                track.needsHeal = True
                self._pump(track)

        subscribing.addCallbacks(confirmed, ignore)

    def _pump(self, track: Track, afterRead: bool = False) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        try:
            track.pump(self._deliverPositioned, self._heal, afterRead)
        except Exception:
            _log.failure("Delivering publications of {channel!r} failed", Failure(), channel=track.channel)

    def _heal(self, track: Track) -> bool:
        """
        Read C{track}'s channel from the stream after what it delivered.

        @return: whether the read started (not without a connection).
        """
        protocol = self._publisher.protocol
        if protocol is None or track.epoch is None:
            return False
        track.reading = True
        reading = self._read(protocol, track.channel, track.epoch, track.offset, 0, "heal")

        def answered(reply: Any) -> None:
            if self._tracks.get(track.channel) is not track:
                return
            history, _complete = parseRead(reply)
            deliver = self._deliver
            if deliver is None:
                return
            before = track.offset if history.epoch == track.epoch else 0
            self.healed += sum(1 for offset, _ in history.publications if offset > before)
            track.answered(history, self._deliverPositioned)
            self._pump(track, afterRead=True)

        def failed(failure: Failure) -> None:
            if self._tracks.get(track.channel) is not track:
                return
            track.reading = False
            if failure.check(self._connectionError):
                track.needsHeal = True  # again once the connection is back
                self._pump(track)
                return
            _log.failure("Reading the stream of {channel!r} failed", failure, channel=track.channel)
            self._pump(track, afterRead=True)

        reading.addCallbacks(answered, failed).addErrback(
            lambda failure: _log.failure("Healing {channel!r} failed", failure, channel=track.channel)
        )
        return True

    # -- from the links --------------------------------------------------------

    def _prepare(self, link: Link, protocol: Any) -> Deferred[Any]:
        """
        What a connection needs before it is ready: the publishing one,
        both scripts loaded (so that C{EVALSHA} finds them, and publications
        keep their order).
        """
        if link is not self._publisher:
            return succeed(None)
        loaded: Deferred[Any] = Deferred()

        def load() -> None:
            if not protocol.connected:
                return  # lost: the next connection prepares again
            try:
                loads = [protocol.execute_command("SCRIPT", "LOAD", script.source) for script in (_PUBLISH, _READ)]
            except Exception:
                return
            gatherResults(loads, consumeErrors=True).addCallbacks(done, refused)

        def done(_: object) -> None:
            self._evalOnly = False
            self._settleUnanswered(protocol).chainDeferred(loaded)

        def refused(failure: Failure) -> None:
            error = failure.value.subFailure.value if isinstance(failure.value, FirstError) else failure.value
            if not isinstance(error, self._responseError):
                return  # lost meanwhile
            if str(error).startswith(("LOADING", "BUSY", "MASTERDOWN")):
                # Redis is loading its data (after a restart with an
                # append-only file): not ready before it is done, or
                # publications would be refused, or find no script.
                self._reactor.callLater(LOADING_RETRY, load)
                return
            # Refused for good (an ACL without SCRIPT): EVAL does without.
            self._evalOnly = True
            self._settleUnanswered(protocol).chainDeferred(loaded)

        load()
        return loaded

    def _linkReady(self, link: Link) -> None:
        protocol = link.protocol
        if link is self._subscriber:
            # Resubscribe: Redis forgot the channels along with the old
            # connection. Each confirmation heals its channel.
            for channel in sorted(self._tracks):
                self._subscribeOn(protocol, self._tracks[channel])
        else:
            self._publishErrorLogged = False
            self._publishBuffered(protocol)
            # Heals that waited for a connection to read on.
            for track in list(self._tracks.values()):
                if track.needsHeal:
                    self._pump(track)
        if not self.connected or self._downSince is None:
            return
        gone = self._reactor.seconds() - self._downSince
        if self._lossLogged:
            _log.info(
                "Redis at {address} is back after {gone:.1f} s; resubscribed to {count} channel(s); "
                "{unsent} message(s) published meanwhile reached this process only{inFlight}",
                address=self.address,
                gone=gone,
                unsent=self._unsent,
                count=len(self._tracks),
                inFlight=(
                    f" ({self._unsentInFlight} of them sent when it was lost: those Redis ran reach the others "
                    "from its streams)"
                    if self._unsentInFlight
                    else ""
                ),
            )
        else:
            _log.info("Connected to Redis at {address}", address=self.address)
        self._everConnected = True
        self._downSince = None
        self._lossLogged = False
        self._unsent = 0
        self._unsentInFlight = 0

    def _linkLost(self, link: Link, why: str) -> None:
        if link is self._subscriber:
            for track in self._tracks.values():
                track.confirmed = False
                # Answers waiting for pub/sub to catch up go now: should the
                # heal bring some of their publications again, clients drop
                # them by offset.
                track.wake(everyone=True)
        if self._stopping:
            return
        if self._downSince is None:
            self._downSince = self._reactor.seconds()
        self._reportLoss(why)

    def _attemptFailed(self, why: str) -> None:
        if not self._stopping:
            self._reportLoss(why)

    def _reportLoss(self, why: str) -> None:
        if self._lossLogged:
            return
        self._lossLogged = True
        _log.warn(
            "{what} Redis at {address} ({why}); delivering to this process's subscribers only, without "
            "positions, reconnecting",
            what="Lost" if self._everConnected else "Cannot reach",
            address=self.address,
            why=why,
        )

    def _messageReceived(self, pattern: object, channel: object, message: object) -> None:
        # Called from inside txredisapi's parser: an exception escaping
        # would leave it in the middle of a reply.
        try:
            self._relay(channel, message)
        except Exception:
            _log.failure("Handling a message from Redis on {channel!r} failed", Failure(), channel=channel)

    def _relay(self, channel: object, message: object) -> None:
        """
        A message from Redis: C{"<offset> <epoch> <envelope>"} from the
        publish script, or a bare C{"{...}"} envelope from another program
        (delivered without a position).
        """
        deliver = self._deliver
        if deliver is None or not isinstance(channel, str) or not channel.startswith(self.prefix):
            return
        name = channel[len(self.prefix) :]
        track = self._tracks.get(name)
        if track is None:
            return  # in flight when we unsubscribed
        if not isinstance(message, str):
            self._drop(channel, "not UTF-8")
            return
        if message.startswith("{"):
            refused = checkEnvelope(name, message)
            if refused is not None:
                self._drop(channel, refused)
                return
            self._deliverUnpositioned(name, message)
            return
        parsed = parseMessage(message)
        if parsed is None:
            self._drop(channel, "not a txpulse message")
            return
        offset, epoch, payload = parsed
        refused = checkEnvelope(name, payload)
        if refused is not None:
            self._drop(channel, refused)
            return
        if (
            offset == track.offset + 1
            and epoch == track.epoch
            and not (track.buffer or track.holds or track.reading or track.needsHeal)
        ):
            # The usual case: the next one, nothing waiting.
            track.offset = offset
            try:
                self._deliverPositioned(name, payload, offset, epoch)
            except Exception:
                _log.failure("Delivering a message from Redis to {channel!r} failed", Failure(), channel=name)
            if track.waiters:
                track.wake()
            return
        track.buffer.append(parsed)
        self._pump(track)

    def _drop(self, channel: str, why: str) -> None:
        """
        Drop a message from Redis, with a warning: the first at once, then
        one summary every L{DROP_LOG_INTERVAL} seconds while drops go on (a
        foreign publisher must not flood the log).
        """
        if self._drops.note("", channel):
            _log.warn(
                "Dropped a message from Redis on channel {channel!r}: {why}; further drops are summed up "
                "every {interval:g}s",
                channel=channel,
                why=why,
                interval=DROP_LOG_INTERVAL,
            )

    def _ping(self) -> None:
        for link in (self._publisher, self._subscriber):
            if link.protocol is not None:
                # No answer within pingTimeout: txredisapi aborts the
                # connection, and the link reconnects.
                send(link.protocol, "PING")

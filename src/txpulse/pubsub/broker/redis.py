# -*- test-case-name: tests.redis.test_redis_broker -*-
"""
The Redis broker: several server processes (on one machine or many) fan
out as one, through Redis pub/sub.

Use it with C{twistd txpulse --broker redis://host:port/db} (or
C{redis://:password@host:port/db}, C{redis://user:password@...}), or from
code::

    hub = Hub(RedisBroker.fromURL("redis://127.0.0.1:6379/0"))

How it works
============

  - Every process keeps B{two} connections to Redis, whatever the number of
    WebSockets and topics: one in subscribed mode (Redis allows nothing but
    C{(UN)SUBSCRIBE} and C{PING} on it) and one for C{PUBLISH}.
  - Topic C{T} travels on the Redis channel C{<prefix>T} (prefix
    C{"txpulse:"} by default), so txpulse shares a Redis with other users
    without clashing. Redis pub/sub channels are global: the C{/db} part of
    the URL selects a database (and is checked) but does not separate
    channels. Give each deployment sharing a Redis its own C{prefix}.
  - The process subscribes to C{<prefix>T} only while some local client
    wants C{T}: the hub calls L{RedisBroker.subscribe} on the first local
    subscriber and L{RedisBroker.unsubscribe} after the last one.
  - The connections show up in C{CLIENT LIST} as
    C{txpulse-sub-<origin>} and C{txpulse-pub-<origin>}, where C{origin}
    is a random identifier of the process (L{RedisBroker.origin}). A
    connection counts as up once Redis has answered that C{CLIENT SETNAME}
    (a TCP connection to a stopped server does not).

Local delivery, and no duplicates
=================================

A message published in this process is delivered to this process's own
subscribers B{directly}, at once, whether Redis is reachable or not, and
published to Redis for the others. Each Redis message is tagged with the
publishing process's origin (C{"<origin> <JSON envelope>"}), and the echo
of our own messages that Redis sends back is dropped. So each local
subscriber receives each message exactly once.

Why not rely on the Redis echo while connected and deliver locally only
while disconnected: a message published just before the connection drops
would be lost locally or delivered twice, depending on whether its echo
made it, and while a broken connection is not yet noticed (a silent
network failure) local delivery would stop too. Local subscribers would
also wait for a round trip to Redis.

Ordering: messages from one publishing process to a topic arrive
everywhere in the order they were published (one connection to Redis per
direction, and Redis keeps order per connection). Messages from different
processes have no global order: each process sees its own messages
immediately and the others' when Redis delivers them.

Other programs may publish too: a Redis message that is a bare JSON
envelope (a JSON object), e.g.
C{PUBLISH txpulse:news '{"topic":"news","data":"hi"}'}, is delivered as
it is to the subscribers of C{news} in every process.

Every message from Redis (another txpulse process's too: the origin tag
is no proof) is checked before it is relayed
(L{txpulse.pubsub.hub.checkEnvelope}): it must be strict JSON (no C{NaN}), an
object with exactly C{topic} and C{data}, and its C{topic} must be the
topic of the channel it came on, so a foreign publisher cannot make a
message look like another topic's. Anything else is dropped, with a
warning (the first one at once, then one line every L{DROP_LOG_INTERVAL}
seconds while drops go on, counting them per channel: a
L{txpulse.logs.summary.SummaryLog}).

Delivery guarantee
==================

B{At-most-once across processes.} Redis pub/sub stores nothing: a message
published while Redis is unreachable from the publishing process is
delivered to that process's own subscribers only, and a process that is
cut off from Redis misses whatever the others publish meanwhile. Nothing is
replayed after the connection comes back. Within one process, delivery
does not depend on Redis at all.

No positions yet: this broker has no C{history} method, so the hub
delivers C{{"topic", "data"}} without C{"offset"}/C{"epoch"}, answers
subscriptions C{{"subscribed": T}} and every C{"since"} with
C{"recovered": false}. What a broker must do to give positions and
recovery across processes (offsets assigned atomically in Redis, e.g. a
Lua script doing C{INCR} and C{XADD ... MAXLEN ~ size} together; epochs
kept in Redis; C{history(channel, since)} read from the stream; deliveries
in offset order with gaps healed from the stream) is the contract in
L{txpulse.pubsub.hub.Broker}, which the hub and the in-process broker
(L{txpulse.pubsub.broker.memory}) already follow.

When Redis goes away
====================

Nothing crashes and local delivery keeps working. One warning is logged
when Redis is lost (or cannot be reached at start-up), with the reason;
both connections then retry with exponential backoff (from 0.5 s up to
10 s, plus up to 1 s of jitter); once both are back, every wanted channel is subscribed
again and one line logs how long Redis was gone and how many messages
reached only this process meanwhile. A connection that stops answering
(a silent network failure, a stopped server) is noticed by a C{PING}
every C{pingInterval} seconds that must be answered within
C{pingTimeout}.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from ..._extras import MissingExtra
from ...logs.summary import SummaryLog
from ...wire.twistedinternals import clientServiceLoggingTo, maybeGlobalReactor
from ..hub import checkEnvelope

__all__ = ["RedisBroker", "DEFAULT_PREFIX"]

_log = Logger()

#: Prepended to every topic to make its Redis channel name.
DEFAULT_PREFIX = "txpulse:"

#: The port Redis listens on unless the URL says otherwise.
DEFAULT_PORT = 6379

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
    A L{txpulse.pubsub.hub.Broker} that carries messages between processes through
    Redis pub/sub (see the module docstring for the guarantees).

    @ivar origin: this broker's random identifier, which tags the messages
        it publishes and names its connections in C{CLIENT LIST}.
    @ivar prefix: prepended to a topic to make its Redis channel name.
    @ivar address: C{host:port} of the Redis server (for log lines; never
        the password).
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
    ) -> None:
        """
        @param host: the Redis server's host name or address.
        @param port: its TCP port.
        @param db: the database to C{SELECT} (pub/sub ignores it; see the
            module docstring).
        @param username: for Redis 6 ACLs (C{AUTH username password}).
        @param password: for C{AUTH}.
        @param prefix: prepended to a topic to make its channel name.
        @param reactor: an C{IReactorTCP} and C{IReactorTime} (default: the
            global reactor).
        @param retryPolicy: seconds to wait before the Nth consecutive
            reconnection attempt (default: exponential backoff from 0.5 s to
            10 s, plus up to 1 s of jitter), as for L{ClientService}.
        @param connectTimeout: seconds a TCP connection attempt may take.
        @param pingInterval: seconds between two C{PING}s on each connection
            (C{None}: never, and a silently dead connection goes unnoticed).
        @param pingTimeout: seconds within which any Redis reply must come
            before the connection is dropped and re-established.
        """
        txredisapi = _txredisapi()
        reactor = maybeGlobalReactor(reactor)
        self._reactor = reactor
        self._connectionError: type[Exception] = txredisapi.ConnectionError
        self._responseError: type[Exception] = txredisapi.ResponseError
        self.origin = secrets.token_hex(8)
        self.prefix = prefix
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._tag = self.origin + " "
        self._deliver: Callable[[str, str], None] | None = None
        self._wanted: set[str] = set()
        self._started = False
        self._stopping = False
        # The loss window: since when Redis has been unusable (None while
        # both connections are ready), whether that was logged, and how many
        # messages were published only locally meanwhile.
        self._downSince: float | None = None
        self._lossLogged = False
        self._everConnected = False
        self._unsent = 0
        self._publishErrorLogged = False
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
        self._publisher = _Link(self, "pub", txredisapi.RedisProtocol, options, endpoint, retryPolicy)
        self._subscriber = _Link(self, "sub", txredisapi.SubscriberProtocol, options, endpoint, retryPolicy)

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

    def start(self, deliver: Callable[[str, str], None]) -> None:
        """
        Deliver messages to C{deliver(topic, payload)} and connect to Redis
        (in the background: until it is reachable, delivery is local only).
        """
        self._deliver = deliver
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

    def subscribe(self, topic: str) -> None:
        """
        Receive C{topic} from Redis (idempotent); kept across reconnections.
        """
        if topic in self._wanted:
            return
        self._wanted.add(topic)
        protocol = self._subscriber.protocol
        if protocol is not None:
            _send(protocol, "SUBSCRIBE", self.prefix + topic)

    def unsubscribe(self, topic: str) -> None:
        """
        Stop receiving C{topic} from Redis.
        """
        if topic not in self._wanted:
            return
        self._wanted.discard(topic)
        protocol = self._subscriber.protocol
        if protocol is not None:
            _send(protocol, "UNSUBSCRIBE", self.prefix + topic)

    def publish(self, topic: str, payload: str) -> None:
        """
        Publish C{payload} to the other processes through Redis (if it is
        reachable), then deliver it to the local subscribers.
        """
        # Published before the local delivery: should a local subscriber
        # publish in turn, the other processes still see the two messages in
        # the same order as this one.
        protocol = self._publisher.protocol
        if protocol is None or not _send(
            protocol, "PUBLISH", self.prefix + topic, self._tag + payload, errback=self._publishFailed
        ):
            self._unsent += 1
        deliver = self._deliver
        if deliver is not None:
            deliver(topic, payload)

    def stop(self) -> Deferred[None]:
        """
        Close both connections and stop reconnecting; no more deliveries.

        @return: fires once both connections are closed.
        """
        self._stopping = True
        self._deliver = None
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
        return frozenset(self.prefix + topic for topic in self._wanted)

    # -- from the links --------------------------------------------------------

    def _linkReady(self, link: _Link) -> None:
        protocol = link.protocol
        if link is self._subscriber:
            # Resubscribe: Redis forgot the channels along with the old
            # connection.
            for topic in sorted(self._wanted):
                _send(protocol, "SUBSCRIBE", self.prefix + topic)
        else:
            self._publishErrorLogged = False
        if not self.connected or self._downSince is None:
            return
        gone = self._reactor.seconds() - self._downSince
        if self._lossLogged:
            _log.info(
                "Redis at {address} is back after {gone:.1f} s; resubscribed to {count} channel(s); "
                "{unsent} message(s) published meanwhile reached this process only",
                address=self.address,
                gone=gone,
                unsent=self._unsent,
                count=len(self._wanted),
            )
        else:
            _log.info("Connected to Redis at {address}", address=self.address)
        self._everConnected = True
        self._downSince = None
        self._lossLogged = False
        self._unsent = 0

    def _linkLost(self, link: _Link, why: str) -> None:
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
            "{what} Redis at {address} ({why}); delivering to this process's subscribers only, reconnecting",
            what="Lost" if self._everConnected else "Cannot reach",
            address=self.address,
            why=why,
        )

    def _publishFailed(self, failure: Failure) -> None:
        # A connection lost with messages in flight fails them: whether Redis
        # got them is unknown (at-most-once), and the loss itself is logged.
        # Any other error (e.g. Redis out of memory) is logged once per
        # connection, not once per message.
        if failure.check(self._connectionError) or self._publishErrorLogged:
            return
        self._publishErrorLogged = True
        _log.warn(
            "Redis at {address} refused a PUBLISH: {error} (further errors on this connection are not logged)",
            address=self.address,
            error=failure.getErrorMessage(),
        )

    def _messageReceived(self, pattern: object, channel: object, message: object) -> None:
        """
        A message from Redis: C{"<origin> <envelope>"} from a txpulse
        process, or a bare C{"{...}"} envelope from another program.
        """
        deliver = self._deliver
        if deliver is None or not isinstance(channel, str) or not channel.startswith(self.prefix):
            return
        topic = channel[len(self.prefix) :]
        if topic not in self._wanted:
            return  # in flight when we unsubscribed
        if not isinstance(message, str):
            self._drop(channel, "not UTF-8")
            return
        if message.startswith(self._tag):
            return  # our own, already delivered locally
        if message.startswith("{"):
            payload = message
        else:
            _origin, separator, payload = message.partition(" ")
            if not separator or not payload.startswith("{"):
                self._drop(channel, "not a txpulse message")
                return
        refused = checkEnvelope(topic, payload)
        if refused is not None:
            self._drop(channel, refused)
            return
        try:
            deliver(topic, payload)
        except Exception:
            _log.failure("Delivering a message from Redis to {topic} failed", Failure(), topic=topic)

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
                _send(link.protocol, "PING")


class _Link:
    """
    One connection to Redis, kept up by a L{ClientService}; it is ready
    (L{protocol} is set) once C{AUTH} and C{SELECT} succeeded and Redis
    answered C{CLIENT SETNAME}.

    Also the protocol factory (txredisapi's protocols call
    C{factory.stopTrying()} and C{factory.connectionError(message)} when
    C{AUTH} or C{SELECT} fail; this link keeps retrying instead).

    @ivar role: C{"pub"} or C{"sub"}.
    @ivar protocol: the ready txredisapi protocol, or L{None}.
    """

    isLazy = False

    def __init__(
        self,
        broker: RedisBroker,
        role: str,
        protocolClass: Any,
        options: dict[str, Any],
        endpoint: IStreamClientEndpoint,
        retryPolicy: Callable[[int], float],
    ) -> None:
        self.role = role
        self.protocol: Any = None
        self._broker = broker
        self._protocolClass = _linkProtocolClass(protocolClass, self)
        self._options = options
        self._refusal: str | None = None
        # Connections lost in a row before they were ready. ClientService
        # counts a TCP connection as a success, and would retry a server
        # refusing our password (or not answering) at its first, shortest
        # delay forever.
        self._rejected = 0
        self._service = _QuietClientService(
            _ObservedEndpoint(endpoint, broker._attemptFailed),
            _LinkFactory(self),
            retryPolicy=lambda attempt: retryPolicy(max(attempt, self._rejected)),
            clock=broker._reactor,
        )

    def start(self) -> None:
        self._service.startService()

    def stop(self) -> Deferred[None]:
        return self._service.stopService()

    def buildProtocol(self, addr: IAddress) -> Any:
        protocol = self._protocolClass(**self._options)
        protocol.factory = self
        protocol.whenConnected().addCallback(self._name)
        self._refusal = None
        return protocol

    def _name(self, protocol: Any) -> None:
        """
        C{AUTH} and C{SELECT} went through: name the connection. Its reply
        (within the reply timeout) is what makes the link ready: a TCP
        connection to a server that is stopped or cut off does not count.
        """

        def refused(failure: Failure) -> None:
            # A Redis too old for CLIENT SETNAME, or an ACL without it:
            # the server answered, which is all that is needed.
            if failure.check(self._broker._responseError):
                self._ready(protocol)

        name = f"txpulse-{self.role}-{self._broker.origin}"
        try:
            named = protocol.execute_command("CLIENT", "SETNAME", name)
        except Exception:
            return  # lost meanwhile
        named.addCallbacks(lambda _: self._ready(protocol), refused)

    def _ready(self, protocol: Any) -> None:
        if not protocol.connected:
            return
        self.protocol = protocol
        self._rejected = 0
        self._broker._linkReady(self)

    def _lost(self, protocol: Any, reason: Failure) -> None:
        if self.protocol is protocol:
            self.protocol = None
            self._broker._linkLost(self, reason.getErrorMessage())
        else:
            # Lost before it was ready: AUTH or SELECT failed, Redis refused
            # the client (e.g. "max number of clients reached"), or did not
            # answer in time.
            self._rejected += 1
            self._broker._attemptFailed(self._refusal or reason.getErrorMessage())

    # What txredisapi's protocols expect of their factory:

    def stopTrying(self) -> None:
        """
        Called when C{AUTH} or C{SELECT} failed: keep trying (with backoff),
        the configuration of the server may be fixed meanwhile.
        """

    def connectionError(self, message: str) -> None:
        self._refusal = message


@implementer(IProtocolFactory)
class _LinkFactory:
    """
    The protocol factory of a L{_Link} (a separate object, so that
    C{ClientService} can proxy it).
    """

    noisy = False

    def __init__(self, link: _Link) -> None:
        self._link = link

    def buildProtocol(self, addr: IAddress) -> IProtocol:
        protocol: IProtocol = self._link.buildProtocol(addr)
        return protocol

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass


@implementer(IStreamClientEndpoint)
class _ObservedEndpoint:
    """
    An endpoint reporting each failed connection attempt (for the log line
    saying Redis is unreachable).
    """

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Callable[[str], None]) -> None:
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        def report(failure: Failure) -> Failure:
            from twisted.internet.defer import CancelledError

            if not failure.check(CancelledError):
                self._failed(failure.getErrorMessage())
            return failure

        connecting: Deferred[IProtocol] = self._endpoint.connect(protocolFactory)
        return connecting.addErrback(report)


@provider(ILogObserver)
def _retryNoticeAtDebug(event: LogEvent) -> None:
    """
    Forward L{ClientService}'s log events, demoting its "Scheduling retry"
    notice (one per failed attempt) to debug: the broker logs the loss and
    the recovery of Redis once each.
    """
    if str(event.get("log_format", "")).startswith("Scheduling retry"):
        event["log_level"] = LogLevel.debug
    globalLogPublisher(event)


#: A L{ClientService} that does not log every reconnection attempt.
_QuietClientService = clientServiceLoggingTo(Logger(observer=_retryNoticeAtDebug))


def _linkProtocolClass(base: Any, link: _Link) -> Any:
    """
    txredisapi's protocol class C{base}, for one L{_Link}: its reply
    timeouts use the broker's reactor (txredisapi's class attribute is the
    global reactor's C{callLater}), its loss reaches the link, and (for the
    subscriber) its messages reach the broker.
    """
    broker = link._broker
    deliver = broker._messageReceived if link.role == "sub" else None

    class LinkProtocol(base):  # type: ignore[misc]
        def callLater(self, *args: Any, **kwargs: Any) -> Any:
            return broker._reactor.callLater(*args, **kwargs)

        def connectionLost(self, reason: Failure) -> None:
            try:
                super().connectionLost(reason)
            finally:
                link._lost(self, reason)

        if deliver is not None:

            def messageReceived(self, pattern: object, channel: object, message: object) -> None:
                deliver(pattern, channel, message)

    return LinkProtocol


def _send(protocol: Any, *command: str, errback: Callable[[Failure], None] | None = None) -> bool:
    """
    Send a command whose reply does not matter (its failure only matters as
    a lost connection, which the link reports and recovers from); no reply
    timeout except for C{PING}.

    @param errback: called with a failed reply instead of ignoring it.
    @return: whether the command was sent.
    """
    try:
        sent = protocol.execute_command(*command, apply_timeout=command[0] == "PING")
    except Exception:
        return False  # txredisapi's ConnectionError: the link is going down
    sent.addErrback(errback or _ignore)
    return True


def _ignore(failure: Failure) -> None:
    pass

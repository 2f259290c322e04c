# -*- test-case-name: tests.redis.test_redis_broker -*-
"""
The Redis broker's connections (L{txpulse.pubsub.broker.redis}): one
L{Link} per role (publishing, subscribed), kept up by a L{twisted.application.internet.ClientService},
ready once Redis answered; and the txredisapi protocol class of each,
with its parser fix (L{linkProtocolClass}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from ...wire.twistedinternals import clientServiceLoggingTo

if TYPE_CHECKING:
    from .redis import RedisBroker

__all__ = ["Link", "linkProtocolClass", "send", "ignore"]


class Link:
    """
    One connection to Redis, kept up by a L{twisted.application.internet.ClientService}; it is ready
    (L{protocol} is set) once C{AUTH} and C{SELECT} succeeded and Redis
    answered C{CLIENT SETNAME}.

    Also the protocol factory (txredisapi's protocols call
    C{factory.stopTrying()} and C{factory.connectionError(message)} when
    C{AUTH} or C{SELECT} fail; this link keeps retrying instead).

    @ivar role: C{"pub"} or C{"sub"}.
    @ivar protocol: the ready txredisapi protocol, or C{None}.
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
        self._protocolClass = linkProtocolClass(protocolClass, self)
        self._options = options
        self._refusal: str | None = None
        # Connections lost in a row before they were ready. ClientService
        # counts a TCP connection as a success, and would retry a server
        # refusing our password (or not answering) at its first, shortest
        # delay forever.
        self._rejected = 0
        self._service = QuietClientService(
            ObservedEndpoint(endpoint, broker._attemptFailed),
            LinkFactory(self),
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
                prepare(None)

        def prepare(_: object) -> None:
            try:
                prepared = self._broker._prepare(self, protocol)
            except Exception:
                return  # lost meanwhile
            prepared.addCallbacks(lambda _: self._ready(protocol), ignore)

        name = f"txpulse-{self.role}-{self._broker.origin}"
        try:
            named = protocol.execute_command("CLIENT", "SETNAME", name)
        except Exception:
            return  # lost meanwhile
        named.addCallbacks(prepare, refused)

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
class LinkFactory:
    """
    The protocol factory of a L{Link} (a separate object, so that
    C{ClientService} can proxy it).
    """

    noisy = False

    def __init__(self, link: Link) -> None:
        self._link = link

    def buildProtocol(self, addr: IAddress) -> IProtocol:
        protocol: IProtocol = self._link.buildProtocol(addr)
        return protocol

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass


@implementer(IStreamClientEndpoint)
class ObservedEndpoint:
    """
    An endpoint reporting each failed connection attempt (for the log line
    saying Redis is unreachable).
    """

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Callable[[str], None]) -> None:
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        def report(failure: Failure) -> Failure:
            if not failure.check(CancelledError):
                self._failed(failure.getErrorMessage())
            return failure

        connecting: Deferred[IProtocol] = self._endpoint.connect(protocolFactory)
        return connecting.addErrback(report)


@provider(ILogObserver)
def retryNoticeAtDebug(event: LogEvent) -> None:
    """
    Forward L{twisted.application.internet.ClientService}'s log events, demoting its "Scheduling retry"
    notice (one per failed attempt) to debug: the broker logs the loss and
    the recovery of Redis once each.
    """
    if str(event.get("log_format", "")).startswith("Scheduling retry"):
        event["log_level"] = LogLevel.debug
    globalLogPublisher(event)


#: A L{twisted.application.internet.ClientService} that does not log every reconnection attempt.
QuietClientService = clientServiceLoggingTo(Logger(observer=retryNoticeAtDebug))


def linkProtocolClass(base: Any, link: Link) -> Any:
    """
    txredisapi's protocol class C{base}, for one L{Link}: its reply
    timeouts use the broker's reactor (txredisapi's class attribute is the
    global reactor's C{callLater}), its loss reaches the link, and (for the
    subscriber) its messages reach the broker.
    """
    broker = link._broker
    deliver = broker._messageReceived if link.role == "sub" else None

    class LinkProtocol(base):  # type: ignore[misc]
        #: Received bytes not parsed yet (an incomplete line).
        _unparsed = b""
        #: What follows a complete bulk string, handed back by setLineMode.
        _extra: bytes | None = None

        def callLater(self, *args: Any, **kwargs: Any) -> Any:
            return broker._reactor.callLater(*args, **kwargs)

        def setLineMode(self, extra: bytes | str = b"") -> None:
            # txredisapi pauses the transport here and parses the rest a
            # reactor turn later: one turn per bulk string of a reply. A
            # reply of thousands of them (a history read) then took seconds
            # on a busy process, and every reply behind it waited: the
            # loop in dataReceived parses the rest at once instead.
            self.line_mode = 1
            self._extra = extra if isinstance(extra, bytes) else extra.encode()

        def dataReceived(self, data: bytes, unpause: bool = False) -> None:
            buffer = self._unparsed + data if self._unparsed else data
            self._unparsed = b""
            while buffer:
                if self.transport is not None and self.transport.disconnecting:
                    return
                if self.line_mode:
                    line, separator, rest = buffer.partition(b"\r\n")
                    if not separator:
                        if len(buffer) > self.MAX_LENGTH:
                            self.lineLengthExceeded(buffer)
                            return
                        break
                    if len(line) > self.MAX_LENGTH:
                        self.lineLengthExceeded(buffer)
                        return
                    buffer = rest
                    self.lineReceived(line.decode())
                else:
                    self._extra = None
                    self.rawDataReceived(buffer)
                    buffer, self._extra = self._extra or b"", None
            self._unparsed = buffer

        def connectionLost(self, reason: Failure) -> None:
            try:
                super().connectionLost(reason)
            finally:
                link._lost(self, reason)

        if deliver is not None:

            def messageReceived(self, pattern: object, channel: object, message: object) -> None:
                deliver(pattern, channel, message)

    return LinkProtocol


def send(protocol: Any, *command: str, errback: Callable[[Failure], None] | None = None) -> bool:
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
    sent.addErrback(errback or ignore)
    return True


def ignore(failure: Failure) -> None:
    pass

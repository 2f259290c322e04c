# -*- test-case-name: tests.wire.test_twistedinternals -*-
"""
Twisted's private parts, in one place.

Every attribute, method or class of Twisted that txpulse uses although
Twisted does not document it as public is reached through a small named
function here, with a comment saying what it relies on, since which Twisted
version it holds, and why no public API serves. Nothing else in txpulse
reads or writes a C{_private} name of a Twisted object, or replaces a
method of an object it did not build.

Supported: Twisted 26.4 to the newest release (C{pyproject.toml}); CI runs
the whole suite on both (C{make test}, C{make test-twisted-oldest}), and
C{tests/wire/test_twistedinternals.py} touches every function here on the
installed Twisted, so a release that renames one of these fails there, by
name. Unless said otherwise, each name below has the same meaning from
Twisted 24.7 to 26.10 (checked in each).

Also here, because it is the other way txpulse depends on Twisted's global
state: L{maybeGlobalReactor}, the one place the global reactor is imported
when no clock was given.

Not wrapped, because they are public attributes (only their use is an
implementation detail): C{tcp.Connection.socket} and C{.TLS}
(L{txpulse.wire.tcp.directSocket}), C{tcp.Server.client} (the peer's
address tuple, read where C{getPeer()} would build an address object:
L{txpulse.server.channel}), C{FileDescriptor.bufferSize} set per
connection (the read size, in L{txpulse.wire.protocol.WebSocketWire}).

Subclasses that override Twisted private methods (they cannot call through
a function): C{WebSocketChannel._respondToBadRequestAndDisconnect}
(C{HTTPChannel}'s 400 path, to log it) in L{txpulse.server.channel}.

HTTP/2 (RFC 8441 WebSockets, L{txpulse.server.http2}): Twisted's HTTP/2
lives in a private module, C{twisted.web._http2} (L{H2Connection},
C{H2Stream}; C{None} without the C{h2} package). Subclassed there, they
override or call these private methods of C{H2Connection} (unchanged from
Twisted 22.x to 26.10): C{_requestReceived}, C{_requestDataReceived},
C{_requestEnded}, C{_requestAborted} (the handlers of h2's events, by
stream), C{_requestDone} (a stream forgotten), C{_tryToWriteControlData}
(write h2's pending frames, unless too much is buffered); and they read
C{H2Stream._request} once, at construction. Its public-looking methods used
(C{writeHeaders}, C{writeDataToStream}, C{endRequest}, C{abortRequest},
C{openStreamWindow}, C{streams}, C{conn}) are undocumented too. The switch
from HTTP/1.1 to HTTP/2 after ALPN is L{switchToHTTP2}; the state a direct
write of a WebSocket's DATA checks is read by L{outboundQueued} and
L{transportPaused}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.application.internet import ClientService
from twisted.internet.abstract import FileDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, Request, _escape, _GenericHTTPChannelProtocol
from twisted.web.iweb import INonQueuedRequestFactory

try:
    # (twisted.web.http imports it already, to set H2_ENABLED: no cost.)
    from twisted.web._http2 import H2Connection, H2Stream
except ImportError:  # pragma: no cover - without the h2 package
    H2Connection = H2Stream = None  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    pass

__all__ = [
    "GenericHTTPChannelProtocol",
    "H2Connection",
    "H2Stream",
    "negotiatedProtocol",
    "outboundQueued",
    "switchToHTTP2",
    "transportPaused",
    "armChannelAbort",
    "atRequestStart",
    "beginRequest",
    "bodyDecoder",
    "clearExitSignal",
    "clientServiceLoggingTo",
    "detachChannel",
    "escapeLogField",
    "handlingRequest",
    "isAborting",
    "hasQueuedWrites",
    "maybeGlobalReactor",
    "pauseChannelReading",
    "queuedInFileDescriptor",
    "chunksInFileDescriptor",
    "redirectPlainChannel",
    "requestDisconnected",
    "requestProducer",
    "requestTarget",
    "takeSmallTail",
    "tlsPendingCleartext",
    "unwrapClientServiceProtocol",
    "waitingForTransport",
    "wrappedChannel",
]

T = TypeVar("T")


# -- the global reactor ------------------------------------------------------------


def maybeGlobalReactor(clock: T | None) -> T:
    """
    C{clock}, or the global reactor when it is C{None} (as Twisted's
    private C{application._client_service._maybeGlobalReactor}).

    Imported only when needed: importing C{twisted.internet.reactor}
    installs the default reactor, which must not happen before twistd (or
    a test) installs the one it chose. Callers keep the result, so the
    import runs once per object.
    """
    if clock is None:
        from twisted.internet import reactor

        return reactor  # type: ignore[return-value]
    return clock


# -- tcp.Connection / FileDescriptor: the write buffer -----------------------------
#
# FileDescriptor keeps what it could not send yet in dataBuffer[offset:]
# (bytes) plus _tempDataBuffer (a list of chunks, _tempDataLen bytes in all),
# joined into dataBuffer when the socket is writable. dataBuffer and offset
# are public attributes; the other two are private. ITransport exposes no
# buffer size, and coalescing into the tail needs the list.


def isAborting(transport: Any) -> bool:
    """
    Whether C{abortConnection()} ran on this C{tcp.Connection}: it stays
    C{connected} until the next reactor turn (C{tcp.Connection._aborting}).
    No public flag says so.
    """
    return bool(transport._aborting)


def hasQueuedWrites(transport: Any) -> bool:
    """
    Whether C{transport} (a C{FileDescriptor}) holds bytes not yet handed
    to the kernel: a direct write would overtake them.
    """
    return bool(transport._tempDataLen or transport.dataBuffer)


def takeSmallTail(transport: Any, limit: int) -> bytes | None:
    """
    Remove and return the last chunk queued in C{transport}'s buffer if it
    is shorter than C{limit} bytes (the caller writes it again, joined with
    what follows, through C{writeSequence}, which keeps Twisted's
    bookkeeping: producer pause, writer registration); C{None} otherwise,
    or once the write side is closed (C{_writeDisconnected}).
    """
    pending: list[bytes] = transport._tempDataBuffer
    if not pending or transport._writeDisconnected:
        return None
    last = pending[-1]
    if len(last) >= limit:
        return None
    pending.pop()
    transport._tempDataLen -= len(last)
    return last


def queuedInFileDescriptor(transport: FileDescriptor) -> int:
    """
    Bytes C{transport} holds for the kernel.
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def chunksInFileDescriptor(transport: FileDescriptor) -> int:
    """
    Objects holding those bytes: the chunks not yet joined, plus
    C{dataBuffer}.
    """
    return len(transport._tempDataBuffer) + 1


def tlsPendingCleartext(transport: object) -> list[bytes] | None:
    """
    The application bytes a C{TLSMemoryBIOProtocol} holds before
    encrypting them (during the handshake, or while paused):
    C{_appSendBuffer}; C{None} for any other transport.
    """
    pending = getattr(transport, "_appSendBuffer", None)
    return pending if isinstance(pending, list) else None


# -- twisted.web: the HTTP channel and request ----------------------------------------

#: The connection-level protocol C{Site.buildProtocol} expects from
#: C{Site.protocol}: it wraps the channel (C{_channel}) and forwards every
#: protocol method to it. Subclassed by L{txpulse.server.channel} to admit a
#: connection before it reaches the channel; there is no public class.
GenericHTTPChannelProtocol = _GenericHTTPChannelProtocol


def wrappedChannel(protocol: Any) -> Any:
    """
    The C{HTTPChannel} a L{GenericHTTPChannelProtocol} forwards to.
    """
    return protocol._channel


def negotiatedProtocol(protocol: Any) -> bytes | None:
    """
    The ALPN protocol a L{GenericHTTPChannelProtocol} settled on
    (C{_negotiatedProtocol}), or C{None} before its first byte.
    """
    negotiated: bytes | None = protocol._negotiatedProtocol
    return negotiated


def switchToHTTP2(protocol: Any, connection: Any) -> None:
    """
    Make L{GenericHTTPChannelProtocol} C{protocol}, whose transport chose
    C{h2} in ALPN and which has not read a byte yet, speak through
    C{connection} (an L{H2Connection}) instead of its C{HTTPChannel}: what
    C{_GenericHTTPChannelProtocol.dataReceived} does with a plain
    C{H2Connection()} (the class is not a parameter there), step by step:
    the channel's C{_networkProducer} (the transport) is unregistered, its
    timeout cancelled, C{connection} gets the factory's settings (the
    protocol's C{_requestFactory}, C{_site}, C{_factory}, C{_timeOut},
    C{_callLater}), is connected, registered as the transport's producer,
    and the protocol marked as negotiated (C{_negotiatedProtocol}).
    """
    channel: Any = protocol._channel
    networkProducer = channel._networkProducer
    networkProducer.unregisterProducer()
    channel.setTimeout(None)
    transport = channel.transport
    protocol._channel = connection
    connection.requestFactory = protocol._requestFactory
    connection.site = protocol._site
    connection.factory = protocol._factory
    connection.timeOut = protocol._timeOut
    connection.callLater = protocol._callLater
    connection.makeConnection(transport)
    networkProducer.registerProducer(connection, True)
    protocol._negotiatedProtocol = b"h2"


def outboundQueued(connection: Any, streamID: int) -> bool:
    """
    Whether an L{H2Connection} holds data of stream C{streamID} not yet
    sent (C{_outboundStreamQueues}: per stream, what its send loop has yet
    to frame). A write that skips the loop must not overtake it.
    """
    queue = connection._outboundStreamQueues.get(streamID)
    return bool(queue)


def transportPaused(connection: Any) -> bool:
    """
    Whether an L{H2Connection}'s transport paused it (C{_consumerBlocked}:
    a Deferred while the TCP buffer is full).
    """
    return connection._consumerBlocked is not None


def detachChannel(channel: HTTPChannel) -> bytes:
    """
    Make C{channel} let go of its connection after a C{101}; return the
    bytes it received after the request and buffered.

      - C{_savedTimeOut}: C{HTTPChannel} saves its idle timeout while a
        request is handled and restores it when the request is done;
        C{setTimeout(None)} cancels only the running timer. Cleared, or the
        upgraded connection inherits C{Site.timeOut} (60 s).
      - C{_networkProducer}: the transport (as C{IPushProducer}) the
        channel registered itself with; unregistered, so pauses no longer
        go to the channel.
      - C{_dataBuffer}: bytes received while the request was handled
        (pipelining), to be replayed later; they belong to the WebSocket.

    No public API ends an HTTP channel's hold on its connection.
    """
    chan: Any = channel
    chan.setTimeout(None)
    chan._savedTimeOut = None
    chan._networkProducer.unregisterProducer()
    buffered = b"".join(chan._dataBuffer)
    chan._dataBuffer = []
    return buffered


def redirectPlainChannel(
    channel: HTTPChannel, dataReceived: Callable[[bytes], None], lost: Callable[[Failure], None]
) -> None:
    """
    Send every later byte of a plain C{HTTPChannel}'s connection to
    C{dataReceived}, and its end to C{lost} (then to the channel).

    The one monkeypatch left: a plain C{Site} builds plain C{HTTPChannel}s,
    which have no hook for this (L{txpulse.WebSocketSite}'s channels have
    one, C{upgradeTo}, and take this path never). It relies on the
    L{GenericHTTPChannelProtocol} looking the channel's methods up on each
    call, and on C{LineReceiver} delivering the rest of the current read to
    C{rawDataReceived}. Twisted's own C{twisted.web.websocket} patches the
    same methods (C{HTTPChannel._protocolUpgradeForWebsockets}, private,
    which neither replays buffered bytes nor lets the channel clean up).
    """
    chan: Any = channel
    originalConnectionLost = chan.connectionLost

    def connectionLost(reason: Failure) -> None:
        lost(reason)
        originalConnectionLost(reason)
        # These closures point back at the channel: drop them, so that a
        # closed connection is freed by reference counting.
        for name in ("dataReceived", "rawDataReceived", "connectionLost"):
            chan.__dict__.pop(name, None)

    chan.dataReceived = dataReceived
    chan.rawDataReceived = dataReceived
    chan.connectionLost = connectionLost


def requestDisconnected(request: Request) -> bool:
    """
    Whether the client of C{request} is gone (C{Request._disconnected},
    set by C{connectionLost}). C{notifyFinish()} says so too, but only to a
    Deferred subscribed in advance; there is no public flag.
    """
    return bool(request._disconnected)


def escapeLogField(value: bytes | str) -> str:
    """
    A request field escaped for an access-log line exactly as Twisted's
    C{combinedLogFormatter} does (C{twisted.web.http._escape}).
    """
    escaped: str = _escape(value)
    return escaped


# The state HTTPChannel keeps about flow control and the request being
# parsed, which WebSocketChannel (a subclass) reads to extend it.


def waitingForTransport(channel: HTTPChannel) -> bool:
    """
    Whether the transport paused the channel (its buffer is full) and has
    not resumed it (C{_waitingForTransport}).
    """
    return bool(channel._waitingForTransport)


def handlingRequest(channel: HTTPChannel) -> bool:
    """
    Whether a request is being handled (C{_handlingRequest}): the channel
    then buffers what it reads instead of parsing it.
    """
    return bool(channel._handlingRequest)


def atRequestStart(channel: HTTPChannel) -> bool:
    """
    Whether the channel's parser is at the start of a request head with
    nothing buffered: in line mode (C{LineReceiver.line_mode}), no partial
    line (C{_buffer}), no header line pending (C{__header}), before a
    request line (C{__first_line == 1}; its other values: a request line
    read, or the one empty line before a request line it skips), and no
    request in the queue. Then a complete head may be parsed elsewhere and
    handed over with L{beginRequest}, leaving the channel where its own
    parser would have.
    """
    return (
        channel.line_mode == 1
        and not channel._buffer
        and channel._HTTPChannel__first_line == 1  # type: ignore[attr-defined]
        and not channel._HTTPChannel__header  # type: ignore[attr-defined]
        and not channel.requests
        and not channel._handlingRequest
    )


def beginRequest(channel: HTTPChannel, method: bytes, target: bytes, version: bytes) -> Request:
    """
    Start a request whose head was parsed elsewhere, as C{lineReceived}
    does at a request line: build it with the channel's C{requestFactory}
    (with the queue position, unless an C{INonQueuedRequestFactory}), queue it, and keep its
    request line for C{allContentReceived} (C{_command}, C{_path},
    C{_version}); C{__first_line = 0} as after a request line. Its headers
    are then added to the request's C{requestHeaders}, and the channel's
    C{allHeadersReceived} and C{allContentReceived} called, as C{lineReceived}
    does at the blank line.
    """
    factory: Any = channel.requestFactory
    if INonQueuedRequestFactory.providedBy(factory):
        request: Request = factory(channel)
    else:
        request = factory(channel, len(channel.requests))
    channel.requests.append(request)
    channel._HTTPChannel__first_line = 0  # type: ignore[attr-defined]
    channel._command = method
    channel._path = target
    channel._version = version
    return request


def pauseChannelReading(channel: HTTPChannel) -> None:
    """
    Stop reading the channel's connection, as C{HTTPChannel.pauseProducing}
    does when no request is handled (C{_networkProducer}: the transport).
    """
    channel._networkProducer.pauseProducing()


def requestProducer(channel: HTTPChannel) -> Any:
    """
    The producer the current response registered (C{_requestProducer}), or
    C{None}.
    """
    return channel._requestProducer


def bodyDecoder(channel: HTTPChannel) -> Any:
    """
    The request body's transfer decoder (C{_transferDecoder}): set when the
    head announces a body, before C{allHeadersReceived}; its
    C{dataCallback} receives the decoded body.
    """
    return channel._transferDecoder


def requestTarget(channel: HTTPChannel) -> bytes:
    """
    The request target of the head being parsed (C{_path}): the request
    object gets its C{uri} only after C{allHeadersReceived}.
    """
    target: bytes = channel._path
    return target


def armChannelAbort(channel: HTTPChannel) -> None:
    """
    After a C{loseConnection()}: abort the connection in C{abortTimeout}
    seconds unless it closed, with the channel's own timer
    (C{_abortingCall}, which C{connectionLost} cancels) as C{HTTPChannel}
    does after a timeout.
    """
    chan: Any = channel
    if chan.abortTimeout is not None and chan._abortingCall is None and chan.transport is not None:
        chan._abortingCall = chan.callLater(chan.abortTimeout, chan.forceAbortClient)


# -- twisted.application: ClientService ------------------------------------------------


def unwrapClientServiceProtocol(protocol: Any) -> Any:
    """
    The protocol a C{ClientService}'s factory built, from what the service
    hands C{prepareConnection}: a C{_ReconnectingProtocolProxy} (its
    C{_protocol}), which forwards attribute reads but not writes. Anything
    else is returned as it is.
    """
    return getattr(protocol, "_protocol", protocol)


def clientServiceLoggingTo(log: Logger) -> type[ClientService]:
    """
    A C{ClientService} subclass that logs (every retry notice included) to
    C{log}: C{ClientService} passes its class attribute C{_log} to its state
    machine, and has no option for the level of its notices.
    """
    return type("ClientService", (ClientService,), {"_log": log})


# -- the reactor's exit signal ---------------------------------------------------------


def clearExitSignal(reactor: object) -> None:
    """
    Forget the signal that stopped C{reactor}, so that twistd exits 0 rather
    than re-raise it (C{_ISupportsExitSignalCapturing._exitSignal}, set by
    the reactor's signal handlers). No public way says that a shutdown
    completed cleanly. No-op for a reactor without it.
    """
    if getattr(reactor, "_exitSignal", None) is not None:
        reactor._exitSignal = None  # type: ignore[attr-defined]

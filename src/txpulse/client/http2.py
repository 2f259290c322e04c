# -*- test-case-name: tests.http2.test_client -*-
"""
The client side of WebSockets over HTTP/2 (RFC 8441): what
C{WebSocketClientEndpoint.new(..., http2=True or "auto")} uses for wss://.

An L{HTTP2Pool} keeps one HTTP/2 connection per origin (host, port and TLS
settings) and opens each WebSocket as a stream of it, as browsers do: the
second WebSocket to an origin costs a HEADERS frame, not a TCP and TLS
handshake. A connection is made with ALPN offering C{h2} and
C{http/1.1}; it is used once the server's first SETTINGS frame said
C{SETTINGS_ENABLE_CONNECT_PROTOCOL = 1} (RFC 8441 §3). Otherwise (ALPN
picked C{http/1.1}, or no setting), C{http2="auto"} falls back to an
HTTP/1.1 upgrade on a connection of its own, and remembers that the origin
does not offer it; C{http2=True} fails with L{NegotiationError}.

A WebSocket's stream (L{_ClientStream}) is its wire's transport: writes
become DATA frames within the stream's send window (a server that stops
granting window pauses the wire, like a full TCP buffer), and DATA the wire
is not ready for is kept unacknowledged (the server's window closes). The
close handshake runs inside the stream; END_STREAM follows it; a reset by
the server is an abnormal closure (1006). A connection whose last stream
ended is closed after a second unless a new WebSocket takes it.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, ITransport
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.deflate import client_accept, client_offer
from ..core.exceptions import NegotiationError
from ..core.handshake import ResponseHead, extended_connect_headers, validate_extended_connect_response
from ..wire.interfaces import WebSocketProtocol
from ..wire.protocol import WebSocketWire
from .outcome import Outcome
from .rejection import ConnectionRejected, RejectionBody

__all__ = ["HTTP2Pool", "DEFAULT_POOL", "openOverHTTP2"]

_log = Logger()

#: Seconds an HTTP/2 connection without WebSockets stays open for the next.
IDLE_GRACE = 1.0


class HTTP2Pool:
    """
    HTTP/2 connections by origin, shared by the WebSockets opened to it.

    A connection carries as many WebSockets as the server allows at once
    (its C{SETTINGS_MAX_CONCURRENT_STREAMS}; 100 for Twisted's); the next
    one opens another connection.

    @ivar connections: the open connections, by origin key.
    """

    def __init__(self) -> None:
        self.connections: dict[tuple[Any, ...], list[_ClientConnection]] = {}
        self._pending: dict[tuple[Any, ...], list[tuple[Deferred[_ClientConnection | None], Any]]] = {}
        # Origins that answered without WebSockets over HTTP/2.
        self._withoutHTTP2: set[tuple[Any, ...]] = set()

    def connectionFor(self, endpoint: Any) -> Deferred[_ClientConnection | None]:
        """
        A connection to C{endpoint}'s origin able to carry WebSockets:
        an open one, the one being made, or a new one; C{None} when the
        origin does not offer them (then C{endpoint.http2} decides).
        """
        key = endpoint.http2Key
        if key in self._withoutHTTP2:
            return Deferred.fromCoroutine(_none())
        for live in self.connections.get(key, ()):
            if live.hasRoom():
                return Deferred.fromCoroutine(_value(live))
        d: Deferred[_ClientConnection | None] = Deferred()
        waiters = self._pending.get(key)
        if waiters is not None:
            waiters.append((d, endpoint))
            return d
        self._pending[key] = [(d, endpoint)]
        connected = endpoint.http2Endpoint.connect(Factory.forProtocol(lambda: _ClientConnection(endpoint.clock)))
        connected.addCallback(lambda protocol: protocol.ready.addCallback(self._settled, key, protocol))
        connected.addErrback(self._failed, key)
        return d

    def _settled(self, usable: bool, key: tuple[Any, ...], protocol: _ClientConnection) -> None:
        waiters = self._pending.pop(key, [])
        if not usable:
            self._withoutHTTP2.add(key)
            if protocol.transport is not None:
                protocol.transport.loseConnection()
            for d, _ in waiters:
                d.callback(None)
            return
        self.connections.setdefault(key, []).append(protocol)
        protocol.onLost = lambda: self._forget(key, protocol)
        for index, (d, _) in enumerate(waiters):
            if not protocol.hasRoom():
                # Full (each waiter opens its stream as it is told): the
                # rest wait for another connection.
                for later, laterEndpoint in waiters[index:]:
                    self.connectionFor(laterEndpoint).chainDeferred(later)
                return
            d.callback(protocol)

    def _failed(self, failure: Failure, key: tuple[Any, ...]) -> None:
        for d, _ in self._pending.pop(key, []):
            d.errback(failure)

    def _forget(self, key: tuple[Any, ...], protocol: _ClientConnection) -> None:
        live = self.connections.get(key, [])
        if protocol in live:
            live.remove(protocol)
        if not live:
            self.connections.pop(key, None)


async def _none() -> None:
    return None


async def _value(value: Any) -> Any:
    return value


#: The pool every endpoint uses unless given its own.
DEFAULT_POOL = HTTP2Pool()


async def openOverHTTP2(endpoint: Any, factory: Any) -> WebSocketProtocol | None:
    """
    Open a WebSocket to C{endpoint}'s URL as a stream of the origin's
    HTTP/2 connection and return its application protocol once open;
    C{None} when the origin does not offer WebSockets over HTTP/2 and
    C{endpoint.http2} is C{"auto"}.

    @raise NegotiationError: the origin does not offer them and
        C{endpoint.http2} is C{True}; or the answer breaks the offers.
    @raise ConnectionRejected: the server answered with a non-2xx status.
    """
    pool: HTTP2Pool = endpoint.http2Pool if endpoint.http2Pool is not None else DEFAULT_POOL
    connection = await pool.connectionFor(endpoint)
    if connection is None:
        if endpoint.http2 is True:
            raise NegotiationError(
                f"{endpoint.target.hostHeader} does not offer WebSockets over HTTP/2 "
                "(no h2 in ALPN, or no SETTINGS_ENABLE_CONNECT_PROTOCOL)"
            )
        return None
    app = factory.buildProtocol(endpoint.url)
    opened: WebSocketProtocol = await connection.openWebSocket(endpoint, app)
    return opened


@implementer(IHandshakeListener)
class _ClientConnection(TwistedProtocol):
    """
    One HTTP/2 client connection (h2's state machine), carrying WebSocket
    streams.

    @ivar ready: fires, once the TLS handshake and the server's first
        SETTINGS are through, with whether WebSockets can be opened.
    """

    def __init__(self, clock: Any) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.clock = clock
        self.ready: Deferred[bool] = Deferred()
        self.streams: dict[int, _ClientStream] = {}
        self.onLost: Any = None
        self._idle: IDelayedCall | None = None
        self._closing = False

    def hasRoom(self) -> bool:
        """
        Whether one more WebSocket may be opened on this connection now.
        """
        limit = self.conn.remote_settings.max_concurrent_streams
        return not self._closing and self.transport is not None and len(self.streams) < limit

    def handshakeCompleted(self) -> None:
        assert self.transport is not None
        if getattr(self.transport, "negotiatedProtocol", None) != b"h2":
            self._settle(False)
            return
        self.conn.initiate_connection()
        self._flush()

    def _settle(self, usable: bool) -> None:
        if not self.ready.called:
            self.ready.callback(usable)

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            _log.info("HTTP/2 protocol error from the server: dropping the connection")
            self._flush()
            assert self.transport is not None
            self.transport.loseConnection()
            return
        for event in events:
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self._settle(self.conn.remote_settings.enable_connect_protocol == 1)
            elif isinstance(event, h2.events.ResponseReceived) and stream is not None:
                stream.responseReceived(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                if stream is not None:
                    stream.dataReceived(event.data, event.flow_controlled_length)
                else:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and stream is not None:
                stream.remoteEnded()
            elif isinstance(event, h2.events.StreamReset) and stream is not None:
                stream.finish(Failure(ConnectionLost(f"HTTP/2 stream reset by the server (code {event.error_code})")))
            elif isinstance(event, h2.events.WindowUpdated):
                targets = list(self.streams.values()) if not event.stream_id else [stream] if stream else []
                for target in targets:
                    self.sendQueued(target)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._closing = True
                self._settle(False)
        self._flush()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        if not self.ready.called:
            # Before the server's SETTINGS (TLS verification failed, the
            # server left): why is what connect() fails with.
            self.ready.errback(reason)
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        for stream in list(self.streams.values()):
            stream.finish(reason)
        if self.onLost is not None:
            self.onLost()

    # -- streams --

    def openWebSocket(self, endpoint: Any, app: WebSocketProtocol) -> Deferred[WebSocketProtocol]:
        """
        Send the extended CONNECT for C{endpoint}'s URL on a new stream; the
        result fires with C{app} once the server accepted.
        """
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        streamID = self.conn.get_next_available_stream_id()
        stream = _ClientStream(self, streamID, endpoint, app)
        self.streams[streamID] = stream
        settings = endpoint.compression
        target = endpoint.target
        headers = extended_connect_headers(
            target.hostHeader,
            target.resource,
            subprotocols=endpoint.subprotocols,
            extensions=client_offer(settings) if settings else None,
            origin=endpoint.origin,
            headers=endpoint.headers,
        )
        self.conn.send_headers(streamID, headers)
        self._flush()
        return stream.whenOpened()

    def sendQueued(self, stream: _ClientStream) -> None:
        """
        Send what C{stream} queued, as far as its send window allows, then
        END_STREAM if it asked for it and everything went.
        """
        sid = stream.streamID
        queue = stream.queue
        try:
            while queue:
                room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk = bytes(queue[:room])
                del queue[:room]
                self.conn.send_data(sid, chunk)
            if not queue and stream.ending and not stream.localEnded:
                stream.localEnded = True
                self.conn.end_stream(sid)
        except h2.exceptions.StreamClosedError:
            queue.clear()
        self._flush()
        stream.windowBlocked(bool(queue))
        if stream.localEnded and stream.remoteEnd:
            stream.finish(Failure(ConnectionDone("HTTP/2 stream closed")))

    def resetStream(self, stream: _ClientStream) -> None:
        try:
            self.conn.reset_stream(stream.streamID, error_code=h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            pass
        self._flush()

    def acknowledge(self, stream: _ClientStream, length: int) -> None:
        if length:
            self.conn.acknowledge_received_data(length, stream.streamID)
            self._flush()

    def forget(self, stream: _ClientStream) -> None:
        self.streams.pop(stream.streamID, None)
        if not self.streams and not self._closing and self.transport is not None:
            self._idle = self.clock.callLater(IDLE_GRACE, self._closeIdle)

    def _closeIdle(self) -> None:
        self._idle = None
        if not self.streams and self.transport is not None:
            self._closing = True
            self.conn.close_connection()
            self._flush()
            self.transport.loseConnection()


@implementer(ITransport)
class _ClientStream:
    """
    One WebSocket stream: waits for the server's answer, then is its
    wire's transport.
    """

    isHTTP2 = True

    def __init__(self, connection: _ClientConnection, streamID: int, endpoint: Any, app: WebSocketProtocol) -> None:
        self.connection = connection
        self.streamID = streamID
        self.endpoint = endpoint
        self.app = app
        self.queue = bytearray()
        self.ending = self.localEnded = self.remoteEnd = False
        self.wire: WebSocketWire | None = None
        self._outcome: Outcome[WebSocketProtocol] = Outcome()
        self._rejection: RejectionBody | None = None
        self._kept: list[tuple[bytes, int]] = []
        self._reading = True
        self._producer: Any = None
        self._blocked = False
        self._done = False
        self._timer: IDelayedCall | None = connection.clock.callLater(endpoint.handshakeTimeout, self._timedOut)

    # -- the handshake --

    def whenOpened(self) -> Deferred[WebSocketProtocol]:
        return self._outcome.wait()

    def _settle(self, outcome: WebSocketProtocol | Failure) -> None:
        if self._outcome.settled:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._outcome.settle(outcome)

    def _timedOut(self) -> None:
        from .endpoint import HandshakeTimeout

        self._timer = None
        timeout = self.endpoint.handshakeTimeout
        self._settle(Failure(HandshakeTimeout(f"no WebSocket handshake answer within {timeout}s", 504)))
        self.connection.resetStream(self)
        self.finish(Failure(ConnectionLost("handshake timeout")))

    def responseReceived(self, headers: list[tuple[bytes, bytes]]) -> None:
        status = 0
        pairs = []
        for name, value in headers:
            if name == b":status":
                status = int(value)
            elif not name.startswith(b":"):
                pairs.append((name.decode("latin-1"), value.decode("latin-1")))
        if not 200 <= status < 300:
            self._reject(status, pairs)
            return
        endpoint = self.endpoint
        settings = endpoint.compression
        try:
            subprotocol = validate_extended_connect_response(status, pairs, endpoint.subprotocols, settings is not None)
            offered = [value for name, value in pairs if name == "sec-websocket-extensions"]
            agreed = None if settings is None else client_accept(offered, settings)
        except NegotiationError as error:
            self._settle(Failure(error))
            self.connection.resetStream(self)
            self.finish(Failure(ConnectionLost("handshake failed")))
            return
        wire = endpoint._wireFor(self.app, agreed, subprotocol)
        self.wire = wire
        wire.makeConnection(self)
        self._settle(self.app)
        self._replay()

    def _reject(self, status: int, pairs: list[tuple[str, str]]) -> None:
        # The body runs until END_STREAM (no Content-Length framing in HTTP/2).
        body = tuple((name, value) for name, value in pairs if name not in ("content-length", "transfer-encoding"))
        rejection = RejectionBody(ResponseHead(status, "", body), self, lambda: None)
        self._rejection = rejection
        self._settle(Failure(ConnectionRejected(status, rejection.response, headers=tuple(pairs))))

    # -- from the connection --

    def dataReceived(self, data: bytes, length: int) -> None:
        if self.wire is not None and self._reading and not self._kept:
            self.wire.dataReceived(data)
            self.connection.acknowledge(self, length)
        elif self.wire is None and self._rejection is not None:
            self._rejection.dataReceived(data)
            self.connection.acknowledge(self, length)
        else:
            self._kept.append((data, length))

    def remoteEnded(self) -> None:
        self.remoteEnd = True
        if self._rejection is not None:
            self._rejection.connectionLost(Failure(ConnectionDone()))
            self.finish(Failure(ConnectionDone()))
        elif self.wire is None:
            self._settle(Failure(ConnectionLost("the server ended the stream before answering")))
            self.finish(Failure(ConnectionDone()))
        elif self.localEnded:
            self.finish(Failure(ConnectionDone("HTTP/2 stream closed")))
        elif self._reading and not self._kept:
            # The server's end of input, as a TCP half-close.
            self.wire.readConnectionLost()

    def finish(self, reason: Failure) -> None:
        """
        The stream is over (both ends done, reset, or the connection lost).
        """
        if self._done:
            return
        self._done = True
        self._kept = []
        self._settle(reason)
        if self._rejection is not None:
            self._rejection.connectionLost(reason)
        if self.wire is not None:
            self.wire.connectionLost(reason)
        self.connection.forget(self)

    def _replay(self) -> None:
        consumed = 0
        while self._reading and self._kept and self.wire is not None:
            data, length = self._kept.pop(0)
            consumed += length
            self.wire.dataReceived(data)
        self.connection.acknowledge(self, consumed)
        if self.remoteEnd and not self._kept and self.wire is not None and not self._done:
            self.wire.readConnectionLost()

    def windowBlocked(self, blocked: bool) -> None:
        if blocked == self._blocked:
            return
        self._blocked = blocked
        if self._producer is not None:
            if blocked:
                self._producer.pauseProducing()
            else:
                self._producer.resumeProducing()

    # -- the wire's transport --

    def write(self, data: bytes) -> None:
        if self._done or self.ending or not data:
            return
        self.queue += data
        self.connection.sendQueued(self)

    def writeSequence(self, iovec: Any) -> None:
        self.write(b"".join(iovec))

    def loseConnection(self) -> None:
        if self._done or self.ending:
            return
        self.ending = True
        self.connection.sendQueued(self)

    def abortConnection(self) -> None:
        if self._done:
            return
        self.connection.resetStream(self)
        self.finish(Failure(ConnectionLost("HTTP/2 stream reset")))

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        if self._blocked:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    def pauseProducing(self) -> None:
        self._reading = False

    def resumeProducing(self) -> None:
        self._reading = True
        self._replay()

    def stopProducing(self) -> None:
        self.abortConnection()

    def getPeer(self) -> Any:
        transport: Any = self.connection.transport
        return transport.getPeer() if transport is not None else None

    def getHost(self) -> Any:
        transport: Any = self.connection.transport
        return transport.getHost() if transport is not None else None

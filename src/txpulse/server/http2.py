# -*- test-case-name: tests.http2.test_rfc8441 -*-
"""
WebSockets over HTTP/2 (RFC 8441): the HTTP/2 connection of a
L{txpulse.server.site.WebSocketSite} built with C{http2=True}.

Twisted serves HTTP/2 with C{twisted.web._http2.H2Connection} (one per TCP
connection, when TLS ALPN picks C{h2}) and one C{H2Stream} per request,
which is the request's transport. This module extends both, without
copying them:

  - L{WebSocketH2Connection} advertises C{SETTINGS_ENABLE_CONNECT_PROTOCOL
    = 1} in its first SETTINGS frame (RFC 8441 §3), and hands an extended
    CONNECT (C{:method CONNECT} with a C{:protocol}, RFC 8441 §4) to a
    L{WebSocketH2Stream} instead of a plain C{H2Stream}. Every other
    request is Twisted's, as with a plain C{Site}.
  - L{WebSocketH2Stream} runs the request through the site's resource tree
    at once (an extended CONNECT has no end: the stream stays open), so
    the very C{WebSocketResource} objects that answer HTTP/1.1 upgrades
    answer it, with the same settings, accept hook and observer. Refused,
    it is an ordinary HTTP/2 response (C{:status} 4xx/5xx, then
    C{RST_STREAM(NO_ERROR)} since the client's side is still open,
    RFC 9113 §8.1). Accepted (L{acceptWebSocket}), the stream answers
    C{:status 200} (RFC 8441 §5: no C{Sec-WebSocket-Accept}) and becomes
    the transport of a L{txpulse.wire.protocol.WebSocketWire}: the
    WebSocket's bytes are the stream's DATA frames, both ways.

The life of one WebSocket stream, and what bounds it:

  1. Opened: the HEADERS of an extended CONNECT. Each WebSocket stream
     counts against the site's connection caps (C{maxConnections},
     C{maxConnectionsPerAddress}) like an HTTP/1.1 connection, until it
     ends: over a cap it gets C{503} (HTTP/2 would otherwise let one
     address open 100 WebSockets, h2's C{MAX_CONCURRENT_STREAMS}, per
     connection it is allowed). Without the setting
     advertised (C{http2WebSockets} false on the site) it is malformed
     (RFC 8441 §4): C{RST_STREAM(PROTOCOL_ERROR)}. An ordinary CONNECT
     (no C{:protocol}: a proxy request) gets C{405}. A C{Host} outside the
     site's C{allowedHosts} gets C{421}.
  2. Negotiating: the resource validates the request
     (L{txpulse.core.handshake.validate_extended_connect}), runs its hooks
     (which may take C{handshakeTimeout} seconds) and answers. DATA that
     arrives meanwhile is kept and not acknowledged: the peer may send no
     more than the stream's flow-control window (64 KiB) before the answer.
  3. Open: DATA goes to the wire, and its window is given back once the
     wire took it; while the wire holds reading (its application is busy, or
     the peer does not read what we send), DATA is kept and not
     acknowledged, so the peer's sending stalls on this stream alone.
     Writes leave at once as DATA frames when nothing of the stream is
     queued, the TCP transport is not paused and the send windows take
     them; otherwise through Twisted's per-stream queue, as the stream's
     send window allows: once the peer stops granting window, the wire is paused
     (its producer too) and then bounded by its C{maxWriteBuffer}, past
     which the stream is reset; other streams flow on.
  4. Closing: the close handshake runs inside the stream; the wire ends the
     stream (END_STREAM) once it is done, or resets it (C{RST_STREAM
     CANCEL}) after C{closeTimeout}. The peer's END_STREAM is its end of
     input (the wire answers as to a TCP half-close); its C{RST_STREAM} an
     abnormal closure (1006). Either way the stream's end is the wire's
     C{connectionLost}.

While a WebSocket stream is open the connection's idle timeout (C{Site}'s
C{timeOut}) is off, as it is for an upgraded HTTP/1.1 connection: the
WebSocket's keepalive and idle timeout take over. L{WebSocketH2Connection.goAway}
sends GOAWAY (graceful shutdown, after the WebSockets were closed with
1001).

What this takes from Twisted beyond its public API is listed in
L{txpulse.wire.twistedinternals} (C{H2Connection}, C{H2Stream} and the
methods overridden here).
"""

from __future__ import annotations

from typing import Any

import h2.errors
import h2.exceptions
import h2.settings
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..logs.peers import clientKey, peerOf
from ..logs.redact import clip
from ..wire.twistedinternals import H2Connection, H2Stream, outboundQueued, transportPaused
from .proxies import clientAddress

__all__ = ["WebSocketH2Connection", "WebSocketH2Stream", "acceptOverHTTP2", "isWebSocketStream"]

_log = Logger()


def isWebSocketStream(channel: object) -> bool:
    """
    Whether C{channel} (a request's C{channel}) is an extended CONNECT
    stream, i.e. the request asks for a WebSocket over HTTP/2.
    """
    return channel.__class__ is WebSocketH2Stream


class WebSocketH2Connection(H2Connection):
    """
    Twisted's HTTP/2 connection, with WebSockets (RFC 8441): see the module
    docstring.

    @ivar webSockets: whether extended CONNECT is advertised and accepted.
    @ivar webSocketStreams: WebSocket streams open now.
    """

    #: Set by the site's protocol (L{txpulse.wire.twistedinternals.switchToHTTP2}).
    requestFactory: Any

    def __init__(self, reactor: Any = None, webSockets: bool = True) -> None:
        super().__init__(reactor)
        self.webSockets = webSockets
        self.webSocketStreams = 0
        self._lost = False
        # The idle timeout (Site.timeOut), off while a WebSocket is open.
        self._idleTimeOut: float | None = None
        if webSockets:
            # RFC 8441 §3: in our first SETTINGS frame (initiate_connection
            # sends the current values; a later change would wait for the
            # peer's acknowledgement).
            current = {h2.settings.SettingCodes(key): value for key, value in self.conn.local_settings.items()}
            current[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
            self.conn.local_settings = h2.settings.Settings(client=False, initial_values=current)

    # -- the peer's end and the site's bookkeeping --

    def connectionMade(self) -> None:
        super().connectionMade()
        live = getattr(self.site, "_http2Connections", None)
        if live is not None:
            live.add(self)

    def connectionLost(self, reason: Failure = connectionDone, _cancelTimeouts: bool = True) -> None:
        self._lost = True
        live = getattr(self.site, "_http2Connections", None)
        if live is not None:
            live.discard(self)
        super().connectionLost(reason, _cancelTimeouts=_cancelTimeouts)

    def readConnectionLost(self) -> None:
        """
        The peer half-closed the TCP connection (the site's protocol lets
        half-closes through): HTTP/2 has no use for one, so close.
        """
        if self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def goAway(self) -> None:
        """
        Graceful shutdown: send GOAWAY(NO_ERROR) (no new stream is taken),
        then close once what is queued has been written.
        """
        if self._lost or self.transport is None:
            return
        self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR)
        if self._tryToWriteControlData():
            self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        # Not while a WebSocket is open (its keepalive and idle timeout
        # apply); re-armed when the last one closes.
        if self.webSocketStreams:
            return
        super().timeoutConnection()

    # -- streams --

    def _requestReceived(self, event: Any) -> None:
        streamID = event.stream_id
        method = protocol = authority = None
        for name, value in event.headers:
            if name[:1] != b":":
                # Pseudo-headers come first (checked by h2).
                if name == b"host" and authority is None:
                    authority = value
                continue
            if name == b":method":
                method = value
            elif name == b":protocol":
                protocol = value
            elif name == b":authority":
                authority = value
        if not self._hostAllowed(authority):
            self._answer(streamID, 421, b"this server does not serve that host\n")
            return
        if method != b"CONNECT":
            super()._requestReceived(event)
            return
        if protocol is None:
            # An ordinary CONNECT (RFC 9113 §8.5) asks for a proxy.
            self._answer(streamID, 405, b"this server is not a proxy\n")
            return
        if not self.webSockets:
            # RFC 8441 §4: ":protocol" without our having advertised
            # SETTINGS_ENABLE_CONNECT_PROTOCOL makes the request malformed.
            self._resetStream(streamID, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        # Twisted's own bookkeeping (queues, priority), then our stream in
        # place of the H2Stream it built (streams is a public attribute).
        super()._requestReceived(event)
        stream = WebSocketH2Stream(
            streamID, self, event.headers, self.requestFactory, self.site, self.factory, protocol
        )
        self.streams[streamID] = stream
        stream.start()

    def _hostAllowed(self, authority: bytes | None) -> bool:
        allowed = getattr(self.site, "_allowedHosts", None)
        return allowed is None or (authority is not None and allowed.matches(authority, True))

    def _answer(self, streamID: int, status: int, body: bytes) -> None:
        """
        Answer a stream Twisted never saw with C{status}, then reset it with
        NO_ERROR (RFC 9113 §8.1: the client need not send the rest).
        """
        headers = [
            (b":status", str(status).encode("ascii")),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        self.conn.send_headers(streamID, headers)
        self.conn.send_data(streamID, body, end_stream=True)
        _log.info("Refused an HTTP/2 request from {peer}: {status}", peer=peerOf(self.transport), status=status)
        self._resetStream(streamID, h2.errors.ErrorCodes.NO_ERROR)

    def _resetStream(self, streamID: int, code: int) -> None:
        try:
            self.conn.reset_stream(streamID, error_code=code)
        except h2.exceptions.StreamClosedError:
            pass
        self._tryToWriteControlData()

    # Events for a stream Twisted no longer (or never) knew: one answered by
    # _answer, or one that ended while the peer still had bytes in flight.
    # Twisted looks them up unguarded (a KeyError would end the connection).

    def _requestDataReceived(self, event: Any) -> None:
        if event.stream_id in self.streams:
            super()._requestDataReceived(event)
            return
        # Dropped, but its share of the connection's window is given back.
        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self._tryToWriteControlData()

    def _requestEnded(self, event: Any) -> None:
        if event.stream_id in self.streams:
            super()._requestEnded(event)

    def _requestAborted(self, event: Any) -> None:
        if event.stream_id in self.streams:
            super()._requestAborted(event)

    def abortRequest(self, streamID: int) -> None:
        """
        Reset a stream (C{CANCEL}: we no longer want it) and forget it;
        harmless on a stream h2 already considers closed (Twisted's raises).
        """
        if self._lost or streamID not in self.streams:
            return
        try:
            self.conn.reset_stream(streamID, error_code=h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            pass
        if self._tryToWriteControlData() and streamID in self.streams:
            self._requestDone(streamID)

    def _requestDone(self, streamID: int) -> None:
        stream = self.streams.get(streamID)
        super()._requestDone(streamID)
        if stream.__class__ is WebSocketH2Stream:
            stream._streamEnded()

    def writeWebSocketData(self, streamID: int, data: bytes) -> None:
        """
        Write a WebSocket stream's bytes: in DATA frames at once when nothing
        of the stream is queued, the TCP transport is not paused and the
        send windows take them all; otherwise through Twisted's queue
        (C{writeDataToStream}), whose loop sends one frame per reactor turn.
        """
        if (
            len(data) <= self.conn.max_outbound_frame_size
            and not outboundQueued(self, streamID)
            and not transportPaused(self)
            and self.conn.local_flow_control_window(streamID) >= len(data)
        ):
            self.conn.send_data(streamID, data)
            self._tryToWriteControlData()
            return
        self.writeDataToStream(streamID, data)

    def _webSocketOpened(self) -> None:
        self.webSocketStreams += 1
        if self.webSocketStreams == 1:
            # (setTimeout sets timeOut too: the period is kept aside.)
            self._idleTimeOut = self.setTimeout(None)

    def _webSocketClosed(self) -> None:
        self.webSocketStreams -= 1
        if not self.webSocketStreams and not self._lost:
            self.setTimeout(self._idleTimeOut)


class WebSocketH2Stream(H2Stream):
    """
    An extended CONNECT stream: the request's channel while the resource
    decides, then the transport of the WebSocket (see the module docstring).

    @ivar connectProtocol: the C{:protocol} asked for (C{websocket}).
    @ivar isHTTP2: C{True}: read by the metrics (WebSockets over HTTP/2).
    """

    isHTTP2 = True

    def __init__(
        self,
        streamID: int,
        connection: WebSocketH2Connection,
        headers: Any,
        requestFactory: Any,
        site: Any,
        factory: Any,
        protocol: bytes,
    ) -> None:
        super().__init__(streamID, connection, headers, requestFactory, site, factory)
        self.connectProtocol = protocol.decode("latin-1")
        self._connection = connection
        self._wire: Any = None
        # DATA not yet given to the wire, with its flow-controlled length
        # (before the answer, or while the wire holds reading), and whether
        # the peer's END_STREAM came after it.
        self._kept: list[tuple[bytes, int]] = []
        self._endKept = False
        self._ending = False
        self._gone = False
        # Counted against the site's caps (under this key) while open.
        self._admitted = False
        self._address: str | None = None

    @property
    def request(self) -> Any:
        """
        The request this stream carries.
        """
        return self._request

    def start(self) -> None:
        """
        Run the request through the site's resource tree now (Twisted waits
        for the end of a request's stream, which an extended CONNECT never
        sends).
        """
        request = self._request
        site = self.site
        trusted = getattr(site, "trustedProxies", None)
        peer = self.getPeer()
        request.client = clientAddress(request.client, request.requestHeaders, trusted)
        admit = getattr(site, "_admit", None)
        if admit is not None:
            host = getattr(peer, "host", None)
            counted = isinstance(host, str) and (trusted is None or host not in trusted)
            self._address = clientKey(peer) if counted else None
            if not admit(self._address, self):  # (its getPeer() names the client in a refusal)
                connection = self._connection
                connection._answer(self.streamID, 503, b"too many connections\n")
                connection._requestDone(self.streamID)
                return
            self._admitted = True
        request.requestReceived(self.command, self.path, b"HTTP/2")

    # -- from the connection --

    def receiveDataChunk(self, data: bytes, flowControlledLength: int) -> None:
        if self._wire is None or not self.producing or self._kept:
            if not self._gone:
                self._kept.append((data, flowControlledLength))
            return
        self._wire.dataReceived(data)
        self._giveBack(flowControlledLength)

    def requestComplete(self) -> None:
        # The peer's END_STREAM: it sends nothing more (a TCP half-close).
        if self._wire is None or not self.producing or self._kept:
            self._endKept = True
            return
        self._wire.readConnectionLost()

    def connectionLost(self, reason: Failure) -> None:
        # A reset by the peer (1006 for the application), or the whole
        # connection's end.
        if self._wire is not None:
            self._wire.connectionLost(reason)
        elif self._request is not None:
            self._request.connectionLost(reason)

    def _streamEnded(self) -> None:
        """
        Twisted forgot the stream (both ends done, or reset): the wire's
        end; a refused request's client half is reset (NO_ERROR).
        """
        if self._gone:
            return
        self._gone = True
        self._kept = []
        if self._admitted:
            self._admitted = False
            self.site._release(self._address)
        wire = self._wire
        connection = self._connection
        # Let go of the request (whose channel is this stream): a closed
        # WebSocket is freed by reference counting, not by the cyclic
        # collector (as over HTTP/1.1, see txpulse.server.collector).
        self._request = None
        if wire is not None:
            self._wire = None
            connection._webSocketClosed()
            wire.connectionLost(Failure(ConnectionDone("HTTP/2 stream closed")))
        elif not connection._lost:
            connection._resetStream(self.streamID, h2.errors.ErrorCodes.NO_ERROR)

    # -- the wire's transport --

    def acceptWebSocket(self, wire: Any, headers: list[tuple[bytes, bytes]]) -> None:
        """
        Answer C{:status 200} with C{headers} (the chosen subprotocol and
        extensions), then hand the stream to C{wire}, DATA received so far
        first.
        """
        if self._gone:
            return
        self._connection.writeHeaders(b"HTTP/2", b"200", b"OK", list(headers), self.streamID)
        self._wire = wire
        self._connection._webSocketOpened()
        wire.makeConnection(self)
        self._replay()

    def _giveBack(self, length: int) -> None:
        if length and not self._gone:
            self._connection.openStreamWindow(self.streamID, length)

    def _replay(self) -> None:
        consumed = 0
        while self.producing and self._kept and self._wire is not None:
            data, length = self._kept.pop(0)
            consumed += length
            self._wire.dataReceived(data)
        self._giveBack(consumed)
        if self._endKept and self.producing and not self._kept and self._wire is not None:
            self._endKept = False
            self._wire.readConnectionLost()

    def pauseProducing(self) -> None:
        """
        The wire holds reading: keep the peer's DATA, unacknowledged.
        """
        self.producing = False

    def resumeProducing(self) -> None:
        self.producing = True
        if self._wire is not None:
            self._replay()

    def stopProducing(self) -> None:
        self.producing = False
        self.abortConnection()

    def write(self, data: bytes) -> None:
        if not self._gone and data:
            self._connection.writeWebSocketData(self.streamID, data)

    def writeSequence(self, iovec: Any) -> None:
        # One DATA chunk for the lot (Twisted's sends one frame per chunk
        # and reactor turn).
        self.write(b"".join(iovec))

    def loseConnection(self) -> None:
        """
        END_STREAM after what is queued (once; the wire may ask twice).
        """
        if self._ending or self._gone:
            return
        self._ending = True
        self._connection.endRequest(self.streamID)

    def abortConnection(self) -> None:
        self._connection.abortRequest(self.streamID)


def acceptOverHTTP2(request: Any, wire: Any, subprotocol: str | None, extensions: str | None) -> None:
    """
    Complete a WebSocket handshake on an extended CONNECT stream: C{:status
    200} with C{sec-websocket-protocol} and C{sec-websocket-extensions} as
    chosen, then the stream belongs to C{wire} (RFC 8441 §5).
    """
    headers: list[tuple[bytes, bytes]] = []
    if subprotocol is not None:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
    if extensions is not None:
        headers.append((b"sec-websocket-extensions", extensions.encode("ascii")))
    stream: WebSocketH2Stream = request.channel
    _log.debug(
        "WebSocket over HTTP/2 from {peer}: stream {stream} {path}",
        peer=peerOf(stream),
        stream=stream.streamID,
        path=clip(request.uri.decode("latin-1", "replace")),
    )
    stream.acceptWebSocket(wire, headers)

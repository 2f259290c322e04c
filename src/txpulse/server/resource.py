# -*- test-case-name: tests.server.test_resource -*-
"""
L{WebSocketResource}: a C{twisted.web} resource that upgrades requests to
WebSocket connections, a drop-in for C{twisted.web.websocket.WebSocketResource}.

The request is validated by the sans-IO handshake core, then the negotiation
hooks run (origin allow-list, subprotocol choice, the application's accept
hook, which may take its time and answer with an HTTP status), then the
C{101} goes out and the HTTP channel is handed to a L{WebSocketWire}.

Over HTTP/2 (a L{txpulse.WebSocketSite} built with C{http2=True}), the same
resource answers an extended CONNECT (RFC 8441): the same hooks, then
C{:status 200} and the stream is the wire's transport
(L{txpulse.server.http2}).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from twisted.internet.defer import CancelledError, TimeoutError, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ..core.assembly import AssemblyBudget
from ..core.connection import Connection, Side
from ..core.deflate import Deflate, DeflateSettings, parse_extension_header, server_negotiate
from ..core.exceptions import HandshakeError, NegotiationError
from ..core.handshake import (
    UpgradeRequest,
    accept_key,
    check_origin,
    select_subprotocol,
    validate_extended_connect,
    validate_upgrade,
)
from ..logs.peers import clientKey, formatPeer
from ..logs.redact import clip, loggableURL
from ..logs.summary import SummaryLog
from ..settings import UNSET, ConnectionSettings, Unset
from ..wire.interfaces import ConnectionObserver, WebSocketProtocol
from ..wire.protocol import WebSocketWire, WireOptions
from ..wire.tcp import directSocket, writeChunks
from ..wire.twistedinternals import detachChannel, maybeGlobalReactor, redirectPlainChannel, requestDisconnected
from .site import REFUSAL_LOG_INTERVAL, WebSocketChannel

__all__ = ["WebSocketResource", "WebSocketServerFactory", "AcceptHook"]

_log = Logger()


class WebSocketServerFactory(Protocol):
    """
    Builds the application's protocol for each accepted request (the same
    shape as C{twisted.web.websocket.WebSocketServerFactory}).
    """

    def buildProtocol(self, request: Request) -> WebSocketProtocol | None: ...


#: The accept hook: sees the request; returns (or fires its Deferred with, or
#: as an C{async def} returns) the identity to attach to the connection (any
#: object, or C{None}); raises (or fails with) a L{HandshakeError} to refuse
#: with that error's HTTP status.
AcceptHook = Callable[[Request], Any]


class WebSocketResource(Resource):
    """
    A resource answering WebSocket upgrades; mount it anywhere in a
    C{twisted.web} resource tree.

    Example::

        from twisted.web.server import Site
        from twisted.web.resource import Resource
        from txpulse import WebSocketResource

        class Echo:
            def negotiationStarted(self, transport):
                self.transport = transport
            def negotiationFinished(self): pass
            def textMessageReceived(self, text):
                self.transport.sendTextMessage(text)
            def bytesMessageReceived(self, data):
                self.transport.sendBytesMessage(data)
            def pongReceived(self, payload): pass
            def connectionLost(self, reason): pass

        class EchoFactory:
            def buildProtocol(self, request):
                return Echo()

        root = Resource()
        root.putChild(b"echo", WebSocketResource(EchoFactory(), pingInterval=30))
    """

    def __init__(
        self,
        factory: WebSocketServerFactory,
        *,
        settings: ConnectionSettings | None = None,
        subprotocols: Sequence[str] | Unset = UNSET,
        allowedOrigins: Sequence[str] | str | None | Unset = UNSET,
        maxMessageSize: int | None | Unset = UNSET,
        maxFrameSize: int | None | Unset = UNSET,
        maxIncompleteSize: int | AssemblyBudget | None | Unset = UNSET,
        pingInterval: float | None | Unset = UNSET,
        pingTimeout: float | Unset = UNSET,
        idleTimeout: float | None | Unset = UNSET,
        closeTimeout: float | Unset = UNSET,
        handshakeTimeout: float | Unset = UNSET,
        maxWriteBuffer: int | Unset = UNSET,
        accept: AcceptHook | None = None,
        observer: ConnectionObserver | None = None,
        compression: DeflateSettings | bool | Unset = UNSET,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param factory: its C{buildProtocol(request)} returns the application
            protocol for each connection (returning C{None} refuses with 403).
        @param settings: keepalive, timeouts, limits, compression,
            subprotocols and origins (default: C{ConnectionSettings()}, the
            server's defaults); see L{ConnectionSettings} for each one, its
            default and its limits.
        @param subprotocols: a setting, overriding C{settings}' (each of
            these keyword arguments has the name, type and meaning of a
            L{ConnectionSettings} field; left out, C{settings}' value holds).
            The subprotocols spoken, most preferred first; the first one the
            client also offers is chosen (RFC 6455 §4.2.2).
        @param allowedOrigins: a setting: browser origins allowed to connect,
            and/or C{"same-origin"}; others get 403. C{None} (the default)
            checks nothing: then a page from any site can open a connection
            with the user's cookies, so an accept hook that trusts cookies
            (or client certificates, or the client's address) needs an
            allow-list, or C{"same-origin"}, to resist cross-site WebSocket
            hijacking.
        @param maxMessageSize: a setting (1009 above it).
        @param maxFrameSize: a setting (1009 above it).
        @param maxIncompleteSize: a setting (1013 past it), counted per
            resource; or one L{AssemblyBudget} passed to several resources to
            bound them together (the twistd plugin shares one between all
            its mounts).
        @param pingInterval: a setting (C{None}: no keepalive).
        @param pingTimeout: a setting (then close 1011 and drop).
        @param idleTimeout: a setting (then close 1001).
        @param closeTimeout: a setting (then abort the TCP connection).
        @param handshakeTimeout: a setting: seconds the accept hook may take
            before the request is answered with 503.
        @param maxWriteBuffer: a setting (then the peer is disconnected).
        @param compression: a setting: accept permessage-deflate (RFC 7692)
            when a client offers it; C{True} means
            L{txpulse.core.deflate.SERVER_DEFAULTS} (12-bit windows, mem
            level 4: 30-43 KiB per active connection, measured).
        @param accept: the accept hook (see L{AcceptHook}).
        @param observer: told about each connection opening and closing and
            each refused handshake (logging, metrics, graceful shutdown: see
            L{txpulse.plugin.metrics.ConnectionRegistry}).
        @param clock: the L{IReactorTime} for timers (default: the reactor).
        @raise ValueError: for a bad setting (L{TypeError} for one of a
            wrong type), naming it.
        """
        super().__init__()
        self.factory = factory
        budget = maxIncompleteSize if isinstance(maxIncompleteSize, AssemblyBudget) else None
        #: The L{ConnectionSettings} of every connection of this resource.
        self.settings = (ConnectionSettings() if settings is None else settings).override(
            subprotocols=subprotocols,
            allowedOrigins=allowedOrigins,
            maxMessageSize=maxMessageSize,
            maxFrameSize=maxFrameSize,
            maxIncompleteSize=UNSET if budget is not None else maxIncompleteSize,
            pingInterval=pingInterval,
            pingTimeout=pingTimeout,
            idleTimeout=idleTimeout,
            closeTimeout=closeTimeout,
            handshakeTimeout=handshakeTimeout,
            maxWriteBuffer=maxWriteBuffer,
            compression=compression,
        )
        settings = self.settings
        if budget is None and settings.maxIncompleteSize is not None:
            budget = AssemblyBudget(settings.maxIncompleteSize)
        self._incompleteBudget = budget
        self._subprotocols = settings.subprotocols
        self._allowedOrigins = settings.allowedOrigins
        self._maxMessageSize = settings.maxMessageSize
        self._maxFrameSize = settings.maxFrameSize
        self._options = WireOptions.fromSettings(settings, observer)
        self._observer = observer
        self._handshakeTimeout = settings.handshakeTimeout
        self._compression = settings.deflateSettings(Side.SERVER)
        self._accept = accept
        self._clockOrNone = clock
        # Refused upgrades, logged per client address: once, then summed up.
        self._refusals = SummaryLog(_summarizeRefusals, REFUSAL_LOG_INTERVAL, clock=clock)

    @property
    def _clock(self) -> IReactorTime:
        self._clockOrNone = maybeGlobalReactor(self._clockOrNone)
        return self._clockOrNone

    def render(self, request: Request) -> bytes | int:
        """
        Only C{GET} can be upgrade (RFC 6455 §4.1): other methods get 405
        with C{Allow: GET}; over HTTP/2, an extended C{CONNECT} (RFC 8441
        §4) opens a WebSocket too.
        """
        if request.method == b"CONNECT" and _isWebSocketStream(request.channel):
            return self._renderExtendedConnect(request)
        if request.method != b"GET":
            error = NegotiationError("a WebSocket upgrade must be a GET", 405, (("Allow", "GET"),))
            return self._refuse(request, error)
        return self.render_GET(request)

    def _renderExtendedConnect(self, request: Request) -> bytes | int:
        """
        Over HTTP/2: validate the extended CONNECT, then the same hooks.
        """
        try:
            upgrade = self._validateExtendedConnect(request)
        except HandshakeError as error:
            return self._refuse(request, error)
        return self._negotiate(request, upgrade)

    def render_GET(self, request: Request) -> bytes | int:
        """
        Validate the upgrade, run the negotiation hooks, then answer C{101}
        and hand the connection over (or answer with an HTTP error).
        """
        try:
            upgrade = self._validate(request)
        except HandshakeError as error:
            return self._refuse(request, error)
        return self._negotiate(request, upgrade)

    def _negotiate(self, request: Request, upgrade: UpgradeRequest) -> bytes | int:
        """
        Run the negotiation hooks on a valid request, then open the
        WebSocket or refuse it.
        """
        subprotocol = select_subprotocol(upgrade.subprotocols, self._subprotocols)
        if self._accept is None:
            return self._open(request, upgrade, subprotocol, None)
        decision = maybeDeferred(_callHook, self._accept, request)
        if decision.called:
            # A synchronous hook: answer within this render call.
            outcome: list[Any] = []
            decision.addBoth(outcome.append)
            result = outcome[0]
            if isinstance(result, Failure):
                return self._refuse(request, _asHandshakeError(result))
            return self._open(request, upgrade, subprotocol, result)
        decision.addTimeout(self._handshakeTimeout, self._clock)
        request.notifyFinish().addErrback(lambda _: decision.cancel())
        decision.addCallbacks(
            lambda identity: self._openLater(request, upgrade, subprotocol, identity),
            lambda failure: self._refuseLater(request, failure),
        )
        return NOT_DONE_YET

    def _refuse(self, request: Request, error: HandshakeError) -> bytes:
        if self._observer is not None:
            self._observer.handshakeRefused(error.statusCode)
        return _refuse(request, error, self._refusals)

    def _validate(self, request: Request) -> UpgradeRequest:
        # The request's header table, by lowercased name (its names are
        # distinct already, in one case).
        fields = {
            name.decode("latin-1").lower(): [value.decode("latin-1") for value in values]
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        upgrade = validate_upgrade(
            request.method.decode("latin-1"),
            request.clientproto.decode("latin-1"),
            fields,
        )
        check_origin(upgrade.origin, self._allowedOrigins, upgrade.host)
        if not isinstance(request.channel, HTTPChannel):
            # e.g. HTTP/2 on a plain Site (WebSocketSite(http2=True) takes
            # RFC 8441's extended CONNECT instead).
            raise HandshakeError("WebSocket upgrades need an HTTP/1.1 connection")
        return upgrade

    def _validateExtendedConnect(self, request: Request) -> UpgradeRequest:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        channel: Any = request.channel
        upgrade = validate_extended_connect(request.method.decode("latin-1"), channel.connectProtocol, headers)
        check_origin(upgrade.origin, self._allowedOrigins, upgrade.host)
        return upgrade

    def _openLater(self, request: Request, upgrade: UpgradeRequest, subprotocol: str | None, identity: object) -> None:
        channel: Any = request.channel
        if (
            channel is None
            or (channel.transport is None and not _isWebSocketStream(channel))
            or requestDisconnected(request)
        ):
            return  # the client left while the hook ran
        result = self._open(request, upgrade, subprotocol, identity)
        if result is not NOT_DONE_YET:
            request.write(result)
            request.finish()

    def _refuseLater(self, request: Request, failure: Failure) -> None:
        if requestDisconnected(request) or request.finished:
            return
        if failure.check(CancelledError, TimeoutError):
            _log.warn("WebSocket accept hook did not answer within {timeout}s", timeout=self._handshakeTimeout)
            error = HandshakeError("the server did not accept the connection in time", 503)
        else:
            error = _asHandshakeError(failure)
        request.write(self._refuse(request, error))
        request.finish()

    def _open(
        self, request: Request, upgrade: UpgradeRequest, subprotocol: str | None, identity: object
    ) -> bytes | int:
        """
        Build the application protocol, answer C{101} and hand over the
        connection.
        """
        try:
            app = self.factory.buildProtocol(request)
        except Exception:
            _log.failure("WebSocket factory failed to build a protocol")
            return self._refuse(request, HandshakeError("internal server error", 500))
        if app is None:
            return self._refuse(request, HandshakeError("connection refused by the application", 403))
        http2 = _isWebSocketStream(request.channel)
        lines = [
            b"HTTP/1.1 101 Switching Protocols",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Accept: " + accept_key(upgrade.key).encode("ascii"),
        ]
        if subprotocol is not None:
            lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii"))
        agreedHeader = None
        deflate = None
        settings = self._compression
        if settings is not None and upgrade.extensions:
            try:
                agreed = server_negotiate(parse_extension_header(upgrade.extensions), settings)
            except NegotiationError as error:
                _log.info("Ignoring a malformed Sec-WebSocket-Extensions offer: {error}", error=clip(str(error)))
                agreed = None
            if agreed is not None:
                agreedHeader = agreed.header()
                lines.append(b"Sec-WebSocket-Extensions: " + agreedHeader.encode("ascii"))
                deflate = Deflate(
                    agreed,
                    is_server=True,
                    level=settings.level,
                    mem_level=settings.mem_level,
                    min_size=settings.min_size,
                )
        response = b"\r\n".join(lines) + b"\r\n\r\n"
        conn = Connection(
            Side.SERVER,
            max_message_size=self._maxMessageSize,
            max_frame_size=self._maxFrameSize,
            deflate=deflate,
            budget=self._incompleteBudget,
        )
        wire = WebSocketWire(
            app,
            conn,
            clock=self._clock,
            options=self._options,
            subprotocol=subprotocol,
            request=request,
            identity=identity,
        )
        if http2:
            from .http2 import acceptOverHTTP2

            acceptOverHTTP2(request, wire, subprotocol, agreedHeader)
        else:
            takeOver(request, wire, response)
        return NOT_DONE_YET


def takeOver(request: Request, wire: WebSocketWire, response: bytes) -> None:
    """
    Switch an HTTP/1.1 channel to the WebSocket protocol (what it takes
    from C{twisted.web}'s channel is in L{txpulse.wire.twistedinternals}).

    In order: the channel's idle timeout is cancelled (an upgraded
    connection must outlive C{Site.timeOut}); the channel stops being the
    transport's producer; the C{101} is written; the wire attaches to the
    transport; then every byte the channel received after the request (in
    the same read, or while an asynchronous accept hook ran) is replayed to
    the wire, and later bytes go straight to it.
    """
    channel: Any = request.channel
    transport: Any = channel.transport
    buffered = detachChannel(channel)
    if isinstance(channel, WebSocketChannel):
        # WebSocketSite's channels forward to the wire by design.
        channel.upgradeTo(wire)
    else:
        # A plain Site's HTTPChannel has no such hook: redirect its entry
        # points (the one monkeypatch left; see redirectPlainChannel).
        redirectPlainChannel(channel, wire.dataReceived, wire.connectionLost)
    # Straight to the socket when Twisted's buffer is empty (as the wire
    # writes): through the buffer, the 101 costs two epoll_ctl calls and a
    # reactor turn more per handshake.
    writeChunks(transport, directSocket(transport), [response])
    wire.makeConnection(transport)
    # The channel pauses reading once it buffers too much while a request is
    # being handled; reading belongs to the wire now.
    transport.resumeProducing()
    if buffered:
        wire.dataReceived(buffered)


def _callHook(hook: AcceptHook, request: Request) -> object:
    """
    Call the accept hook; a coroutine (an C{async def} hook) becomes a
    L{Deferred}.
    """
    result = hook(request)
    if inspect.iscoroutine(result):
        return ensureDeferred(result)
    return result


def _asHandshakeError(failure: Failure) -> HandshakeError:
    if isinstance(failure.value, HandshakeError):
        return failure.value
    _log.failure("WebSocket accept hook failed", failure)
    return HandshakeError("internal server error", 500)


def _refuse(request: Request, error: HandshakeError, refusals: SummaryLog | None = None) -> bytes:
    """
    Answer a refused upgrade with C{error}'s status, headers and message
    (the single place a L{HandshakeError} becomes an HTTP response).

    @param refusals: where refusals are counted per client address: the
        first one of an address is logged in full, the next ones summed up
        every L{REFUSAL_LOG_INTERVAL} seconds (C{None}: each in full).
    """
    # (An authentication refusal is logged, in aggregate, by the
    # FailureLimiter instead.) Credentials in the URL (?ws_token=) are
    # redacted, and the URL and the message (which may quote a header) are
    # clipped: a client cannot make the line long.
    address = request.getClientAddress()
    key = clientKey(address)
    if not getattr(error, "logged", False) and (refusals is None or refusals.note(key, str(error.statusCode))):
        more = "" if refusals is None else f"; more from {key} are summed up every {refusals.interval:g}s"
        _log.info(
            "WebSocket handshake refused for {peer} on {path}: {status} {message}{more}",
            peer=formatPeer(address),
            path=loggableURL(request.uri.decode("latin-1", "replace")),
            status=error.statusCode,
            message=clip(str(error)),
            more=more,
        )
    request.setResponseCode(error.statusCode, _phrase(error.statusCode))
    for name, value in error.headers:
        request.setHeader(name, value)
    body = f"{error}\n".encode()
    request.setHeader("Content-Type", "text/plain; charset=utf-8")
    request.setHeader("Content-Length", str(len(body)))
    if _isWebSocketStream(request.channel):
        # HTTP/2: the refusal ends the stream, not the connection (and a
        # Connection header is malformed there, RFC 9113 §8.2.2).
        return body
    # A connection that came to upgrade and did not gets no second request
    # (slow or not): the refusal ends it (RFC 9112 §9.6), on a plain Site too.
    request.setHeader("Connection", "close")
    if isinstance(request.channel, HTTPChannel):
        request.channel.persistent = False
    return body


def _isWebSocketStream(channel: object) -> bool:
    """
    Whether a request's C{channel} is an HTTP/2 extended CONNECT stream
    (L{txpulse.server.http2.WebSocketH2Stream}; by an attribute, so that
    HTTP/1.1 never imports HTTP/2).
    """
    return getattr(channel, "isHTTP2", False) is True


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"WebSocket Handshake Refused"


def _summarizeRefusals(address: str, counts: Mapping[str, int], seconds: float) -> None:
    _log.info(
        "WebSocket handshakes refused for {address}: {count} more in the last {seconds:.0f}s ({statuses})",
        address=address,
        count=sum(counts.values()),
        seconds=seconds,
        statuses=", ".join(f"{count} x {status}" for status, count in sorted(counts.items())),
    )

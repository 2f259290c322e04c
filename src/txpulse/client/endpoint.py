# -*- test-case-name: tests.client.test_endpoint -*-
"""
L{WebSocketClientEndpoint}: the shape of Twisted's, plus headers,
subprotocols, keepalive, limits and TLS options.

The byte-level work is the same as the server's: after the opening handshake
(the client's half lives in L{txpulse.core.handshake}), a client-side core
L{Connection} (which masks every frame and refuses masked ones) is driven by
a L{WebSocketWire}.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hyperlink import URL
from OpenSSL import SSL
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IDelayedCall,
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.ssl import Certificate, CertificateOptions, optionsForClientTLS, trustRootFromCertificates
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.connection import Connection, Side
from ..core.deflate import Deflate, DeflateSettings, client_accept, client_offer
from ..core.exceptions import HandshakeError, NegotiationError
from ..core.handshake import ResponseHead, client_request, parse_response_head, validate_response
from ..settings import UNSET, ConnectionSettings, Unset
from ..wire.interfaces import WebSocketProtocol
from ..wire.protocol import WebSocketWire, WireOptions
from .outcome import Outcome
from .rejection import MAX_REJECTION_BODY, ConnectionRejected, RejectionBody

__all__ = [
    "MAX_REJECTION_BODY",
    "ConnectionRejected",
    "WebSocketClientEndpoint",
    "WebSocketClientFactory",
    "HandshakeTimeout",
    "InvalidURL",
    "parseURL",
]

_log = Logger()

P = TypeVar("P", bound=WebSocketProtocol)
P_co = TypeVar("P_co", bound=WebSocketProtocol, covariant=True)


class WebSocketClientFactory(Protocol[P_co]):
    """
    Builds the application protocol for a connection (the shape of
    C{twisted.web.websocket.WebSocketClientFactory}).
    """

    def buildProtocol(self, url: str) -> P_co: ...


class InvalidURL(ValueError):
    """
    The URL is not a usable C{ws://}, C{wss://}, C{http://} or C{https://}
    URL.
    """


class HandshakeTimeout(HandshakeError):
    """
    The server did not complete the opening handshake in time.
    """

    statusCode = 504


@dataclass(frozen=True, slots=True)
class _Target:
    """
    A parsed, validated WebSocket URL.
    """

    url: str
    secure: bool
    host: str
    port: int
    resource: str

    @property
    def hostHeader(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


#: URL scheme -> secure? C{http://} and C{https://} stand for C{ws://} and
#: C{wss://}, as in C{twisted.web.websocket}'s client (which takes them) and
#: in browsers (the WHATWG WebSocket standard maps them the same way).
_SCHEMES = {"ws": False, "wss": True, "http": False, "https": True}


def parseURL(url: str) -> _Target:
    """
    Parse a C{ws://} or C{wss://} URL (RFC 6455 §3); C{http://} and
    C{https://} are taken as C{ws://} and C{wss://}.

    @raise InvalidURL: for another scheme, a missing host, a fragment, or a
        malformed URL.
    """
    try:
        parsed = URL.from_text(url)
    except Exception as error:  # hyperlink raises several types
        raise InvalidURL(f"malformed URL {url!r}: {error}") from None
    scheme = parsed.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidURL(f"not a WebSocket URL (ws://, wss://, http:// or https://): {url!r}")
    if not parsed.host:
        raise InvalidURL(f"no host in {url!r}")
    if parsed.fragment:
        # RFC 6455 §3: "Fragment identifiers ... MUST NOT be used".
        raise InvalidURL(f"a WebSocket URL has no fragment: {url!r}")
    secure = _SCHEMES[scheme]
    try:
        port = parsed.port or (443 if secure else 80)
    except ValueError:
        raise InvalidURL(f"bad port in {url!r}") from None
    if not 0 < port < 65536:
        raise InvalidURL(f"bad port in {url!r}")
    resource = parsed.replace(scheme="", host="", port=None, fragment="").to_uri().to_text() or "/"
    if not resource.startswith("/"):
        resource = "/" + resource
    return _Target(url, secure, parsed.host, port, resource)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """
    A TLS client connection creator that does not verify the server
    (C{insecure=True}: for testing against self-signed servers only).
    """

    def __init__(self, hostname: str, acceptableProtocols: Sequence[bytes] = ()) -> None:
        self._hostname = hostname.encode("idna")
        self._context = CertificateOptions(verify=False).getContext()
        self._alpn = list(acceptableProtocols)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(self._hostname)
        if self._alpn:
            connection.set_alpn_protos(self._alpn)
        return connection


_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _tlsCreator(
    host: str, caFile: str | None, insecure: bool, acceptableProtocols: Sequence[bytes] = ()
) -> IOpenSSLClientConnectionCreator:
    # acceptableProtocols: ALPN (h2 for WebSockets over HTTP/2).
    alpn = list(acceptableProtocols) or None
    if insecure:
        return _UnverifiedTLS(host, acceptableProtocols)
    if caFile is None:
        return optionsForClientTLS(host, acceptableProtocols=alpn)
    with open(caFile, "rb") as handle:
        blocks = _PEM_BLOCK.findall(handle.read())
    if not blocks:
        raise ValueError(f"no PEM certificate in {caFile}")
    trustRoot = trustRootFromCertificates([Certificate.loadPEM(block) for block in blocks])
    return optionsForClientTLS(host, trustRoot=trustRoot, acceptableProtocols=alpn)


class _ClientHandshake(TwistedProtocol):
    """
    The byte-level protocol of one client connection: sends the upgrade,
    reads the answer, then hands the transport to a L{WebSocketWire}.
    """

    def __init__(self, endpoint: WebSocketClientEndpoint, target: _Target, app: WebSocketProtocol) -> None:
        self._endpoint = endpoint
        self._target = target
        self._app = app
        self._key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        self._buffer = bytearray()
        self._head: ResponseHead | None = None
        self._rejection: RejectionBody | None = None
        self._timer: IDelayedCall | None = None
        self._outcome: Outcome[WebSocketProtocol] = Outcome()
        self.wire: WebSocketWire | None = None

    def whenOpened(self) -> Deferred[WebSocketProtocol]:
        """
        A new Deferred that fires with the application protocol once the
        handshake succeeded, or fails with why it did not.
        """
        return self._outcome.wait(self._cancel)

    def _cancel(self, waiter: Deferred[WebSocketProtocol]) -> None:
        """
        Whoever waited for the handshake gave up (e.g. C{connect()} was
        cancelled, or a reconnecting service stopped): drop the connection.
        """
        if not self._outcome.settled and self.transport is not None:
            self._fail(Failure(CancelledError("the WebSocket connection attempt was cancelled")))
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def _settle(self, outcome: WebSocketProtocol | Failure) -> None:
        self._outcome.settle(outcome)

    def connectionMade(self) -> None:
        endpoint = self._endpoint
        assert self.transport is not None
        self.transport.write(
            client_request(
                self._target.hostHeader,
                self._target.resource,
                self._key,
                subprotocols=endpoint.subprotocols,
                origin=endpoint.origin,
                headers=endpoint.headers
                + ((("Sec-WebSocket-Extensions", client_offer(endpoint.compression)),) if endpoint.compression else ()),
            )
        )
        self._timer = endpoint.clock.callLater(endpoint.handshakeTimeout, self._timedOut)

    def _timedOut(self) -> None:
        self._timer = None
        timedOut = HandshakeTimeout(f"no WebSocket handshake answer within {self._endpoint.handshakeTimeout}s", 504)
        if self._rejection is not None:
            # Refused already; the refusal's body is what ran late.
            self._rejection.fail(Failure(timedOut))
        else:
            self._fail(timedOut)
        assert self.transport is not None
        self.transport.abortConnection()  # type: ignore[attr-defined]

    def _fail(self, error: BaseException | Failure) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._settle(error if isinstance(error, Failure) else Failure(error))

    def dataReceived(self, data: bytes) -> None:
        if self._rejection is not None:
            self._rejection.dataReceived(data)  # the refusal's body
            return
        if self._outcome.settled:
            return  # the attempt failed or was cancelled: ignore what follows
        self._buffer += data
        if self._head is None:
            try:
                parsed = parse_response_head(self._buffer)
            except NegotiationError as error:
                self._abort(error)
                return
            if parsed is None:
                return
            self._head, used = parsed
            del self._buffer[:used]
            if self._head.status == 101:
                self._upgrade()
                return
            self._reject()

    def _reject(self) -> None:
        """
        A non-101 answer: fail with L{ConnectionRejected} now, on its head
        (as C{twisted.web.websocket}'s client does), and stream its body into
        the exception's C{response} as it arrives (see
        L{txpulse.client.rejection}). The handshake timer keeps running
        until the body has ended; the connection is closed then.
        """
        assert self._head is not None and self.transport is not None
        transport = self.transport
        body = RejectionBody(self._head, transport, lambda: self._bodyEnded(transport))
        self._rejection = body
        rejected = ConnectionRejected(self._head.status, body.response, headers=self._head.headers)
        rest, self._buffer = bytes(self._buffer), bytearray()
        # What came with the head is in .body before connect() fails.
        body.dataReceived(rest)
        self._settle(Failure(rejected))

    def _bodyEnded(self, transport: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport.loseConnection()

    def _abort(self, error: BaseException) -> None:
        self._fail(error)
        assert self.transport is not None
        self.transport.abortConnection()  # type: ignore[attr-defined]

    def _upgrade(self) -> None:
        assert self._head is not None
        endpoint = self._endpoint
        try:
            settings = endpoint.compression
            subprotocol = validate_response(self._head, self._key, endpoint.subprotocols, settings is not None)
            agreed = None if settings is None else client_accept(self._head.get("Sec-WebSocket-Extensions"), settings)
        except NegotiationError as error:
            self._abort(error)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wire = endpoint._wireFor(self._app, agreed, subprotocol)
        self.wire = wire
        # From here on the transport's bytes go straight to the wire (and
        # connectionLost hands the loss to it).
        self.dataReceived = wire.dataReceived  # type: ignore[method-assign]
        assert self.transport is not None
        wire.makeConnection(self.transport)
        rest = bytes(self._buffer)
        self._buffer = bytearray()
        self._settle(self._app)
        if rest:
            wire.dataReceived(rest)

    #: Set by L{notifyLost}.
    _beforeLost: Callable[[Failure], object] | None = None
    _afterLost: Callable[[Failure], object] | None = None

    def notifyLost(self, before: Callable[[Failure], object], after: Callable[[Failure], object]) -> None:
        """
        When the connection is lost, call C{before(reason)} before the
        application protocol hears of it and C{after(reason)} once it has
        (the reconnecting service's hook).
        """
        self._beforeLost, self._afterLost = before, after

    def connectionLost(self, reason: Failure | None = None) -> None:
        if reason is None:
            reason = Failure(ConnectionDone())
        if self._beforeLost is not None:
            self._beforeLost(reason)
        if self.wire is not None:
            self.wire.connectionLost(reason)
        else:
            if self._rejection is not None:
                self._rejection.connectionLost(reason)
            self._fail(reason)
        if self._afterLost is not None:
            self._afterLost(reason)


@dataclass(frozen=True)
class WebSocketClientEndpoint:
    """
    Where and how to connect: C{WebSocketClientEndpoint.new(reactor, url)},
    then C{protocol = await endpoint.connect(factory)}.

    The same shape as C{twisted.web.websocket.WebSocketClientEndpoint}; the
    extra settings are keyword arguments of L{new}, the connection's ones
    gathered in C{settings} (a L{ConnectionSettings}).
    """

    reactor: Any
    url: str
    target: _Target
    tcpEndpoint: IStreamClientEndpoint
    clock: IReactorTime
    headers: tuple[tuple[str, str], ...] = ()
    origin: str | None = None
    settings: ConnectionSettings = field(default_factory=lambda: ConnectionSettings.defaults(Side.CLIENT))
    #: WebSockets over HTTP/2 (RFC 8441, L{txpulse.client.http2}): C{False},
    #: C{True} or C{"auto"} (see L{new}); with the endpoint to connect
    #: through (TLS offering h2 in ALPN), the origin's key in the pool and
    #: the pool (C{None}: L{txpulse.client.http2.DEFAULT_POOL}).
    http2: bool | str = False
    http2Endpoint: IStreamClientEndpoint | None = None
    http2Key: tuple[Any, ...] = ()
    http2Pool: Any = None
    #: The wire's share of C{settings} (derived).
    wireOptions: WireOptions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.settings.checkSide(Side.CLIENT)
        object.__setattr__(self, "wireOptions", WireOptions.fromSettings(self.settings))

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """
        The subprotocols offered, most preferred first.
        """
        return self.settings.subprotocols

    @property
    def handshakeTimeout(self) -> float:
        """
        Seconds for the server's answer to the upgrade.
        """
        return self.settings.handshakeTimeout

    def _wireFor(self, app: Any, agreed: Any, subprotocol: str | None) -> WebSocketWire:
        """
        The wire of a connection of this endpoint whose handshake agreed
        C{subprotocol} and C{agreed} (a permessage-deflate agreement, or
        C{None}): built here once for both transports, HTTP/1.1 upgrades
        and HTTP/2 streams (L{txpulse.client.http2}).
        """
        settings = self.compression
        deflate = None
        if agreed is not None and settings is not None:
            deflate = Deflate(
                agreed, is_server=False, level=settings.level, mem_level=settings.mem_level, min_size=settings.min_size
            )
        conn = Connection(
            Side.CLIENT,
            max_message_size=self.maxMessageSize,
            max_frame_size=self.settings.maxFrameSize,
            deflate=deflate,
        )
        return WebSocketWire(app, conn, clock=self.clock, options=self.wireOptions, subprotocol=subprotocol)

    @property
    def maxMessageSize(self) -> int | None:
        """
        The largest message accepted (C{None}: no limit).
        """
        return self.settings.maxMessageSize

    @property
    def compression(self) -> DeflateSettings | None:
        """
        The permessage-deflate offer, or C{None} for none.
        """
        return self.settings.deflateSettings(Side.CLIENT)

    @classmethod
    def new(
        cls,
        reactor: Any,
        url: str,
        tlsPolicy: IOpenSSLClientConnectionCreator | None = None,
        connectTimeout: float | None = None,
        bindAddress: tuple[str, int] | None = None,
        *,
        settings: ConnectionSettings | None = None,
        headers: Sequence[tuple[str, str]] | dict[str, str] = (),
        subprotocols: Sequence[str] | Unset = UNSET,
        origin: str | None = None,
        handshakeTimeout: float | Unset = UNSET,
        pingInterval: float | None | Unset = UNSET,
        pingTimeout: float | Unset = UNSET,
        idleTimeout: float | None | Unset = UNSET,
        maxMessageSize: int | None | Unset = UNSET,
        maxFrameSize: int | None | Unset = UNSET,
        closeTimeout: float | Unset = UNSET,
        maxWriteBuffer: int | Unset = UNSET,
        caFile: str | None = None,
        insecure: bool = False,
        compression: DeflateSettings | bool | Unset = UNSET,
        http2: bool | str = False,
        http2Pool: Any = None,
    ) -> WebSocketClientEndpoint:
        """
        Describe a connection to C{url}.

        @param reactor: provides TCP, time (and name resolution).
        @param url: C{ws://host[:port]/path?query} or C{wss://...};
            C{http://} and C{https://} URLs are taken as C{ws://} and
            C{wss://} (as Twisted's endpoint and browsers do).
        @param tlsPolicy: a TLS connection creator for wss:// (default:
            verify the server against the platform's trust roots and check
            the host name, as C{optionsForClientTLS} does).
        @param connectTimeout: seconds for the TCP connection (default: 30).
        @param bindAddress: a local C{(host, port)} to connect from.
        @param settings: keepalive, timeouts, limits, compression and
            subprotocols (default: C{ConnectionSettings.defaults(Side.CLIENT)}:
            the server's defaults, except that the client does not ping);
            see L{ConnectionSettings}. Server-only settings (C{allowedOrigins},
            C{maxIncompleteSize}) must be left at their defaults.
        @param headers: extra request headers, e.g.
            C{{"Authorization": "Bearer ..."}}.
        @param subprotocols: a setting, overriding C{settings}' (each of
            these keyword arguments has the name, type and meaning of a
            L{ConnectionSettings} field; left out, C{settings}' value holds):
            the subprotocols offered, most preferred first.
        @param origin: an C{Origin} header to send.
        @param handshakeTimeout: a setting: seconds for the server's answer
            to the upgrade; then L{HandshakeTimeout}.
        @param pingInterval: a setting: seconds of silence from the server
            after which the client pings (default: off); with
            C{pingTimeout}, detects a dead server that never closes TCP.
        @param pingTimeout: a setting: seconds to wait for any frame after
            that ping (then close 1011 and drop).
        @param idleTimeout: a setting: seconds without a message from the
            server before closing with 1001 (default: never).
        @param maxMessageSize: a setting (1009 above it).
        @param maxFrameSize: a setting (1009 above it).
        @param closeTimeout: a setting: seconds for the closing handshake and
            for the server to close TCP.
        @param maxWriteBuffer: a setting: bytes that may queue up for a
            server that stops reading.
        @param caFile: a PEM file of CA certificates to trust instead of the
            platform's (for private CAs); the host name is still checked.
        @param insecure: skip certificate verification entirely (testing
            only).
        @param compression: a setting: offer permessage-deflate (RFC 7692):
            C{True} for the default L{DeflateSettings}, or your own; the
            server may decline. A response that breaks the offer fails the
            handshake.
        @param http2: WebSockets over HTTP/2 (RFC 8441), wss:// only:
            C{False} (the default) upgrades an HTTP/1.1 connection of its
            own; C{True} opens the WebSocket as a stream of the origin's
            HTTP/2 connection (shared by every WebSocket to the origin) and
            fails with L{NegotiationError} if the server does not offer it;
            C{"auto"} does so if the server offers it (ALPN C{h2} and
            C{SETTINGS_ENABLE_CONNECT_PROTOCOL}), and upgrades HTTP/1.1
            otherwise. A C{tlsPolicy} given must offer C{h2} in ALPN itself.
        @param http2Pool: the L{txpulse.client.http2.HTTP2Pool} whose
            connections are shared (default: one for the process).
        @raise InvalidURL: for a URL that is not ws://, wss://, http:// or
            https://.
        @raise ValueError: for a C{caFile} without certificates, or a bad
            setting (naming it; L{TypeError} for one of a wrong type).
        """
        connection = (ConnectionSettings.defaults(Side.CLIENT) if settings is None else settings).override(
            subprotocols=subprotocols,
            handshakeTimeout=handshakeTimeout,
            pingInterval=pingInterval,
            pingTimeout=pingTimeout,
            idleTimeout=idleTimeout,
            maxMessageSize=maxMessageSize,
            maxFrameSize=maxFrameSize,
            closeTimeout=closeTimeout,
            maxWriteBuffer=maxWriteBuffer,
            compression=compression,
        )
        target = parseURL(url)
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor,
            target.host,
            target.port,
            timeout=30 if connectTimeout is None else connectTimeout,
            bindAddress=bindAddress,
        )
        if http2 not in (False, True, "auto"):
            raise ValueError(f"http2 must be False, True or 'auto', not {http2!r}")
        if http2 is True and not target.secure:
            raise ValueError("WebSockets over HTTP/2 need a wss:// URL (HTTP/2 is negotiated in TLS)")
        plain = endpoint
        h2Endpoint: IStreamClientEndpoint | None = None
        if target.secure:
            creator = tlsPolicy if tlsPolicy is not None else _tlsCreator(target.host, caFile, insecure)
            endpoint = wrapClientTLS(creator, plain)
            if http2:
                h2Creator = (
                    tlsPolicy
                    if tlsPolicy is not None
                    else _tlsCreator(target.host, caFile, insecure, [b"h2", b"http/1.1"])
                )
                h2Endpoint = wrapClientTLS(h2Creator, plain)
        pairs = tuple(headers.items()) if isinstance(headers, dict) else tuple(headers)
        return cls(
            reactor=reactor,
            url=url,
            target=target,
            tcpEndpoint=endpoint,
            clock=reactor,
            headers=pairs,
            origin=origin,
            settings=connection,
            http2=http2 if h2Endpoint is not None else False,
            http2Endpoint=h2Endpoint,
            http2Key=(id(reactor), target.host, target.port, caFile, insecure, id(tlsPolicy), bindAddress),
            http2Pool=http2Pool,
        )

    def protocolFactory(self, factory: WebSocketClientFactory[P]) -> Factory:
        """
        A Twisted protocol factory whose protocols perform the WebSocket
        handshake over whatever stream they get (used by L{connect} and by
        L{ReconnectingWebSocketService}).
        """
        endpoint = self

        class _Factory(Factory):
            def buildProtocol(self, addr: object) -> _ClientHandshake:
                return _ClientHandshake(endpoint, endpoint.target, factory.buildProtocol(endpoint.url))

        return _Factory()

    async def connect(self, factory: WebSocketClientFactory[P]) -> P:
        """
        Connect, perform the opening handshake and return the application
        protocol once the connection is open.

        @raise ConnectionRejected: the server answered with an HTTP status
            (C{.statusCode}, C{.headers}, C{.response}, C{.body}), raised
            as soon as the response head arrived; the body streams into
            C{.response} (C{deliverBody}, C{readBody}) and C{.body}
            (complete once C{.whenBodyRead()} fires).
        @raise HandshakeTimeout: no answer within C{handshakeTimeout}.
        @raise NegotiationError: a 101 that does not complete the handshake
            (wrong accept key, unoffered subprotocol or extension).
        @raise twisted.internet.error.ConnectError: the TCP connection
            failed (refused, DNS failure, timeout), or TLS verification did.
        """
        if self.http2:
            from .http2 import openOverHTTP2

            opened = await openOverHTTP2(self, factory)
            if opened is not None:
                return opened  # type: ignore[return-value]
        handshake: _ClientHandshake = await self.tcpEndpoint.connect(self.protocolFactory(factory))  # type: ignore[assignment]
        app: P = await handshake.whenOpened()  # type: ignore[assignment]
        return app

# -*- test-case-name: tests.client.test_rejection,tests.client.test_endpoint -*-
"""
A refused client handshake: L{ConnectionRejected} and the HTTP response it
carries.

Theory of operation. When the server answers the upgrade with anything but
C{101}, the client fails C{connect()} as soon as the response I{head} has
arrived, as C{twisted.web.websocket} does: the status and headers are known
then, and a server that sends its refusal's body slowly (or never finishes
it) must not hold C{connect()} until the handshake timeout. The body keeps
arriving on the same connection and is streamed to whoever asks for it:

  - C{rejected.response.deliverBody(protocol)} (or C{readBody(response)}),
    the C{IResponse} way, as with Twisted's C{ConnectionRejected};
  - C{rejected.body}, the bytes received so far, and
    C{rejected.whenBodyRead()}, a L{Deferred} firing with all of it.

The body is framed as RFC 9112 §6.3 says: none for 1xx, 204 and 304; by
chunks (§7.1) when C{Transfer-Encoding} ends with C{chunked}; by
C{Content-Length}; otherwise until the server closes. At most
L{MAX_REJECTION_BODY} bytes are taken: there the body ends and the
connection is closed. The client's C{handshakeTimeout} still bounds the whole
answer, body included (then the body ends with a L{ResponseFailed}).

Nothing here reaches into Twisted's private API: L{RejectionResponse} is
txpulse's own C{IResponse}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProtocol, IPushProducer, ITransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IClientRequest, IResponse
from twisted.web.websocket import ConnectionRejected as TwistedConnectionRejected
from zope.interface import implementer

from ..core.exceptions import WebSocketError
from ..core.handshake import ResponseHead, header_tokens

__all__ = ["MAX_REJECTION_BODY", "ConnectionRejected", "RejectionBody", "RejectionResponse"]

#: The most body bytes of a refused handshake taken (then the body ends and
#: the connection is closed).
MAX_REJECTION_BODY = 64 * 1024

#: The longest chunk-size or trailer line accepted in a chunked body.
_MAX_CHUNK_LINE = 4096


class ConnectionRejected(WebSocketError, TwistedConnectionRejected):
    """
    The server refused the WebSocket handshake with an HTTP response.

    A subclass of C{twisted.web.websocket.ConnectionRejected}, so code that
    catches Twisted's catches this one; C{response} is the HTTP response,
    its body streamed (C{deliverBody}, C{readBody}).

    Raised by C{connect()} as soon as the response head has arrived; the
    body may still be on its way.

    @ivar response: a L{RejectionResponse} (an C{IResponse}), or C{None}
        when only the status is known.
    @ivar statusCode: the HTTP status code of the refusal.
    @ivar headers: the response headers, as C{(name, value)} pairs.
    """

    # Exceptions compare by identity and are hashable (Twisted's is a
    # dataclass, which compares fields and is unhashable).
    __eq__ = Exception.__eq__
    __hash__ = Exception.__hash__
    __repr__ = Exception.__repr__

    def __init__(
        self,
        statusCode: int,
        response: IResponse | None = None,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        Exception.__init__(self, f"WebSocket handshake refused with HTTP {statusCode}")
        self.statusCode = statusCode
        self.response = response  # type: ignore[assignment]
        self.headers = headers
        self._body = body

    @property
    def body(self) -> bytes:
        """
        The response body received so far (at most L{MAX_REJECTION_BODY}
        bytes): complete once L{whenBodyRead} has fired. When the server
        sent the head and the body together (the usual case) it is complete
        when C{connect()} fails.
        """
        if isinstance(self.response, RejectionResponse):
            return bytes(self.response._kept)
        return self._body

    def whenBodyRead(self) -> Deferred[bytes]:
        """
        A new L{Deferred} that fires with L{body} once the body has ended:
        complete, cut at L{MAX_REJECTION_BODY}, or cut short because the
        connection was lost or C{handshakeTimeout} ran out. It never fails.
        """
        if isinstance(self.response, RejectionResponse):
            return self.response._whenEnded().addCallback(lambda _: self.body)
        return succeed(self._body)


@implementer(IPushProducer)
class _BodyTransport:
    """
    The transport a body protocol gets (C{protocol.makeConnection}): pause,
    resume, stop and abort reach the connection while the body is being
    received, and do nothing once it has ended.
    """

    def __init__(self, transport: ITransport) -> None:
        self._transport: Any = transport

    def _detach(self) -> None:
        self._transport = None

    def pauseProducing(self) -> None:
        if self._transport is not None:
            self._transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self._transport is not None:
            self._transport.resumeProducing()

    def stopProducing(self) -> None:
        self.abortConnection()

    def loseConnection(self) -> None:
        if self._transport is not None:
            self._transport.loseConnection()

    def abortConnection(self) -> None:
        if self._transport is not None:
            self._transport.abortConnection()


@implementer(IResponse)
class RejectionResponse:
    """
    The HTTP response of a refused handshake: an C{IResponse} whose body is
    streamed as it arrives, like the C{twisted.web.client.Response} of
    Twisted's C{ConnectionRejected}. C{deliverBody} may be called once; the
    protocol gets what was buffered, then the rest as it arrives, then
    C{connectionLost} with L{ResponseDone} (the body is complete),
    or L{ResponseFailed} (it was cut short).

    @ivar version: C{(b"HTTP", major, minor)}.
    @ivar code: the status code.
    @ivar phrase: the reason phrase.
    @ivar headers: the L{Headers}.
    @ivar length: the C{Content-Length}, or C{UNKNOWN_LENGTH}.
    """

    request: IClientRequest | None = None
    previousResponse: IResponse | None = None

    def __init__(
        self, version: tuple[bytes, int, int], code: int, phrase: bytes, headers: Headers, length: Any, transport: ITransport
    ) -> None:
        self.version = version
        self.code = code
        self.phrase = phrase
        self.headers = headers
        self.length = length
        self._transport = _BodyTransport(transport)
        self._kept = bytearray()
        self._pending: list[bytes] | None = []  # None once delivered
        self._protocol: IProtocol | None = None
        self._reason: Failure | None = None
        self._waiters: list[Deferred[None]] = []

    def setPreviousResponse(self, response: IResponse) -> None:
        self.previousResponse = response

    def deliverBody(self, protocol: IProtocol) -> None:
        """
        Deliver the body to C{protocol}: what arrived already at once, the
        rest as it arrives.

        @raise RuntimeError: if called a second time.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError("the body of this response was already delivered")
        self._protocol = protocol
        # Like Twisted's own response bodies (TransportProxyProducer), the
        # body's transport is a push producer, not a full ITransport.
        protocol.makeConnection(self._transport)  # type: ignore[arg-type]
        for data in pending:
            protocol.dataReceived(data)
        if self._reason is not None:
            protocol.connectionLost(self._reason)

    def _whenEnded(self) -> Deferred[None]:
        if self._reason is not None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def _received(self, data: bytes) -> None:
        self._kept += data
        if self._pending is not None:
            self._pending.append(data)
        elif self._protocol is not None:
            self._protocol.dataReceived(data)

    def _ended(self, reason: Failure) -> None:
        if self._reason is not None:
            return
        self._reason = reason
        self._transport._detach()
        if self._protocol is not None:
            self._protocol.connectionLost(reason)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)


def _done() -> Failure:
    return Failure(ResponseDone("Response body fully received"))


class RejectionBody:
    """
    Reads the body of a refusal off the connection (the handshake protocol
    feeds it everything after the head) into a L{RejectionResponse}.

    @ivar response: the response the body goes to.
    """

    def __init__(self, head: ResponseHead, transport: ITransport, close: Callable[[], None]) -> None:
        """
        @param close: called once when the body has ended while the
            connection is still up (to close it).
        """
        headers = Headers()
        for name, value in head.headers:
            headers.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        lengths = head.get("Content-Length")
        length: int | None = int(lengths[0]) if len(set(lengths)) == 1 and lengths[0].isdigit() else None
        codings = [token.lower() for token in header_tokens(head.get("Transfer-Encoding"))]
        # RFC 9112 §6.3: no body after 1xx, 204 and 304; chunked wins over
        # Content-Length; without either, the body runs until the close.
        self._remaining: int | None
        if 100 <= head.status < 200 or head.status in (204, 304):
            self._remaining, self._chunked, length = 0, False, 0
        elif codings:
            self._remaining, self._chunked, length = None, codings[-1] == "chunked", None
        else:
            self._remaining, self._chunked = length, False
        version = (b"HTTP", 1, 1)
        self.response = RejectionResponse(
            version,
            head.status,
            head.reason.encode("latin-1"),
            headers,
            UNKNOWN_LENGTH if length is None else length,
            transport,
        )
        self._close = close
        self._buffer = bytearray()
        self._chunkLeft = 0  # data bytes left in the current chunk
        self._state = "size"  # size, data, crlf, trailers
        self._taken = 0
        if self._remaining == 0:
            self._finish(_done())

    @property
    def ended(self) -> bool:
        """
        Whether the body has ended (and nothing more is read).
        """
        return self.response._reason is not None

    def dataReceived(self, data: bytes) -> None:
        """
        Bytes that arrived after the head (or after earlier body bytes).
        """
        if self.ended:
            return
        if self._chunked:
            self._buffer += data
            self._dechunk()
        elif self._remaining is None:
            self._take(data)
        else:
            piece = data[: self._remaining]
            self._remaining -= len(piece)
            self._take(piece)
            if self._remaining == 0:
                self._finish(_done())

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection ended: a body that runs until the close is complete,
        any other is cut short.
        """
        if self.ended:
            return
        if self._remaining is None and not self._chunked:
            self._finish(_done(), close=False)
        else:
            self._finish(Failure(ResponseFailed([reason])), close=False)

    def fail(self, reason: Failure) -> None:
        """
        End the body with C{reason} (e.g. the handshake timeout ran out).
        """
        if not self.ended:
            self._finish(Failure(ResponseFailed([reason])), close=False)

    def _take(self, data: bytes) -> None:
        room = MAX_REJECTION_BODY - self._taken
        piece = data[:room]
        if piece:
            self._taken += len(piece)
            self.response._received(bytes(piece))
        if self._taken >= MAX_REJECTION_BODY and not self.ended:
            # Cut at the limit: the body ends here, as if complete.
            self._finish(_done())

    def _finish(self, reason: Failure, close: bool = True) -> None:
        self._buffer = bytearray()
        self.response._ended(reason)
        if close:
            self._close()

    def _dechunk(self) -> None:
        """
        Decode as much of a chunked body (RFC 9112 §7.1) as the buffer holds.
        """
        buffer = self._buffer
        while not self.ended:
            if self._state == "data":
                piece = bytes(buffer[: self._chunkLeft])
                del buffer[: len(piece)]
                self._chunkLeft -= len(piece)
                self._take(piece)
                if self._chunkLeft:
                    return
                self._state = "crlf"
                continue
            if self._state == "crlf":
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    self._malformed("no CRLF after a chunk")
                    return
                del buffer[:2]
                self._state = "size"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > _MAX_CHUNK_LINE:
                    self._malformed("chunk line too long")
                return
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == "trailers":
                if not line:
                    self._finish(_done())
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._malformed("malformed chunk size")
                return
            if size == 0:
                self._state = "trailers"
            else:
                self._chunkLeft, self._state = size, "data"

    def _malformed(self, why: str) -> None:
        self._finish(Failure(ResponseFailed([Failure(ValueError(f"refusal body: {why}"))])))

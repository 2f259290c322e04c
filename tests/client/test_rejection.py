"""
Tests for a refused client handshake (L{txpulse.client.rejection}):
C{connect()} fails on the response head, and the body streams into the
exception's C{response} (C{deliverBody}, C{readBody}) and C{.body} as it
arrives; in memory, and against a real server that trickles its body.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import AccumulatingProtocol, MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed, readBody
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import ConnectionRejected as TwistedConnectionRejected
from zope.interface.verify import verifyObject

from txpulse.client import HandshakeTimeout, WebSocketClientEndpoint
from txpulse.client.endpoint import MAX_REJECTION_BODY, ConnectionRejected

from ..support.apps import RecordingFactory
from ..support.transports import CountingTransport
from ..support.waits import within


def start(**options: Any) -> tuple[Any, CountingTransport, MemoryReactorClock, Deferred[Any]]:
    """
    A client handshake protocol on a string transport, and the Deferred
    that fires when its handshake ends.
    """
    clock = MemoryReactorClock()
    endpoint = WebSocketClientEndpoint.new(clock, "ws://example.com/ws", **options)
    protocol = endpoint.protocolFactory(RecordingFactory()).buildProtocol(None)
    transport = CountingTransport()
    protocol.makeConnection(transport)
    transport.clear()
    return protocol, transport, clock, protocol.whenOpened()


def rejected(opened: Deferred[Any]) -> ConnectionRejected:
    """
    The L{ConnectionRejected} C{opened} failed with (it must have).
    """
    failures: list[Failure] = []
    opened.addErrback(failures.append)
    assert len(failures) == 1, "the handshake did not fail"
    error = failures[0].value
    assert isinstance(error, ConnectionRejected), failures[0]
    return error


HEAD_CHUNKED = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"


def test_fails_on_the_head_and_streams_a_chunked_body() -> None:
    """
    C{connect()} fails with L{ConnectionRejected} as soon as the head has
    arrived (status and headers known, no body yet); then each chunk
    reaches the body protocol, and C{.body}, as it arrives (a chunk split
    across reads too); the last chunk ends the body with C{ResponseDone}
    and closes the connection.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(HEAD_CHUNKED)
    error = rejected(opened)
    assert error.statusCode == 403 and ("Content-Type", "text/plain") in error.headers
    assert error.body == b"" and not transport.disconnecting
    body = AccumulatingProtocol()
    assert error.response is not None
    error.response.deliverBody(body)
    assert body.data == b"" and body.closedReason is None
    protocol.dataReceived(b"5\r\nhello\r\n")
    assert body.data == b"hello" and error.body == b"hello"
    protocol.dataReceived(b"5\r\nwo")
    assert body.data == b"hellowo"
    protocol.dataReceived(b"rld\r\n0\r\nX-Trailer: 1\r\n")
    assert body.closedReason is None and not transport.disconnecting
    protocol.dataReceived(b"\r\n")
    assert body.data == b"helloworld" and error.body == b"helloworld"
    assert body.closedReason is not None and body.closedReason.check(ResponseDone)
    assert transport.disconnecting


def test_body_arriving_with_the_head_is_there_when_connect_fails() -> None:
    """
    A refusal sent in one piece (the usual case) fails C{connect()} with
    C{.body} already complete, and C{readBody} returns it.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 9\r\n\r\nbad token")
    error = rejected(opened)
    assert error.body == b"bad token"
    assert error.whenBodyRead().result == b"bad token"  # type: ignore[attr-defined]
    assert error.response is not None
    assert readBody(error.response).result == b"bad token"  # type: ignore[attr-defined]
    assert transport.disconnecting


def test_when_body_read_waits_for_a_content_length_body() -> None:
    """
    C{whenBodyRead()} fires with the whole body once C{Content-Length}
    bytes have arrived; bytes after them are not body.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\nno such")
    error = rejected(opened)
    assert error.body == b"no such"
    whole = error.whenBodyRead()
    assert not whole.called
    assert error.response is not None and error.response.length == 12
    protocol.dataReceived(b" pathHTTP/1.1 200 OK\r\n")
    assert whole.result == b"no such path"  # type: ignore[attr-defined]
    assert transport.disconnecting


def test_close_delimited_body_ends_with_the_connection() -> None:
    """
    Without C{Content-Length} or chunks the body runs until the server
    closes, and is then complete (C{ResponseDone}).
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 404 Not Found\r\n\r\nno such")
    error = rejected(opened)
    assert error.response is not None and error.response.length is UNKNOWN_LENGTH
    body = readBody(error.response)
    protocol.dataReceived(b" path")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert body.result == b"no such path"  # type: ignore[attr-defined]
    assert error.body == b"no such path"


def test_body_cut_short_by_the_connection_fails() -> None:
    """
    A connection lost before C{Content-Length} bytes arrived ends the body
    with C{ResponseFailed}; C{.body} and C{whenBodyRead()} still give what
    came.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\npartial")
    error = rejected(opened)
    body = AccumulatingProtocol()
    assert error.response is not None
    error.response.deliverBody(body)
    protocol.connectionLost(Failure(ConnectionLost()))
    assert body.closedReason is not None and body.closedReason.check(ResponseFailed)
    assert error.whenBodyRead().result == b"partial"  # type: ignore[attr-defined]


def test_handshake_timeout_bounds_a_trickled_body() -> None:
    """
    A server that never finishes its refusal's body does not keep the
    connection: when C{handshakeTimeout} (counted from the request) runs
    out, the body ends with C{ResponseFailed} (wrapping
    L{HandshakeTimeout}) and the connection is aborted.
    """
    protocol, transport, clock, opened = start(handshakeTimeout=5.0)
    clock.advance(1)
    protocol.dataReceived(HEAD_CHUNKED + b"3\r\nabc\r\n")
    error = rejected(opened)
    body = AccumulatingProtocol()
    assert error.response is not None
    error.response.deliverBody(body)
    clock.advance(3.9)
    assert body.closedReason is None and not transport.aborted
    clock.advance(0.1)
    assert transport.aborted
    assert body.closedReason is not None and body.closedReason.check(ResponseFailed)
    assert body.closedReason.value.reasons[0].check(HandshakeTimeout)  # type: ignore[union-attr]
    protocol.connectionLost(Failure(ConnectionLost()))
    assert body.data == b"abc" and error.body == b"abc"


def test_a_finished_body_cancels_the_handshake_timer() -> None:
    """
    Once the body has ended, no timer is left behind.
    """
    protocol, transport, clock, opened = start(handshakeTimeout=5.0)
    protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    rejected(opened)
    assert clock.getDelayedCalls() == []


def test_body_is_cut_at_the_limit() -> None:
    """
    At most L{MAX_REJECTION_BODY} bytes are taken: the body ends there (as
    complete) and the connection is closed.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\n\r\n")
    error = rejected(opened)
    assert error.response is not None
    body = readBody(error.response)
    protocol.dataReceived(b"x" * (MAX_REJECTION_BODY - 1))
    assert not transport.disconnecting
    protocol.dataReceived(b"yz")
    assert transport.disconnecting
    assert body.result == b"x" * (MAX_REJECTION_BODY - 1) + b"y"  # type: ignore[attr-defined]
    assert len(error.body) == MAX_REJECTION_BODY


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
    ],
)
def test_statuses_without_a_body(head: bytes) -> None:
    """
    1xx (other than 101), 204 and 304 answers have no body (RFC 9112
    §6.3): it has ended, empty, when C{connect()} fails.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(head)
    error = rejected(opened)
    assert error.whenBodyRead().result == b""  # type: ignore[attr-defined]
    assert error.response is not None
    assert readBody(error.response).result == b""  # type: ignore[attr-defined]
    assert transport.disconnecting


def test_malformed_chunk_fails_the_body() -> None:
    """
    A malformed chunk size ends the body with C{ResponseFailed} and closes
    the connection.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(HEAD_CHUNKED + b"2\r\nok\r\nzz\r\n")
    error = rejected(opened)
    assert error.response is not None
    failures: list[Failure] = []
    readBody(error.response).addErrback(failures.append)
    assert failures and failures[0].check(ResponseFailed)
    assert error.body == b"ok" and transport.disconnecting


def test_response_is_an_iresponse_delivered_once() -> None:
    """
    C{.response} provides C{IResponse} (status, phrase, headers, length);
    its body can be delivered once.
    """
    protocol, transport, clock, opened = start()
    protocol.dataReceived(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 2\r\n\r\nno")
    response = rejected(opened).response
    assert response is not None
    assert verifyObject(IResponse, response)
    assert (response.version, response.code, response.phrase) == ((b"HTTP", 1, 1), 401, b"Unauthorized")
    assert response.headers.getRawHeaders(b"www-authenticate") == [b"Bearer"]
    response.deliverBody(AccumulatingProtocol())
    with pytest.raises(RuntimeError):
        response.deliverBody(AccumulatingProtocol())


def test_twisted_connection_rejected_catches_it() -> None:
    """
    txpulse's L{ConnectionRejected} is a C{twisted.web.websocket.ConnectionRejected}
    (code ported from Twisted catches it) and a txpulse C{WebSocketError};
    it compares by identity and is hashable, like other exceptions.
    """
    error = ConnectionRejected(403, body=b"no", headers=(("X", "1"),))
    assert isinstance(error, TwistedConnectionRejected)
    assert error == error and error != ConnectionRejected(403)
    assert hash(error) == hash(error)
    assert (error.statusCode, error.body, error.response) == (403, b"no", None)
    assert error.whenBodyRead().result == b"no"  # type: ignore[attr-defined]
    assert str(error) == "WebSocket handshake refused with HTTP 403"


class TricklingRefusal(Resource):
    """
    A C{twisted.web} resource that refuses with 403, sends its head at once
    and then one piece of the body every C{interval} seconds.
    """

    isLeaf = True

    def __init__(self, pieces: list[bytes], interval: float) -> None:
        super().__init__()
        self.pieces = pieces
        self.interval = interval
        self.finished = False

    def render_GET(self, request: Any) -> Any:
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain")
        request.write(b"")  # the head, now
        pieces = list(self.pieces)
        gone: list[object] = []
        request.notifyFinish().addBoth(gone.append)

        def step() -> None:
            if gone:
                return
            if pieces:
                request.write(pieces.pop(0))
                reactor.callLater(self.interval, step)  # type: ignore[attr-defined]
            else:
                self.finished = True
                request.finish()

        reactor.callLater(self.interval, step)  # type: ignore[attr-defined]
        return NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_trickling_server_refusal_fails_connect_at_once_and_streams_body(serve_txpulse: Any) -> None:
    """
    Against a real server that sends the refusal's head, then its body a
    piece every 0.4 s: C{connect()} fails while the server is still
    sending the body (long before the handshake timeout), and the body
    streams in through C{readBody} and C{whenBodyRead()}.
    """
    resource = TricklingRefusal([b"go ", b"away ", b"please"], 0.4)
    server = serve_txpulse({b"slow": resource})
    endpoint = WebSocketClientEndpoint.new(reactor, server.url("/slow"), handshakeTimeout=10.0)
    started = time.monotonic()
    with pytest.raises(ConnectionRejected) as caught:
        await within(endpoint.connect(RecordingFactory()))
    assert not resource.finished, "connect() waited for the whole body"
    error = caught.value
    assert error.statusCode == 403
    assert b"go away please".startswith(error.body) and error.body != b"go away please"
    assert error.response is not None
    body = await within(readBody(error.response))
    assert body == b"go away please"
    assert time.monotonic() - started >= 1.2
    assert await within(error.whenBodyRead()) == b"go away please"

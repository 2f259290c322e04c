"""
The reaches into Twisted's private HTTP/2 (L{txpulse.wire.twistedinternals}:
C{twisted.web._http2}, and the switch after ALPN), each touched against the
installed Twisted, so that a release that renames one fails here, by name.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from txpulse.server.http2 import WebSocketH2Connection
from txpulse.wire import twistedinternals as ti


class _Hold(Resource):
    """
    Answers nothing: the request stays open.
    """

    isLeaf = True

    def render(self, request: Any) -> Any:
        return NOT_DONE_YET


def test_h2_classes_and_the_private_methods_overridden_exist() -> None:
    """
    C{H2Connection} and C{H2Stream} are importable, and every private
    method L{txpulse.server.http2} overrides or calls is there.
    """
    assert ti.H2Connection is not None and ti.H2Stream is not None
    for name in (
        "_requestReceived",
        "_requestDataReceived",
        "_requestEnded",
        "_requestAborted",
        "_requestDone",
        "_tryToWriteControlData",
        "writeHeaders",
        "writeDataToStream",
        "endRequest",
        "abortRequest",
        "openStreamWindow",
        "timeoutConnection",
    ):
        assert callable(getattr(ti.H2Connection, name)), name
    for name in ("receiveDataChunk", "requestComplete", "connectionLost", "windowUpdated", "flowControlBlocked"):
        assert callable(getattr(ti.H2Stream, name)), name


def test_switch_to_http2_hands_the_connection_over() -> None:
    """
    L{ti.switchToHTTP2} makes a fresh generic channel protocol speak
    through the given connection: it is the wrapped channel, the
    transport's producer, the protocol is marked C{h2}, and the server's
    preface (its SETTINGS, with C{ENABLE_CONNECT_PROTOCOL}) is written.
    """
    clock = Clock()
    protocol: Any = Site(Resource(), reactor=clock).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert ti.negotiatedProtocol(protocol) is None
    connection = WebSocketH2Connection(clock)
    ti.switchToHTTP2(protocol, connection)
    assert ti.wrappedChannel(protocol) is connection
    assert ti.negotiatedProtocol(protocol) == b"h2"
    assert transport.producer is connection
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.receive_data(transport.value())
    assert client.remote_settings.enable_connect_protocol == 1
    connection.connectionLost(None)


def test_h2_stream_keeps_its_request() -> None:
    """
    C{H2Stream} builds its request at construction, as C{_request}, which
    L{txpulse.server.http2.WebSocketH2Stream} hands to the resource tree.
    """
    connection = ti.H2Connection(Clock())
    connection.makeConnection(StringTransport())
    site = Site(Resource())
    stream = ti.H2Stream(1, connection, [(b":method", b"GET"), (b":path", b"/")], site.requestFactory, site, site)
    assert stream._request.channel is stream


def test_outbound_queue_and_transport_pause_readers() -> None:
    """
    L{ti.outboundQueued} sees data Twisted's send loop has yet to frame for
    a stream, and L{ti.transportPaused} the TCP transport's pause of the
    connection.
    """
    clock = Clock()
    connection = ti.H2Connection(clock)
    site = Site(_Hold(), reactor=clock)
    connection.requestFactory, connection.site, connection.factory = site.requestFactory, site, site
    transport = StringTransport()
    connection.makeConnection(transport)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "x")])
    connection.dataReceived(client.data_to_send())
    assert not ti.outboundQueued(connection, 1)
    connection.writeDataToStream(1, b"queued")
    assert ti.outboundQueued(connection, 1)
    assert not ti.transportPaused(connection)
    connection.pauseProducing()
    assert ti.transportPaused(connection)
    connection.resumeProducing()
    assert not ti.transportPaused(connection)
    connection.connectionLost(None)

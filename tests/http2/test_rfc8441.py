"""
WebSockets over HTTP/2 (RFC 8441), server side, against an independent
peer: the C{h2} package's client over TLS on loopback (L{tests.http2.peer}),
frames built by hand and parsed by wsproto. Negotiation (§3-5), the
WebSocket inside the stream's DATA frames, the close handshake and resets,
flow control per stream, and the rest of the connection (plain HTTP/2
requests, HTTP/1.1 on the same port) left as Twisted serves it.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import pytest
import pytest_twisted
from wsproto.frame_protocol import Opcode

from txpulse.core.exceptions import HandshakeError
from txpulse.server.resource import WebSocketResource

from ..support.apps import RecordingFactory
from ..support.frames import client_frame, close_payload
from ..support.waits import until
from .peer import ENABLE_CONNECT_PROTOCOL, H2Peer, http11_get

pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")

call = H2Peer.call


@pytest_twisted.ensureDeferred
async def test_settings_advertise_enable_connect_protocol(serve: Any, peers: Any) -> None:
    """
    RFC 8441 §3: over ALPN C{h2}, the server's first SETTINGS frame says
    C{SETTINGS_ENABLE_CONNECT_PROTOCOL = 1}.
    """
    server = serve()
    peer = await peers(server)
    assert peer.alpn == "h2"
    settings = await call(peer.settings)
    assert settings[ENABLE_CONNECT_PROTOCOL] == 1


@pytest_twisted.ensureDeferred
async def test_extended_connect_gets_200_and_echoes_inside_data_frames(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    RFC 8441 §4-5: an extended CONNECT to a C{WebSocketResource} is answered
    C{:status 200} without C{sec-websocket-accept}; then masked frames sent
    in DATA frames reach the application, whose answers come back as
    unmasked frames in DATA frames; the application's request is an
    HTTP/2 one.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect, "/echo?x=1")
    head = await call(peer.response, stream)
    assert head[b":status"] == b"200"
    assert b"sec-websocket-accept" not in head
    await call(peer.send, stream, client_frame(Opcode.TEXT, "héllo".encode()) + client_frame(Opcode.BINARY, b"\0\1"))
    frames = await call(peer.frames, stream, 2)
    assert [(f.opcode, f.payload) for f in frames] == [(Opcode.TEXT, "héllo"), (Opcode.BINARY, b"\0\1")]
    app = recorder.built[0]
    assert app.messages == ["héllo", b"\0\1"]
    assert app.request.clientproto == b"HTTP/2"
    assert app.request.args == {b"x": [b"1"]}


@pytest_twisted.ensureDeferred
async def test_close_handshake_inside_the_stream_then_end_stream(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    A close frame from the peer is echoed inside the stream, then the
    server ends the stream (END_STREAM); the application sees a clean
    close with the peer's code and reason.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    await call(peer.send, stream, client_frame(Opcode.CLOSE, close_payload(1000, "bye")))
    frames = await call(peer.frames, stream, 1)
    assert frames[0].opcode == Opcode.CLOSE
    await call(peer.pump, lambda: peer.ended(stream), "END_STREAM")
    closed = await recorder.built[0].closed()
    assert (closed.code, closed.reason, closed.clean) == (1000, "bye", True)


@pytest_twisted.ensureDeferred
async def test_server_close_ends_the_stream_after_the_peer_answers(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    The application closes (1001): its close frame goes out in the stream;
    the peer's answer completes the handshake and the stream ends.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    app = await recorder.next()
    app.transport.loseConnection(1001, "going away")
    frames = await call(peer.frames, stream, 1)
    assert (frames[0].opcode, frames[0].payload) == (Opcode.CLOSE, (1001, "going away"))
    await call(peer.send, stream, client_frame(Opcode.CLOSE, close_payload(1001)), True)
    await call(peer.pump, lambda: peer.ended(stream), "END_STREAM")
    closed = await app.closed()
    assert (closed.code, closed.clean) == (1001, True)


@pytest_twisted.ensureDeferred
async def test_reset_mid_message_is_an_abnormal_closure(serve: Any, peers: Any, recorder: RecordingFactory) -> None:
    """
    The peer resets the stream (RST_STREAM) in the middle of a fragmented
    message: the application sees 1006, and the connection's other streams
    go on.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect)
    await call(peer.response, stream)
    app = await recorder.next()
    await call(peer.send, stream, client_frame(Opcode.TEXT, b"half of a", fin=False))
    await until(lambda: app.transport.bytesIn > 0, "the first fragment")
    await call(peer.resetStream, stream)
    closed = await app.closed()
    assert (closed.code, closed.clean) == (1006, False)
    other = await call(peer.connect)
    await call(peer.response, other)
    await call(peer.send, other, client_frame(Opcode.TEXT, b"still here"))
    assert [f.payload for f in await call(peer.frames, other, 1)] == ["still here"]


@pytest_twisted.ensureDeferred
async def test_wrong_version_is_refused_with_400_and_the_version(serve: Any, peers: Any) -> None:
    """
    RFC 6455 §4.4 over RFC 8441: C{sec-websocket-version} other than 13 is
    refused (400, not an HTTP/1.1 426) with C{sec-websocket-version: 13};
    a missing one too; the stream ends and the connection stays usable.
    """
    server = serve()
    peer = await peers(server)
    for version in (b"8", None):
        stream = await call(peer.connect, version=version)
        head = await call(peer.response, stream)
        assert head[b":status"] == b"400"
        assert head[b"sec-websocket-version"] == b"13"
        assert b"connection" not in head
        await call(peer.pump, lambda s=stream: peer.ended(s), "the end of the refusal")
    get = await call(peer.get, "/static")
    assert await call(peer.body, get) == b"static over h2\n"


@pytest_twisted.ensureDeferred
async def test_other_protocol_is_refused_with_400(serve: Any, peers: Any) -> None:
    """
    An extended CONNECT for another protocol than C{websocket} is refused.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect, protocol=b"connect-udp")
    assert (await call(peer.response, stream))[b":status"] == b"400"


@pytest_twisted.ensureDeferred
async def test_connect_without_protocol_is_a_protocol_error(serve: Any, peers: Any) -> None:
    """
    RFC 8441 §4 / RFC 9113 §8.5: a CONNECT with C{:scheme} and C{:path} but
    no C{:protocol} is malformed: a PROTOCOL_ERROR (h2 makes it the
    connection's, with GOAWAY).
    """
    server = serve()
    peer = await peers(server)
    await call(peer.connect, protocol=None, validate=False)
    terminated = await call(peer.terminated)
    assert terminated.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


@pytest_twisted.ensureDeferred
async def test_connect_without_the_setting_is_reset(serve: Any, peers: Any) -> None:
    """
    RFC 8441 §3-4: a server that did not advertise
    C{SETTINGS_ENABLE_CONNECT_PROTOCOL} (here: C{http2WebSockets} off)
    treats an extended CONNECT as malformed: RST_STREAM(PROTOCOL_ERROR); the
    connection serves other requests.
    """
    server = serve(http2WebSockets=False)
    peer = await peers(server)
    assert (await call(peer.settings)).get(ENABLE_CONNECT_PROTOCOL, 0) == 0
    stream = await call(peer.connect)
    reset = await call(peer.reset, stream)
    assert reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    get = await call(peer.get, "/static")
    assert await call(peer.body, get) == b"static over h2\n"


@pytest.mark.parametrize("status", [401, 403, 429, 503])
@pytest_twisted.ensureDeferred
async def test_accept_hook_refusals_have_their_status(serve: Any, peers: Any, status: int) -> None:
    """
    The accept hook's refusal is the stream's C{:status} (synchronously or
    from a Deferred), then the stream ends and is reset with NO_ERROR.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    def refuse(request: Any) -> Any:
        if status == 429:

            async def later() -> None:
                await deferLater(reactor, 0.01)
                raise HandshakeError("later", status)

            return later()
        raise HandshakeError("no", status)

    server = serve({"guarded": WebSocketResource(RecordingFactory(), accept=refuse)})
    peer = await peers(server)
    stream = await call(peer.connect, "/guarded")
    head = await call(peer.response, stream)
    assert head[b":status"] == str(status).encode()
    await call(peer.pump, lambda: peer.ended(stream), "the end of the refusal")


@pytest_twisted.ensureDeferred
async def test_connect_to_a_plain_resource_is_not_a_websocket(serve: Any, peers: Any) -> None:
    """
    An extended CONNECT to a resource that is not a WebSocket resource
    gets Twisted's answer to a method it does not implement (501) and a path
    that does not exist a 404: never a WebSocket.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.connect, "/static")
    assert (await call(peer.response, stream))[b":status"] == b"501"
    stream = await call(peer.connect, "/nowhere")
    assert (await call(peer.response, stream))[b":status"] == b"404"


@pytest_twisted.ensureDeferred
async def test_subprotocol_and_compression_are_negotiated(serve: Any, peers: Any) -> None:
    """
    C{sec-websocket-protocol} and C{sec-websocket-extensions} are negotiated
    as over HTTP/1.1, and a compressed message (RSV1) is inflated.
    """
    import zlib

    factory = RecordingFactory(echo=True)
    resource = WebSocketResource(factory, subprotocols=["chat.v2"], compression=True, pingInterval=None)
    server = serve({"chat": resource})
    peer = await peers(server)
    stream = await call(
        peer.connect,
        "/chat",
        extra=[
            (b"sec-websocket-protocol", b"chat.v1, chat.v2"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        ],
    )
    head = await call(peer.response, stream)
    assert head[b":status"] == b"200"
    assert head[b"sec-websocket-protocol"] == b"chat.v2"
    assert head[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(b"squeeze " * 64) + compressor.flush(zlib.Z_SYNC_FLUSH)
    await call(peer.send, stream, client_frame(Opcode.TEXT, payload[:-4], rsv1=True))
    app = await factory.next()
    assert await app.next() == "squeeze " * 64
    assert app.transport.subprotocol == "chat.v2"


@pytest_twisted.ensureDeferred
async def test_a_stalled_stream_does_not_stall_its_neighbour(
    serve: Any, peers: Any, recorder: RecordingFactory
) -> None:
    """
    Flow control per stream: the peer stops granting window to stream A
    (it acknowledges the connection's window, not A's): the server's echo
    of a large message on A stalls at A's 64 KiB window and pauses A's
    wire, while stream B on the same connection keeps echoing; once A's
    window opens, the rest of its echo arrives.
    """
    server = serve()
    peer = await peers(server)
    a = await call(peer.connect)
    await call(peer.response, a)
    wireA = (await recorder.next()).transport
    b = await call(peer.connect)
    await call(peer.response, b)
    peer.stalled.add(a)
    big = b"x" * 200_000
    frame = client_frame(Opcode.BINARY, big)

    def sendBig() -> None:
        # In chunks within the server's window (it acknowledges as it reads).
        for start in range(0, len(frame), 16_000):
            peer.pump(lambda: peer.conn.local_flow_control_window(a) >= 16_000, "window on A", 5)
            peer.send(a, frame[start : start + 16_000])

    await call(sendBig)
    await until(lambda: wireA._writePaused, "A's wire paused by its stream's window")
    for i in range(5):
        await call(peer.send, b, client_frame(Opcode.TEXT, f"b{i}".encode()))
        frames = await call(peer.frames, b, i + 1)
        assert frames[-1].payload == f"b{i}"
    assert len(peer.data[a]) < len(big)
    peer.stalled.discard(a)
    await call(peer.conn.increment_flow_control_window, 1 << 20, a)
    await call(peer.flush)
    frames = await call(peer.frames, a, 1)
    assert frames[0].payload == big


@pytest_twisted.ensureDeferred
async def test_plain_get_over_h2_and_http11_on_the_same_port(serve: Any, peers: Any, pki: Any) -> None:
    """
    The rest of HTTP/2 is Twisted's, unchanged: a GET over h2 to a static
    resource; and an HTTP/1.1 client (ALPN http/1.1) on the same port gets
    the same resource, and can still upgrade the HTTP/1.1 way.
    """
    server = serve()
    peer = await peers(server)
    stream = await call(peer.get, "/static")
    assert (await call(peer.response, stream))[b":status"] == b"200"
    assert await call(peer.body, stream) == b"static over h2\n"
    alpn, response = await call(http11_get, server.port, str(pki.caFile), "/static")
    assert alpn == "http/1.1"
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"static over h2\n")


@pytest_twisted.ensureDeferred
async def test_data_sent_before_a_slow_accept_is_kept_for_the_websocket(serve: Any, peers: Any) -> None:
    """
    DATA that arrives while an asynchronous accept hook decides is kept
    (unacknowledged) and reaches the application once it accepts (an empty
    DATA frame among it is no end of the stream).
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    async def slowly(request: Any) -> str:
        await deferLater(reactor, 0.1)
        return "someone"

    factory = RecordingFactory(echo=True)
    server = serve({"slow": WebSocketResource(factory, accept=slowly, pingInterval=None)})
    peer = await peers(server)
    stream = await call(peer.connect, "/slow")
    # An empty DATA frame first: nothing, not the end of the stream.
    await call(peer.conn.send_data, stream, b"")
    await call(peer.send, stream, client_frame(Opcode.TEXT, b"early"))
    assert (await call(peer.response, stream))[b":status"] == b"200"
    assert [f.payload for f in await call(peer.frames, stream, 1)] == ["early"]
    assert factory.built[0].transport.identity == "someone"


@pytest_twisted.ensureDeferred
async def test_hosts_outside_allowed_hosts_get_421(serve: Any, peers: Any) -> None:
    """
    The site's C{allowedHosts} applies to HTTP/2 requests too (their
    C{:authority}): a WebSocket or a plain GET for another host gets 421.
    """
    server = serve(allowedHosts=["example.com"])
    peer = await peers(server)
    stream = await call(peer.connect)
    assert (await call(peer.response, stream))[b":status"] == b"421"
    get = await call(peer.get, "/static")
    assert (await call(peer.response, get))[b":status"] == b"421"

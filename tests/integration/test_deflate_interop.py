"""
permessage-deflate (RFC 7692) against real peers on loopback: txpulse's
server against the C{websockets} and autobahn clients, txpulse's client
against the C{websockets} and autobahn servers (and against itself), each
with the parameter combinations they can offer or impose; a server with
compression off; and a decompression bomb sent through a raw socket.

Every exchange sends several large messages on one connection, both
compressible and random, so that the context-takeover rules (and window
sizes) agreed in the handshake are actually exercised; the peers' own
counters confirm compressed frames flowed in both directions.
"""

from __future__ import annotations

import itertools
import os
import resource as rusage
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, DeferredQueue, race
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame
from wsproto.frame_protocol import Opcode

from txpulse import ConnectionClosed, WebSocketResource
from txpulse.core.deflate import DeflateSettings
from txpulse.demos.apps import EchoFactory

from ..support.apps import RecordingApp
from ..support.deflate import gigabyte_bomb
from ..support.peers import ThreadedServer, ws_connect
from ..support.rawsocket import client_frame
from ..support.requests import keyed_upgrade
from ..support.waits import WAIT, in_thread, within

pytestmark = [
    # Twisted's own 404 page (twisted.web.resource.NoResource) is deprecated.
    pytest.mark.filterwarnings("ignore:twisted.web.resource._UnsafeNoResource:DeprecationWarning"),
]

#: Sent, in this order, over one connection and expected back unchanged:
#: 64 KiB of repetitive text, 64 KiB of random bytes, each three times (the
#: repeats compress to almost nothing with context takeover).
REPETITIVE = "txpulse permessage-deflate " * 2428
RANDOM = os.urandom(64 * 1024)
MESSAGES: list[str | bytes] = [REPETITIVE, RANDOM] * 3


def header(
    server_reset: bool = False,
    client_reset: bool = False,
    server_bits: int | None = None,
    client_bits: int | None = None,
) -> str:
    """
    The C{Sec-WebSocket-Extensions} answer expected for these parameters.
    """
    parts = ["permessage-deflate"]
    if server_reset:
        parts.append("server_no_context_takeover")
    if client_reset:
        parts.append("client_no_context_takeover")
    if server_bits is not None:
        parts.append(f"server_max_window_bits={server_bits}")
    if client_bits is not None:
        parts.append(f"client_max_window_bits={client_bits}")
    return "; ".join(parts)


# -- websockets' extension, counting compressed frames ---------------------------------


class CountingDeflate(PerMessageDeflate):
    """
    websockets' permessage-deflate codec, counting the data frames it
    inflated (compressed by txpulse) and compressed (for txpulse).
    """

    inflated = 0
    compressed = 0

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.rsv1:
            self.inflated += 1
        return super().decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        encoded = super().encode(frame)
        if encoded.rsv1:
            self.compressed += 1
        return encoded


def _counting(extension: PerMessageDeflate, settings: dict[str, Any] | None) -> CountingDeflate:
    return CountingDeflate(
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
        settings,
    )


class CountingClientFactory(ClientPerMessageDeflateFactory):
    """
    websockets' client-side extension factory; C{extension} is the codec of
    the (last) connection.
    """

    extension: CountingDeflate | None = None

    def process_response_params(self, params: Any, accepted_extensions: Any) -> PerMessageDeflate:
        self.extension = _counting(super().process_response_params(params, accepted_extensions), self.compress_settings)
        return self.extension


class CountingServerFactory(ServerPerMessageDeflateFactory):
    """
    websockets' server-side extension factory; C{extension} is the codec of
    the (last) connection.
    """

    extension: CountingDeflate | None = None

    def process_request_params(self, params: Any, accepted_extensions: Any) -> tuple[Any, PerMessageDeflate]:
        answer, extension = super().process_request_params(params, accepted_extensions)
        self.extension = _counting(extension, self.compress_settings)
        return answer, self.extension


def assert_compressed_both_ways(extension: CountingDeflate | None, count: int = len(MESSAGES)) -> None:
    """
    Every message went compressed in each direction.
    """
    assert extension is not None, "permessage-deflate was not negotiated"
    assert (extension.inflated, extension.compressed) == (count, count)


def extensions_answered(server: ThreadedServer) -> list[str | None]:
    """
    The C{Sec-WebSocket-Extensions} answer of each handshake C{server} made.
    """
    return [response.headers.get("Sec-WebSocket-Extensions") for response in server.responses]


def echo_resource(compression: DeflateSettings | bool | None = None, **options: Any) -> WebSocketResource:
    """
    txpulse's echo app behind a resource with C{compression} (default:
    L{DeflateSettings()}, which imposes nothing, so that the answer to an
    offer is exactly what was asked).
    """
    if compression is None:
        compression = DeflateSettings()
    return WebSocketResource(EchoFactory(), pingInterval=None, compression=compression, **options)


def closing(app: RecordingApp) -> Deferred[None]:
    """
    A new L{Deferred} firing when C{app}'s connection is lost (one that
    L{race} may cancel without touching C{app.lost}).
    """
    lost: Deferred[None] = Deferred()

    def fire(result: object) -> object:
        if not lost.called:
            lost.callback(None)
        return result

    app.lost.addBoth(fire)
    return lost


async def txpulse_echoes(app: RecordingApp, messages: list[str | bytes] = MESSAGES) -> None:
    """
    Send each message from a txpulse client and check it comes back; fail
    at once (with the close codes) if the connection closes instead.
    """
    for message in messages:
        if isinstance(message, str):
            app.transport.sendTextMessage(message)
        else:
            app.transport.sendBytesMessage(message)
        index, received = await within(race([app.inbox.get(), closing(app)]))
        if index == 1:
            assert app.reason is not None
            closed = app.reason.value
            pytest.fail(f"the connection closed instead: sent {getattr(closed, 'codeSent', None)}, got {closed!r}")
        assert received == message


# -- txpulse server, websockets client ----------------------------------------------------


WEBSOCKETS_CLIENT_OFFERS = list(itertools.product([False, True], [False, True], [None, 10, 15], [None, True, 10]))


@pytest.mark.parametrize(("server_reset", "client_reset", "server_bits", "client_bits"), WEBSOCKETS_CLIENT_OFFERS)
@pytest_twisted.ensureDeferred
async def test_websockets_client_offer_is_answered_and_messages_echo(
    serve: Any, server_reset: bool, client_reset: bool, server_bits: int | None, client_bits: int | bool | None
) -> None:
    """
    For every combination of the four parameters the websockets client
    can offer, txpulse's server (C{compression=DeflateSettings()}) answers with exactly
    what was asked, and 64 KiB messages, compressible and random, echo
    unchanged several times on one connection, compressed both ways.
    """
    server = serve(echo_resource())
    factory = CountingClientFactory(
        server_no_context_takeover=server_reset,
        client_no_context_takeover=client_reset,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )

    async def client() -> tuple[str | None, list[str | bytes]]:
        async with ws_connect(server.url(), compression=None, extensions=[factory]) as ws:
            echoed = []
            for message in MESSAGES:
                await ws.send(message)
                echoed.append(await ws.recv())
            return ws.response.headers.get("Sec-WebSocket-Extensions"), echoed

    answer, echoed = await in_thread(client)
    assert answer == header(server_reset, client_reset, server_bits, 10 if client_bits == 10 else None)
    assert echoed == MESSAGES
    assert_compressed_both_ways(factory.extension)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(DeflateSettings(), header(), id="unconstrained"),
        pytest.param(True, header(server_bits=12, client_bits=12), id="server-defaults"),
        pytest.param(DeflateSettings(server_no_context_takeover=True), header(server_reset=True), id="server-resets"),
        pytest.param(DeflateSettings(client_no_context_takeover=True), header(client_reset=True), id="client-resets"),
        pytest.param(DeflateSettings(server_max_window_bits=10), header(server_bits=10), id="server-window-10"),
        pytest.param(DeflateSettings(client_max_window_bits=9), header(client_bits=9), id="client-window-9"),
        pytest.param(
            DeflateSettings(True, True, 9, 9, level=1, mem_level=1),
            header(True, True, 9, 9),
            id="everything-small",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_server_settings_are_imposed_on_the_websockets_client(
    serve: Any, settings: DeflateSettings | bool, expected: str
) -> None:
    """
    The server's own L{DeflateSettings} shape the answer to the websockets
    client's default offer (C{compression="deflate"}), and the connection
    works under them.
    """
    server = serve(echo_resource(settings))

    async def client() -> tuple[str | None, list[str | bytes]]:
        async with ws_connect(server.url(), compression="deflate") as ws:
            echoed = []
            for message in MESSAGES:
                await ws.send(message)
                echoed.append(await ws.recv())
            return ws.response.headers.get("Sec-WebSocket-Extensions"), echoed

    answer, echoed = await in_thread(client)
    assert answer == expected
    assert echoed == MESSAGES


@pytest_twisted.ensureDeferred
async def test_every_message_is_compressed_with_min_size_0(serve: Any) -> None:
    """
    With C{min_size=0} even empty and one-byte messages go compressed, and
    the websockets client reads them.
    """
    server = serve(echo_resource(DeflateSettings(min_size=0)))
    factory = CountingClientFactory()
    messages: list[str | bytes] = ["", b"", "x", b"\x00", "é" * 3, REPETITIVE]

    async def client() -> list[str | bytes]:
        async with ws_connect(server.url(), compression=None, extensions=[factory]) as ws:
            echoed = []
            for message in messages:
                await ws.send(message)
                echoed.append(await ws.recv())
            return echoed

    assert await in_thread(client) == messages
    assert factory.extension is not None and factory.extension.inflated == len(messages)


# -- txpulse server, autobahn client -----------------------------------------------------


def _autobahn_offers() -> list[Any]:
    from autobahn.websocket.compress import PerMessageDeflateOffer

    return [
        pytest.param([PerMessageDeflateOffer()], header(client_reset=True), id="default-offer"),
        pytest.param(
            [PerMessageDeflateOffer(accept_no_context_takeover=False, accept_max_window_bits=False)],
            header(),
            id="bare-offer",
        ),
        pytest.param(
            [PerMessageDeflateOffer(request_no_context_takeover=True, request_max_window_bits=10)],
            header(server_reset=True, client_reset=True, server_bits=10),
            id="server-resets-window-10",
        ),
        pytest.param(
            [
                PerMessageDeflateOffer(accept_no_context_takeover=False, request_max_window_bits=9),
                PerMessageDeflateOffer(),
            ],
            header(server_bits=9),
            id="first-of-two-offers",
        ),
    ]


@pytest.mark.parametrize(("offers", "expected"), _autobahn_offers())
@pytest_twisted.ensureDeferred
async def test_autobahn_client_offers_are_answered_and_messages_echo(
    serve: Any, autobahn: Any, offers: list[Any], expected: str
) -> None:
    """
    autobahn's permessage-deflate offers (C{perMessageCompressionOffers})
    are answered as RFC 7692 says, autobahn accepts the answer, and
    messages echo compressed in both directions (autobahn's traffic
    counters show fewer bytes on the wire than in the messages).
    """
    from autobahn.websocket.compress import PerMessageDeflateResponseAccept

    server = serve(echo_resource())
    factory = await autobahn(
        server.url(),
        perMessageCompressionOffers=offers,
        perMessageCompressionAccept=PerMessageDeflateResponseAccept,
    )
    client = factory.client
    assert client.http_headers.get("sec-websocket-extensions") == expected
    assert client.websocket_extensions_in_use
    for message in MESSAGES:
        isBinary = isinstance(message, bytes)
        client.sendMessage(message if isBinary else message.encode(), isBinary)
        payload, echoedBinary = await within(factory.messages.get())
        assert (payload, echoedBinary) == ((message, True) if isBinary else (message.encode(), False))
    stats = client.trafficStats
    assert stats.incomingOctetsWebSocketLevel < stats.incomingOctetsAppLevel * 0.6
    assert stats.outgoingOctetsWebSocketLevel < stats.outgoingOctetsAppLevel * 0.6


# -- txpulse client, websockets server -------------------------------------------------


WEBSOCKETS_SERVERS = [
    pytest.param({"compression": "deflate"}, header(server_bits=12, client_bits=12), id="deflate-defaults"),
    pytest.param({"server_no_context_takeover": True}, header(server_reset=True), id="server-resets"),
    pytest.param({"client_no_context_takeover": True}, header(client_reset=True), id="client-resets"),
    pytest.param({"server_max_window_bits": 10}, header(server_bits=10), id="server-window-10"),
    pytest.param({"client_max_window_bits": 10}, header(client_bits=10), id="client-window-10"),
    pytest.param(
        {"client_max_window_bits": 9, "require_client_max_window_bits": True},
        header(client_bits=9),
        id="client-window-required",
    ),
    pytest.param(
        {
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
            "server_max_window_bits": 9,
            "client_max_window_bits": 9,
        },
        header(True, True, 9, 9),
        id="everything",
    ),
]


@pytest.mark.parametrize(("options", "expected"), WEBSOCKETS_SERVERS)
@pytest_twisted.ensureDeferred
async def test_txpulse_client_accepts_what_a_websockets_server_imposes(
    serve_websockets: Any, connect: Any, options: dict[str, Any], expected: str
) -> None:
    """
    txpulse's client (C{compression=True}) accepts what a websockets server
    imposes (C{compression="deflate"}, or a L{ServerPerMessageDeflateFactory}
    with each parameter), and messages echo compressed both ways.
    """
    if "compression" in options:
        factory = None
        server = serve_websockets(**options)
    else:
        factory = CountingServerFactory(**options)
        server = serve_websockets(compression=None, extensions=[factory])
    app = await connect(server.url("/echo"), compression=True)
    await txpulse_echoes(app)
    assert extensions_answered(server) == [expected]
    if factory is not None:
        assert_compressed_both_ways(factory.extension)


TXPULSE_CLIENT_SETTINGS = [
    pytest.param(DeflateSettings(server_no_context_takeover=True), header(server_reset=True), id="server-resets"),
    pytest.param(DeflateSettings(client_no_context_takeover=True), header(client_reset=True), id="client-resets"),
    pytest.param(DeflateSettings(server_max_window_bits=10), header(server_bits=10), id="server-window-10"),
    pytest.param(DeflateSettings(client_max_window_bits=10), header(client_bits=10), id="client-window-10"),
    pytest.param(DeflateSettings(client_max_window_bits=8), header(client_bits=9), id="client-window-8"),
    pytest.param(
        DeflateSettings(True, True, 11, 11, level=9, mem_level=9), header(True, True, 11, 11), id="everything"
    ),
]


@pytest.mark.parametrize(("settings", "expected"), TXPULSE_CLIENT_SETTINGS)
@pytest_twisted.ensureDeferred
async def test_websockets_server_grants_what_the_txpulse_client_requests(
    serve_websockets: Any, connect: Any, settings: DeflateSettings, expected: str
) -> None:
    """
    What txpulse's client requests with L{DeflateSettings} is granted by a
    websockets server that imposes nothing, and works.
    """
    factory = CountingServerFactory()
    server = serve_websockets(compression=None, extensions=[factory])
    app = await connect(server.url("/echo"), compression=settings)
    await txpulse_echoes(app)
    assert extensions_answered(server) == [expected]
    assert_compressed_both_ways(factory.extension)


@pytest_twisted.ensureDeferred
async def test_websockets_server_without_compression_declines_txpulse_offer(
    serve_websockets: Any, connect: Any
) -> None:
    """
    A websockets server with compression off answers without the
    extension; txpulse's client runs uncompressed.
    """
    server = serve_websockets(compression=None)
    app = await connect(server.url("/echo"), compression=True)
    await txpulse_echoes(app, [REPETITIVE, RANDOM])
    assert extensions_answered(server) == [None]


# -- txpulse client, autobahn server ---------------------------------------------------


def _autobahn_accepts() -> list[Any]:
    return [
        pytest.param(True, {}, header(), id="accept"),
        pytest.param(
            DeflateSettings(client_no_context_takeover=True),
            {"request_no_context_takeover": True},
            header(client_reset=True),
            id="server-requires-client-reset",
        ),
        pytest.param(True, {"request_max_window_bits": 10}, header(client_bits=10), id="server-limits-client-window"),
        pytest.param(
            DeflateSettings(server_no_context_takeover=True, server_max_window_bits=10),
            {},
            header(server_reset=True, server_bits=10),
            id="client-requests-server-reset-and-window",
        ),
        pytest.param(True, {"no_context_takeover": True, "window_bits": 9}, header(), id="server-resets-silently"),
    ]


@pytest.mark.parametrize(("settings", "acceptOptions", "expected"), _autobahn_accepts())
@pytest_twisted.ensureDeferred
async def test_txpulse_client_and_autobahn_server_agree_and_echo(
    serve_autobahn: Any,
    connect: Any,
    settings: DeflateSettings | bool,
    acceptOptions: dict[str, Any],
    expected: str,
) -> None:
    """
    An autobahn server accepting txpulse's offer (C{perMessageCompressionAccept}
    returning a C{PerMessageDeflateOfferAccept}, with each option it can
    impose) and txpulse's client agree, and messages echo compressed both
    ways (autobahn's counters).
    """
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

    answers: list[str] = []

    def accept(offers: list[Any]) -> Any:
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                accepted = PerMessageDeflateOfferAccept(offer, **acceptOptions)
                answers.append(accepted.get_extension_string())
                return accepted
        return None

    port, factory = serve_autobahn(perMessageCompressionAccept=accept)
    app = await connect(f"ws://127.0.0.1:{port}/echo", compression=settings)
    await txpulse_echoes(app)
    assert answers == [expected]
    [proto] = factory.open
    assert proto.websocket_extensions_in_use
    stats = proto.trafficStats
    assert stats.incomingOctetsWebSocketLevel < stats.incomingOctetsAppLevel * 0.6
    assert stats.outgoingOctetsWebSocketLevel < stats.outgoingOctetsAppLevel * 0.6


# -- txpulse on both sides ----------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(DeflateSettings(), id="defaults"),
        pytest.param(DeflateSettings(True, True, 9, 9), id="everything"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_txpulse_client_and_server_agree_and_echo(serve: Any, connect: Any, settings: DeflateSettings) -> None:
    """
    txpulse's client and server agree with each other and echo.
    """
    server = serve(echo_resource(True))
    app = await connect(server.url(), compression=settings)
    await txpulse_echoes(app)


@pytest_twisted.ensureDeferred
async def test_txpulse_client_without_a_message_limit_reads_compressed_messages(serve: Any, connect: Any) -> None:
    """
    C{maxMessageSize=None} (what C{txpulse-client --deflate} uses) with
    compression still reads compressed messages: "no limit" must not turn
    into "every compressed message is too big".
    """
    server = serve(echo_resource(True))
    app = await connect(server.url(), compression=True, maxMessageSize=None)
    await txpulse_echoes(app, [REPETITIVE])


# -- compression off -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_server_with_compression_off_declines_every_offer(serve: Any, autobahn: Any, connect: Any) -> None:
    """
    With C{compression} off (the default) the 101 carries no
    C{Sec-WebSocket-Extensions}: the websockets client, autobahn and
    txpulse's client all run uncompressed, and their messages still echo.
    """
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateResponseAccept

    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))

    async def client() -> tuple[str | None, list[Any], list[str | bytes]]:
        async with ws_connect(server.url(), compression="deflate") as ws:
            echoed = []
            for message in (REPETITIVE, RANDOM):
                await ws.send(message)
                echoed.append(await ws.recv())
            return ws.response.headers.get("Sec-WebSocket-Extensions"), ws.protocol.extensions, echoed

    answer, extensions, echoed = await in_thread(client)
    assert (answer, extensions, echoed) == (None, [], [REPETITIVE, RANDOM])

    factory = await autobahn(
        server.url(),
        perMessageCompressionOffers=[PerMessageDeflateOffer()],
        perMessageCompressionAccept=PerMessageDeflateResponseAccept,
    )
    assert "sec-websocket-extensions" not in factory.client.http_headers
    assert factory.client.websocket_extensions_in_use == []
    factory.client.sendMessage(RANDOM, True)
    assert await within(factory.messages.get()) == (RANDOM, True)

    app = await connect(server.url(), compression=True)
    await txpulse_echoes(app, [REPETITIVE, RANDOM])


@pytest.mark.parametrize(
    "offer",
    [
        pytest.param("permessage-deflate; server_max_window_bits=8", id="server-window-8"),
        pytest.param("permessage-deflate; foo", id="unknown-parameter"),
        pytest.param("permessage-deflate; =", id="malformed"),
        pytest.param("x-webkit-deflate-frame", id="other-extension"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unusable_offer_is_declined_not_refused(serve: Any, raw: Any, offer: str) -> None:
    """
    An offer the server cannot honour (or cannot parse) does not fail the
    handshake: the 101 carries no extension and the connection works
    uncompressed.
    """
    server = serve(echo_resource())
    client = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port, extra=[("Sec-WebSocket-Extensions", offer)])
    await client.send(request)
    response = await client.read_response()
    assert response.status == 101
    assert "sec-websocket-extensions" not in response.headers
    await client.send(client_frame(Opcode.TEXT, b"plain"))
    message = await client.read_message()
    assert message is not None and (message.opcode, message.payload) == (Opcode.TEXT, "plain")


# -- hostile peers ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_compression_bomb_from_a_raw_client_closes_1009_and_spares_others(
    serve: Any, raw: Any, autobahn: Any
) -> None:
    """
    After an upgrade that negotiated deflate, a ~1 MiB frame (within the
    1 MiB message limit) inflating to 1 GiB of zeros gets close code 1009;
    the server process never allocates the gigabyte, and a compressing
    autobahn client connected throughout keeps working.
    """
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateResponseAccept

    server = serve(echo_resource())
    bystander = await autobahn(
        server.url(),
        perMessageCompressionOffers=[PerMessageDeflateOffer()],
        perMessageCompressionAccept=PerMessageDeflateResponseAccept,
    )
    bystander.client.sendMessage(REPETITIVE.encode(), False)
    assert await within(bystander.messages.get()) == (REPETITIVE.encode(), False)

    attacker = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    await attacker.send(request)
    response = await attacker.read_response()
    assert response.status == 101
    assert response.headers["sec-websocket-extensions"] == "permessage-deflate"
    frame = bytearray(client_frame(Opcode.BINARY, gigabyte_bomb()))
    frame[0] |= 0x40  # RSV1: compressed
    before = rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    await attacker.send(bytes(frame))
    messages = await attacker.read_all_messages()
    after = rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss
    assert [(m.opcode, m.code) for m in messages] == [(Opcode.CLOSE, 1009)]
    assert after - before < 256 * 1024, f"the process grew by {(after - before) // 1024} MiB"

    assert not bystander.closed.called
    bystander.client.sendMessage(RANDOM, True)
    assert await within(bystander.messages.get()) == (RANDOM, True)


@pytest_twisted.ensureDeferred
async def test_compressed_message_over_the_client_limit_closes_1009(serve: Any, connect: Any) -> None:
    """
    txpulse's client also bounds inflation: a 2 MiB message of zeros,
    about 2 KiB compressed, from a server is refused with 1009 by a
    client whose C{maxMessageSize} is 1 MiB.
    """

    class Flood:
        def __init__(self) -> None:
            self.lost: Deferred[Any] = Deferred()

        def negotiationStarted(self, transport: Any) -> None:
            self.transport = transport

        def negotiationFinished(self) -> None:
            self.transport.sendBytesMessage(bytes(2 << 20))

        def textMessageReceived(self, message: str) -> None:
            pass

        def bytesMessageReceived(self, data: bytes) -> None:
            pass

        def pongReceived(self, payload: bytes) -> None:
            pass

        def connectionLost(self, reason: Any) -> None:
            self.reason = reason
            self.lost.callback(None)

    floods: DeferredQueue[Flood] = DeferredQueue()

    class FloodFactory:
        def buildProtocol(self, request: Any) -> Flood:
            flood = Flood()
            floods.put(flood)
            return flood

    server = serve(WebSocketResource(FloodFactory(), pingInterval=None, compression=True))
    app = await connect(server.url(), compression=True, maxMessageSize=1 << 20)
    closed = await app.closed()
    assert closed.codeSent == 1009
    flood = await within(floods.get())
    await within(flood.lost, WAIT)
    assert isinstance(flood.reason.value, ConnectionClosed) and flood.reason.value.code == 1009

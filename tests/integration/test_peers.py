"""
Loopback tests of L{txpulse.WebSocketResource} in a real C{twisted.web}
L{Site} against real peers: the C{websockets} client (asyncio, in a worker
thread), the autobahn client (on the Twisted reactor) and raw sockets for
bytes no well-behaved client would send.
"""

from __future__ import annotations

import asyncio
from hashlib import sha256
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from websockets.exceptions import ConnectionClosed as WSConnectionClosed
from websockets.exceptions import InvalidStatus
from wsproto.frame_protocol import Opcode

from txpulse import ConnectionClosed, HandshakeError, WebSocketResource
from txpulse.demos.apps import EchoFactory

from ..support.apps import RecordingApp, RecordingFactory
from ..support.frames import close_payload
from ..support.peers import ws_close_received, ws_connect
from ..support.rawsocket import accept_key_for, client_frame
from ..support.requests import keyed_upgrade
from ..support.waits import in_thread, within

#: Messages each client sends and expects echoed unchanged (type included).
ECHOED = [
    pytest.param("hello", id="text"),
    pytest.param(b"\x00\x01\xfe\xff", id="binary"),
    pytest.param("", id="empty-text"),
    pytest.param(b"", id="empty-binary"),
    pytest.param("7" * 125, id="125-bytes-7-bit-length"),
    pytest.param(b"\x01" * 126, id="126-bytes-16-bit-length"),
    pytest.param(b"\xff" * 65535, id="65535-bytes-16-bit-length"),
    pytest.param("x" * 65536, id="64KiB-text"),
    pytest.param(bytes(range(256)) * 256, id="64KiB-binary"),
    pytest.param("héllo wörld — ☃ 𝄞 日本語", id="non-ascii-text"),
]

SIXTEEN_MIB = 16 << 20


def sixteen_mib() -> bytes:
    """
    16 MiB of non-repeating-looking bytes (so a masking bug cannot cancel out).
    """
    return bytes(range(251)) * (SIXTEEN_MIB // 251) + bytes(SIXTEEN_MIB % 251)


# -- websockets client: messages ------------------------------------------------


@pytest.mark.parametrize("message", ECHOED)
@pytest_twisted.ensureDeferred
async def test_websockets_message_is_echoed_unchanged(serve: Any, message: str | bytes) -> None:
    """
    A message from the websockets client comes back from the echo app with
    the same type and content.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))

    async def client() -> str | bytes:
        async with ws_connect(server.url()) as ws:
            await ws.send(message)
            return await ws.recv()

    assert await in_thread(client) == message


@pytest_twisted.ensureDeferred
async def test_websockets_16mib_binary_message_is_echoed_with_raised_limits(serve: Any) -> None:
    """
    A 16 MiB binary message passes when the resource's C{maxMessageSize}
    (and the client's C{max_size}) are raised above it.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, maxMessageSize=SIXTEEN_MIB))
    payload = sixteen_mib()

    async def client() -> bytes:
        async with ws_connect(server.url(), max_size=SIXTEEN_MIB) as ws:
            await ws.send(payload)
            return await ws.recv()

    echoed = await in_thread(client)
    assert len(echoed) == SIXTEEN_MIB
    assert sha256(echoed).digest() == sha256(payload).digest()


@pytest_twisted.ensureDeferred
async def test_websockets_fragmented_messages_are_reassembled(serve: Any, recorder: RecordingFactory) -> None:
    """
    Messages the client sends as several frames (from an iterable and from
    an async iterable) reach the app as one message each.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def fragments() -> Any:
        for part in (b"ab", b"", b"cd", b"e"):
            yield part

    async def client() -> list[str | bytes]:
        async with ws_connect(server.url()) as ws:
            await ws.send(["frag", "ménted", " tëxt"])
            await ws.send(fragments())
            return [await ws.recv(), await ws.recv()]

    assert await in_thread(client) == ["fragménted tëxt", b"abcde"]
    assert recorder.built[0].messages == ["fragménted tëxt", b"abcde"]


@pytest_twisted.ensureDeferred
async def test_websockets_client_ping_gets_pong(serve: Any) -> None:
    """
    A ping from the client is answered with a pong (the client's pong
    waiter resolves).
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))

    async def client() -> float:
        async with ws_connect(server.url()) as ws:
            waiter = await ws.ping(b"are you there")
            return await waiter

    latency = await in_thread(client)
    assert latency >= 0


@pytest_twisted.ensureDeferred
async def test_websockets_server_ping_reaches_client_and_pong_reaches_app(
    serve: Any, recorder: RecordingFactory
) -> None:
    """
    C{transport.ping(b"x")} on the server reaches the websockets client,
    whose automatic pong arrives at the app's C{pongReceived(b"x")}.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def client() -> str:
        async with ws_connect(server.url()) as ws:
            return await ws.recv()  # the server says "done" after the pong

    done = in_thread(client)
    app = await recorder.next()
    app.transport.ping(b"x")
    assert await within(app.pongs.get()) == b"x"
    app.transport.sendTextMessage("done")
    assert await done == "done"


# -- autobahn client: messages ----------------------------------------------------


@pytest.mark.parametrize("message", ECHOED)
@pytest_twisted.ensureDeferred
async def test_autobahn_message_is_echoed_unchanged(serve: Any, autobahn: Any, message: str | bytes) -> None:
    """
    A message from the autobahn client comes back from the echo app with the
    same type and content.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))
    client = await autobahn(server.url())
    isBinary = isinstance(message, bytes)
    payload = message if isinstance(message, bytes) else message.encode("utf-8")
    client.client.sendMessage(payload, isBinary=isBinary)
    assert await within(client.messages.get()) == (payload, isBinary)
    client.client.sendClose(1000)
    assert await within(client.closed) == (True, 1000, None)


@pytest_twisted.ensureDeferred
async def test_autobahn_16mib_binary_message_is_echoed_with_raised_limits(serve: Any, autobahn: Any) -> None:
    """
    A 16 MiB binary message from autobahn passes when the resource's
    C{maxMessageSize} is raised above it (autobahn's own limit is off by
    default).
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, maxMessageSize=SIXTEEN_MIB))
    client = await autobahn(server.url(), maxMessagePayloadSize=SIXTEEN_MIB, maxFramePayloadSize=SIXTEEN_MIB)
    payload = sixteen_mib()
    client.client.sendMessage(payload, isBinary=True)
    echoed, isBinary = await within(client.messages.get())
    assert echoed is not None, f"closed instead of echoing: {isBinary}"
    assert isBinary
    assert len(echoed) == SIXTEEN_MIB
    assert sha256(echoed).digest() == sha256(payload).digest()


@pytest_twisted.ensureDeferred
async def test_autobahn_fragmented_messages_are_reassembled(
    serve: Any, autobahn: Any, recorder: RecordingFactory
) -> None:
    """
    Messages autobahn fragments (C{fragmentSize}, which splits UTF-8
    characters across frames, and C{beginMessage}/C{sendMessageFrame})
    reach the app as one message each.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    client = await autobahn(server.url())
    text = "fragménted — ☃ 𝄞 text"
    client.client.sendMessage(text.encode("utf-8"), isBinary=False, fragmentSize=3)
    assert await within(client.messages.get()) == (text.encode("utf-8"), False)

    client.client.beginMessage(isBinary=True)
    for part in (b"one,", b"two,", b"three"):
        client.client.sendMessageFrame(part)
    client.client.endMessage()
    assert await within(client.messages.get()) == (b"one,two,three", True)
    assert recorder.built[0].messages == [text, b"one,two,three"]


@pytest_twisted.ensureDeferred
async def test_autobahn_client_ping_gets_pong(serve: Any, autobahn: Any) -> None:
    """
    A ping from autobahn is answered with a pong carrying the same payload.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))
    client = await autobahn(server.url())
    client.client.sendPing(b"are you there")
    assert await within(client.pongs.get()) == b"are you there"


@pytest_twisted.ensureDeferred
async def test_autobahn_server_ping_reaches_client_and_pong_reaches_app(
    serve: Any, autobahn: Any, recorder: RecordingFactory
) -> None:
    """
    C{transport.ping(b"x")} on the server reaches autobahn's C{onPing}, and
    autobahn's pong arrives at the app's C{pongReceived(b"x")}.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    client = await autobahn(server.url())
    app = await recorder.next()
    app.transport.ping(b"x")
    assert await within(client.pings.get()) == b"x"
    assert await within(app.pongs.get()) == b"x"


# -- the application speaking first ---------------------------------------------------


class Greeter(RecordingApp):
    """
    Sends C{"welcome"} from C{negotiationFinished}, before any message
    arrives; if built with C{refuse}, closes right away with 1008 instead.
    """

    refuse = False

    def negotiationFinished(self) -> None:
        super().negotiationFinished()
        if self.refuse:
            self.transport.loseConnection(1008, "policy")
        else:
            self.transport.sendTextMessage("welcome")


class GreeterFactory(RecordingFactory):
    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse

    def buildProtocol(self, request: Any) -> RecordingApp:
        greeter = Greeter(request, echo=True)
        greeter.refuse = self.refuse
        self.built.append(greeter)
        return greeter


@pytest.mark.parametrize(
    "accept", [None, lambda request: deferLater(reactor, 0.02, lambda: "id")], ids=["no-hook", "async-hook"]
)
@pytest_twisted.ensureDeferred
async def test_message_sent_on_open_arrives_first(serve: Any, accept: Any) -> None:
    """
    A message the app sends from C{negotiationFinished} reaches the client
    right after the handshake, before the echo of the client's first
    message (with or without an asynchronous accept hook).
    """
    server = serve(WebSocketResource(GreeterFactory(), pingInterval=None, accept=accept))

    async def client() -> list[str]:
        async with ws_connect(server.url()) as ws:
            await ws.send("hello")
            return [await ws.recv(), await ws.recv()]

    assert await in_thread(client) == ["welcome", "hello"]


@pytest_twisted.ensureDeferred
async def test_close_from_negotiation_finished_reaches_client(serve: Any) -> None:
    """
    An app that closes from C{negotiationFinished} (1008, "policy") opens
    the connection and closes it at once; the client sees that code.
    """
    factory = GreeterFactory(refuse=True)
    server = serve(WebSocketResource(factory, pingInterval=None))

    async def client() -> tuple[int, str]:
        return await ws_close_received(server.url())

    assert await in_thread(client) == (1008, "policy")
    failure = await factory.built[0].lostReason()
    assert (failure.value.codeSent, failure.value.clean) == (1008, True)


# -- close code paths -------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(1000, "done"), (4000, "custom reason ☃")])
@pytest_twisted.ensureDeferred
async def test_websockets_client_close_reaches_app_and_is_echoed(
    serve: Any, recorder: RecordingFactory, code: int, reason: str
) -> None:
    """
    A client close (1000, or the application code 4000) reaches the app's
    C{connectionLost} as a L{ConnectionClosed} with that code and reason,
    and the server echoes the code back.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def client() -> tuple[int | None, str | None]:
        async with ws_connect(server.url()) as ws:
            await ws.close(code, reason)
            return ws.close_code, ws.close_reason

    assert await in_thread(client) == (code, "")
    failure = await recorder.built[0].lostReason()
    assert failure.check(ConnectionClosed)
    closed = failure.value
    assert (closed.code, closed.reason) == (code, reason)
    assert closed.codeSent == code
    assert closed.clean


@pytest_twisted.ensureDeferred
async def test_autobahn_client_close_reaches_app_and_is_echoed(
    serve: Any, autobahn: Any, recorder: RecordingFactory
) -> None:
    """
    An autobahn close with 1000 and a reason reaches the app as
    L{ConnectionClosed}; autobahn sees the server's echo, cleanly.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    client = await autobahn(server.url())
    client.client.sendClose(1000, "see you")
    wasClean, code, _ = await within(client.closed)
    assert (wasClean, code) == (True, 1000)
    failure = await recorder.built[0].lostReason()
    assert failure.check(ConnectionClosed)
    assert (failure.value.code, failure.value.reason, failure.value.clean) == (1000, "see you", True)


@pytest_twisted.ensureDeferred
async def test_websockets_sees_server_close_code_and_reason(serve: Any, recorder: RecordingFactory) -> None:
    """
    C{transport.loseConnection(1001, "bye")} on the server reaches the
    client as code 1001 with reason "bye"; the app then sees the client's
    echo.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def client() -> tuple[int, str]:
        return await ws_close_received(server.url())

    result = in_thread(client)
    app = await recorder.next()
    app.transport.loseConnection(1001, "bye")
    assert await result == (1001, "bye")
    failure = await app.lostReason()
    assert failure.check(ConnectionClosed)
    assert (failure.value.code, failure.value.codeSent, failure.value.clean) == (1001, 1001, True)


@pytest_twisted.ensureDeferred
async def test_autobahn_sees_server_close_code_and_reason(
    serve: Any, autobahn: Any, recorder: RecordingFactory
) -> None:
    """
    C{transport.loseConnection(1001, "bye")} reaches autobahn's C{onClose}
    as a clean close with code 1001 and reason "bye".
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    client = await autobahn(server.url())
    app = await recorder.next()
    app.transport.loseConnection(1001, "bye")
    assert await within(client.closed) == (True, 1001, "bye")
    failure = await app.lostReason()
    assert failure.check(ConnectionClosed)
    # autobahn answers any close with 1000 rather than echoing the code.
    assert (failure.value.codeSent, failure.value.clean) == (1001, True)


@pytest_twisted.ensureDeferred
async def test_websockets_message_over_max_size_gets_1009(serve: Any, recorder: RecordingFactory) -> None:
    """
    A message larger than the resource's C{maxMessageSize} closes the
    connection with 1009 (message too big); one at the limit passes.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, maxMessageSize=1024))

    async def client() -> tuple[bytes, int]:
        async with ws_connect(server.url()) as ws:
            await ws.send(b"a" * 1024)
            echoed = await ws.recv()
            await ws.send(b"a" * 1025)
            try:
                await ws.recv()
            except WSConnectionClosed as closed:
                assert closed.rcvd is not None
                return echoed, closed.rcvd.code
            raise AssertionError("the oversized message was echoed")

    assert await in_thread(client) == (b"a" * 1024, 1009)
    failure = await recorder.built[0].lostReason()
    assert failure.value.codeSent == 1009


@pytest_twisted.ensureDeferred
async def test_fragmented_message_over_max_size_gets_1009(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    The limit applies to the sum of a message's fragments: with
    C{maxMessageSize=1024}, two 400-byte fragments pass and the third one,
    small as it is, closes the connection with 1009.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, maxMessageSize=1024))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x2, b"f" * 400, fin=False) + client_frame(0x0, b"f" * 400, fin=False))
    await sock.send(client_frame(0x0, b"f" * 400, fin=False))
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1009)
    assert recorder.built[0].messages == []


@pytest_twisted.ensureDeferred
async def test_client_still_sending_when_failed_still_sees_1009(serve: Any) -> None:
    """
    A client whose fragmented message is refused while it is still sending
    the rest still receives the 1009 close frame, every time (20 tries).
    Closing the socket with unread input makes the kernel answer with RST,
    which can destroy the close frame before the client reads it; a
    lingering close (half-close, drain, then close) does not.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, maxMessageSize=1024))

    async def once() -> int | None:
        async with ws_connect(server.url()) as ws:
            try:
                await ws.send([b"f" * 4000] * 4)
                await ws.recv()
            except WSConnectionClosed as closed:
                return None if closed.rcvd is None else closed.rcvd.code
            raise AssertionError("the oversized message was echoed")

    async def client() -> list[int | None]:
        return [await once() for _ in range(20)]

    codes = await in_thread(client)
    assert codes == [1009] * 20, f"{codes.count(None)} of 20 clients never saw the close frame"


@pytest_twisted.ensureDeferred
async def test_autobahn_message_over_max_size_gets_1009(serve: Any, autobahn: Any) -> None:
    """
    An oversized message from autobahn is refused with close code 1009.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, maxMessageSize=1024))
    client = await autobahn(server.url())
    client.client.sendMessage(b"a" * 2048, isBinary=True)
    _, code, _ = await within(client.closed)
    assert code == 1009


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_text_gets_1007(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    A text frame whose payload is not UTF-8 is answered with close 1007 and
    the server then closes the TCP connection.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x1, b"ok \xff\xfe not utf-8"))
    close = await sock.read_message()
    assert close is not None and close.opcode is Opcode.CLOSE
    assert close.code == 1007
    assert await sock.read_until_eof() == b""
    failure = await recorder.built[0].lostReason()
    assert failure.value.codeSent == 1007


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_in_first_fragment_fails_before_the_rest_arrives(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    Invalid UTF-8 in the first fragment of a text message closes with 1007
    at once, without waiting for the message's last fragment.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x1, b"\xc0\xaf", fin=False))
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1007)
    assert recorder.built[0].messages == []


@pytest_twisted.ensureDeferred
async def test_unmasked_client_frame_gets_1002(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    An unmasked frame from a client is a protocol error: close 1002, then
    the server closes TCP, and the frame is never delivered.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x1, b"hello", masked=False))
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1002)
    assert await sock.read_until_eof() == b""
    failure = await recorder.built[0].lostReason()
    assert failure.value.codeSent == 1002
    assert recorder.built[0].messages == []


@pytest_twisted.ensureDeferred
async def test_tcp_drop_without_close_frame_is_1006(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    A peer that drops TCP without a close frame ends the connection with
    code 1006 (abnormal closure), not clean, as seen by the app.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x1, b"last words"))
    echo = await sock.read_message()
    assert echo is not None and echo.payload == "last words"
    sock.close()
    failure = await recorder.built[0].lostReason()
    assert failure.check(ConnectionClosed)
    assert (failure.value.code, failure.value.clean, failure.value.codeSent) == (1006, False, None)


@pytest.mark.parametrize("delay", [None, 0.02], ids=["raises", "async-fails"])
@pytest_twisted.ensureDeferred
async def test_app_exception_gets_1011_and_server_keeps_serving(serve: Any, delay: float | None) -> None:
    """
    An exception in the app's C{textMessageReceived} (raised at once, or by
    its C{async def} later) closes that connection with 1011 and no reason;
    another open connection and a new one still get their echoes.
    """
    recorder = RecordingFactory(echo=True, delay=delay)
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def client() -> tuple[int, str, str, str]:
        async with ws_connect(server.url()) as bystander, ws_connect(server.url()) as victim:
            await victim.send("boom")
            try:
                await victim.recv()
                raise AssertionError("the failing message was echoed")
            except WSConnectionClosed as closed:
                assert closed.rcvd is not None
                code, reason = closed.rcvd.code, closed.rcvd.reason
            await bystander.send("still here")
            still = await bystander.recv()
            async with ws_connect(server.url()) as newcomer:
                await newcomer.send("new")
                new = await newcomer.recv()
            return code, reason, still, new

    assert await in_thread(client) == (1011, "", "still here", "new")
    failed = [app for app in recorder.built if app.messages == ["boom"]]
    assert len(failed) == 1
    failure = await failed[0].lostReason()
    assert failure.value.codeSent == 1011


@pytest.mark.parametrize("delay", [None, 0.05], ids=["sync-handler", "async-handler"])
@pytest_twisted.ensureDeferred
async def test_close_reply_follows_answers_to_messages_sent_before_the_close(
    serve: Any, raw: Any, delay: float | None
) -> None:
    """
    A message and a close arriving together: the app's answer to the
    message goes out before the server's close reply (README: "The echo
    waits until the application has handled the messages that arrived
    together with the close"), also when the handler is an C{async def}.
    """
    recorder = RecordingFactory(echo=True, delay=delay)
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.upgrade(server.port)
    await sock.send(client_frame(0x1, b"last words") + client_frame(0x8, close_payload(1000, "bye")))
    received = await sock.read_all_messages()
    assert [(m.opcode, m.code if m.opcode is Opcode.CLOSE else m.payload) for m in received] == [
        (Opcode.TEXT, "last words"),
        (Opcode.CLOSE, 1000),
    ]
    failure = await recorder.built[0].lostReason()
    assert (failure.value.code, failure.value.reason, failure.value.clean) == (1000, "bye", True)


@pytest_twisted.ensureDeferred
async def test_slow_handler_receives_later_messages_in_order(serve: Any) -> None:
    """
    With an C{async def} handler, messages that arrive while it runs wait
    and are handled, and answered, in order.
    """
    recorder = RecordingFactory(echo=True, delay=0.01)
    server = serve(WebSocketResource(recorder, pingInterval=None))

    async def client() -> list[str]:
        async with ws_connect(server.url()) as ws:
            for n in range(5):
                await ws.send(f"m{n}")
            return [await ws.recv() for _ in range(5)]

    assert await in_thread(client) == [f"m{n}" for n in range(5)]
    assert recorder.built[0].messages == [f"m{n}" for n in range(5)]


# -- keepalive, timeouts and a peer that does not read ---------------------------


@pytest_twisted.ensureDeferred
async def test_silent_peer_is_pinged_then_closed_with_1011(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    With C{pingInterval=0.2} and C{pingTimeout=0.2}, a peer that sends
    nothing gets a ping, and, as it does not answer, a close with 1011,
    then the server drops TCP.
    """
    server = serve(WebSocketResource(recorder, pingInterval=0.2, pingTimeout=0.2))
    sock = await raw.upgrade(server.port)
    ping = await sock.read_message()
    assert ping is not None and ping.opcode is Opcode.PING
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1011)
    assert await sock.read_until_eof() == b""
    failure = await recorder.built[0].lostReason()
    assert failure.value.codeSent == 1011


@pytest_twisted.ensureDeferred
async def test_peer_answering_pings_stays_open(serve: Any, recorder: RecordingFactory) -> None:
    """
    A websockets client, which answers pings by itself, stays connected
    through 0.8 s of silence, well past C{pingInterval} + C{pingTimeout}
    (0.1 + 0.3 s), and its pongs reach the app's C{pongReceived}.
    """
    server = serve(WebSocketResource(recorder, pingInterval=0.1, pingTimeout=0.3))

    async def client() -> str:
        async with ws_connect(server.url()) as ws:
            await asyncio.sleep(0.8)  # the silence the keepalive must bridge
            await ws.send("alive")
            return await ws.recv()

    assert await in_thread(client) == "alive"
    assert len(recorder.built[0].pongs.pending) >= 2


@pytest_twisted.ensureDeferred
async def test_close_timeout_aborts_peer_that_never_answers_the_close(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    After C{transport.loseConnection()}, a peer that never sends its close
    frame is cut off after C{closeTimeout} (0.2 s); the app sees 1006,
    having sent 1000.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, closeTimeout=0.2))
    sock = await raw.upgrade(server.port)
    app = await recorder.next()
    app.transport.loseConnection()
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1000)
    assert await within(sock.read_until_eof(), 2.0) == b""  # aborted: EOF or reset
    failure = await app.lostReason()
    assert (failure.value.code, failure.value.codeSent, failure.value.clean) == (1006, 1000, False)


@pytest_twisted.ensureDeferred
async def test_idle_timeout_closes_with_1001(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    With C{idleTimeout=0.2}, a connection without messages is closed with
    1001; answering the close ends it cleanly.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, idleTimeout=0.2))
    sock = await raw.upgrade(server.port)
    close = await sock.read_message()
    assert close is not None and (close.opcode, close.code) == (Opcode.CLOSE, 1001)
    await sock.send(client_frame(0x8, close_payload(1001)))
    assert await sock.read_until_eof() == b""
    failure = await recorder.built[0].lostReason()
    assert (failure.value.codeSent, failure.value.clean) == (1001, True)


@pytest_twisted.ensureDeferred
async def test_peer_that_stops_reading_is_dropped_past_max_write_buffer(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    A peer that never reads while the app keeps sending (one 64 KiB message
    per reactor turn) is dropped once more than C{maxWriteBuffer} is queued
    behind the full socket; the app sees 1006.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, maxWriteBuffer=256 << 10))
    sock = await raw.upgrade(server.port)
    app = await recorder.next()
    chunk = b"z" * (64 << 10)
    for _ in range(2000):  # at most 125 MiB; the kernel's buffers take a few
        if app.lost.called:
            break
        app.transport.sendBytesMessage(chunk)
        await deferLater(reactor, 0)
    failure = await app.lostReason()
    assert (failure.value.code, failure.value.clean) == (1006, False)
    sock.close()


# -- handshake refusals and negotiation ----------------------------------------------


@pytest_twisted.ensureDeferred
async def test_disallowed_origin_gets_403_and_missing_origin_is_accepted(serve: Any) -> None:
    """
    With C{allowedOrigins}, a browser origin outside the list gets HTTP 403;
    an allowed origin and a request without C{Origin} are accepted.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, allowedOrigins=["https://good.example"]))

    async def client() -> tuple[int, str, str]:
        try:
            async with ws_connect(server.url(), origin="https://evil.example"):
                raise AssertionError("a disallowed origin was accepted")
        except InvalidStatus as refused:
            status = refused.response.status_code
        async with ws_connect(server.url(), origin="https://good.example") as ws:
            await ws.send("good")
            good = await ws.recv()
        async with ws_connect(server.url()) as ws:
            await ws.send("no origin")
            none = await ws.recv()
        return status, good, none

    assert await in_thread(client) == (403, "good", "no origin")


@pytest_twisted.ensureDeferred
async def test_wrong_websocket_version_gets_426_with_version_header(serve: Any, raw: Any) -> None:
    """
    A request for WebSocket version 8 is refused with 426 Upgrade Required
    and a C{Sec-WebSocket-Version: 13} header (RFC 6455 §4.4).
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port, version="8")
    await sock.send(request)
    response = await sock.read_response()
    assert response.status == 426
    assert response.headers["sec-websocket-version"] == "13"


@pytest_twisted.ensureDeferred
async def test_websockets_subprotocol_follows_server_preference(serve: Any, recorder: RecordingFactory) -> None:
    """
    With C{subprotocols=["b", "a"]} and a client offering C{["a", "b"]}, the
    server picks C{"b"} (its own preference) and the app reads it from
    C{transport.subprotocol}; a client offering neither gets no subprotocol.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, subprotocols=["b", "a"]))

    async def client() -> tuple[str | None, str | None]:
        async with ws_connect(server.url(), subprotocols=["a", "b"]) as ws:
            chosen = ws.subprotocol
        async with ws_connect(server.url(), subprotocols=["c"]) as ws:
            none = ws.subprotocol
        return chosen, none

    assert await in_thread(client) == ("b", None)
    assert [app.transport.subprotocol for app in recorder.built] == ["b", None]


@pytest_twisted.ensureDeferred
async def test_autobahn_subprotocol_follows_server_preference(
    serve: Any, autobahn: Any, recorder: RecordingFactory
) -> None:
    """
    autobahn offering C{["a", "b"]} to a server preferring C{["b", "a"]}
    gets C{"b"}, and so does the app.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, subprotocols=["b", "a"]))
    client = await autobahn(server.url(), protocols=["a", "b"])
    assert client.client.websocket_protocol_in_use == "b"
    app = await recorder.next()
    assert app.transport.subprotocol == "b"


def _identityHook(kind: str, seen: list[Any]) -> Any:
    """
    An accept hook of the given C{kind} ("sync", "deferred" or "async-def")
    that records the request's C{X-User} and accepts with an identity.
    """

    def identity(request: Any) -> dict[str, Any]:
        seen.append(request.getHeader("x-user"))
        return {"user": request.getHeader("x-user")}

    if kind == "sync":
        return identity
    if kind == "deferred":
        return lambda request: deferLater(reactor, 0.05, identity, request)

    async def hook(request: Any) -> dict[str, Any]:
        await deferLater(reactor, 0.05)
        return identity(request)

    return hook


@pytest.mark.parametrize("kind", ["sync", "deferred", "async-def"])
@pytest_twisted.ensureDeferred
async def test_accept_hook_identity_reaches_app(serve: Any, recorder: RecordingFactory, kind: str) -> None:
    """
    An accept hook (plain, returning a Deferred that fires later, or an
    C{async def}) opens the connection, and the app sees the identity it
    returned in C{transport.identity}.
    """
    seen: list[Any] = []
    server = serve(WebSocketResource(recorder, pingInterval=None, accept=_identityHook(kind, seen)))

    async def client() -> str:
        async with ws_connect(server.url(), additional_headers={"X-User": "alice"}) as ws:
            await ws.send("hi")
            return await ws.recv()

    assert await in_thread(client) == "hi"
    assert seen == ["alice"]
    assert recorder.built[0].transport.identity == {"user": "alice"}


def _refusingHook(kind: str) -> Any:
    """
    An accept hook of the given C{kind} refusing with
    C{HandshakeError("nope", 401)}.
    """

    def refuse(request: Any = None) -> None:
        raise HandshakeError("nope", 401)

    if kind == "sync":
        return refuse
    return lambda request: deferLater(reactor, 0.05, refuse)


@pytest.mark.parametrize("kind", ["sync", "deferred"])
@pytest_twisted.ensureDeferred
async def test_accept_hook_refusal_gets_its_status_and_body(serve: Any, recorder: RecordingFactory, kind: str) -> None:
    """
    An accept hook raising (or whose Deferred later fails with)
    C{HandshakeError("nope", 401)} makes the client's handshake fail with
    HTTP 401 and the error text as the body; no app is built.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, accept=_refusingHook(kind)))

    async def client() -> tuple[int, bytes]:
        try:
            async with ws_connect(server.url()):
                raise AssertionError("the refused handshake succeeded")
        except InvalidStatus as refused:
            return refused.response.status_code, refused.response.body

    status, body = await in_thread(client)
    assert status == 401
    assert b"nope" in body
    assert recorder.built == []


@pytest_twisted.ensureDeferred
async def test_async_accept_hook_refusal_sends_nothing_before_the_error(serve: Any, raw: Any) -> None:
    """
    On the wire, a refusal from a slow accept hook is the first and only
    response: it starts with C{HTTP/1.1 401}, no C{101} precedes it, and
    nothing follows its body.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, accept=_refusingHook("deferred")))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request)
    response = await sock.read_response()
    assert response.raw.startswith(b"HTTP/1.1 401 ")
    assert b"101" not in response.raw
    assert "sec-websocket-accept" not in response.headers
    assert response.body == b"nope\n"
    assert sock.buffer == b""


@pytest_twisted.ensureDeferred
async def test_refused_upgrade_ends_the_connection_and_a_new_one_works(serve: Any, raw: Any) -> None:
    """
    A refusal is a complete HTTP response that says C{Connection: close},
    and the server closes (issue 12: no second request, slow or not, on a
    connection that only came to upgrade), on a plain L{Site} too; the
    client retries on a new connection, which upgrades and talks WebSocket.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None))
    first = await raw.connect(server.port)
    wrong, _ = keyed_upgrade(server.port, version="8")
    await first.send(wrong)
    refusal = await first.read_response()
    assert refusal.status == 426
    assert refusal.headers["connection"] == "close"
    assert await first.read_until_eof() == b""
    sock = await raw.connect(server.port)
    right, key = keyed_upgrade(server.port)
    await sock.send(right)
    response = await sock.read_response()
    assert response.status == 101
    assert response.headers["sec-websocket-accept"] == accept_key_for(key)
    await sock.send(client_frame(0x1, b"second try"))
    message = await sock.read_message()
    assert message is not None and message.payload == "second try"


@pytest_twisted.ensureDeferred
async def test_refused_then_accepted_clients_do_not_interfere(serve: Any) -> None:
    """
    Refusals do not disturb the server: after a refused and an accepted
    handshake in parallel, a further client still gets its echo.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None, allowedOrigins=["https://good.example"]))

    async def refused() -> int:
        try:
            async with ws_connect(server.url(), origin="https://evil.example"):
                return 101
        except InvalidStatus as error:
            return error.response.status_code

    async def accepted(text: str) -> str:
        async with ws_connect(server.url()) as ws:
            await ws.send(text)
            return await ws.recv()

    async def client() -> list[Any]:
        return list(await asyncio.gather(refused(), accepted("one"), refused(), accepted("two")))

    assert await in_thread(client) == [403, "one", 403, "two"]

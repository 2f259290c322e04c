"""
Hostile frames against a live server: every RFC 6455 framing violation is
answered with the right close code (then the TCP connection ends), floods
of legal frames are served without unbounded memory, and a well-behaved
client connected throughout sees no disruption.

Frames are built by hand (L{tests.support.frames.raw_frame}); what the server
sends back is parsed by wsproto (the integration suite's L{RawSocket}).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from wsproto.frame_protocol import FrameProtocol, Opcode

from txpulse.wire.tcp import LARGE_READ_SIZE

from ..support.apps import RecordingFactory
from ..support.frames import close_payload, raw_frame
from ..support.hostileframes import BAD_CLOSES, VIOLATIONS
from ..support.logs import LogLines
from ..support.rawsocket import Message, RawSocket, accept_key_for
from ..support.waits import WAIT, within
from .conftest import HardenedServer, ObservedEcho, peer_of, retained_bytes, undisturbed, write_backlog


async def opened(raw: Any, server: HardenedServer) -> tuple[RawSocket, str, ObservedEcho]:
    """
    Open a raw WebSocket to C{/echo}.

    @return: the socket, its name in the server's logs, and the server-side
        application.
    """
    sock = await raw.upgrade(server.port)
    app = await server.factory.next()
    return sock, peer_of(sock), app


def close_of(messages: list[Message]) -> Message:
    """
    The close frame ending C{messages} (there must be one, and it must be last).
    """
    assert messages, "the server closed TCP without a close frame"
    close = messages[-1]
    assert close.opcode is Opcode.CLOSE, messages[-3:]
    return close


async def assert_failed_with(
    server: HardenedServer, raw: Any, logs: LogLines, attack: bytes, code: int, *, echoes: int = 0
) -> None:
    """
    Send C{attack} on a fresh connection; the server must answer the
    C{echoes} valid messages it starts with, then close with C{code}, end
    the TCP connection, tell the application (which received nothing else)
    and log the protocol error with the peer's address.
    """
    sock, peer, app = await opened(raw, server)
    await sock.send(attack)
    messages = await sock.read_all_messages()  # until the server ends TCP
    close = close_of(messages)
    assert close.code == code, (close.code, close.reason)
    assert len(messages) == echoes + 1, messages
    failure = await app.lostReason()
    assert (failure.value.codeSent, failure.value.code, failure.value.clean) == (code, 1006, False)
    await logs.expect("protocol error from", peer, f"closing with {code}")


# -- framing violations -----------------------------------------------------------------------

# VIOLATIONS: tests/support/hostileframes.py (shared with tests/http2).


@pytest.mark.parametrize(("attack", "code"), VIOLATIONS)
@pytest_twisted.ensureDeferred
async def test_framing_violation_closes_with_its_code(
    hardened: Any, raw: Any, logs: LogLines, attack: bytes, code: int
) -> None:
    """
    Each violation of RFC 6455 §5 (masking, opcodes, RSV bits, control
    frame rules, fragmentation order, length encoding: non-minimal lengths
    are refused, §5.2 "the minimal number of bytes MUST be used") fails the
    connection with its close code (1002; 1009 for a declared length over
    the limit, refused before any payload; 1007 for invalid UTF-8), the
    server ends TCP and logs it, and nothing reaches the application.
    """
    server = hardened()
    async with undisturbed(server):
        await assert_failed_with(server, raw, logs, attack, code)


@pytest_twisted.ensureDeferred
async def test_new_message_after_a_ping_inside_a_fragmented_one_gets_1002(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    A ping between fragments is legal (RFC 6455 §5.4) and answered; a new
    data message after it, with the first still unfinished, is not: 1002.
    """
    server = hardened()
    async with undisturbed(server):
        attack = raw_frame(0x01, b"first") + raw_frame(0x89, b"legal") + raw_frame(0x82, b"x")
        await assert_failed_with(server, raw, logs, attack, 1002, echoes=1)


@pytest_twisted.ensureDeferred
async def test_violation_after_valid_messages_keeps_their_answers(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    Messages that arrived before a violation are still answered, in order,
    before the close frame, whether or not they came in the same read as
    the violation: what the peer sees must not depend on how TCP split its
    bytes (the application did receive these messages and answered them).
    """
    server = hardened()
    async with undisturbed(server):
        attack = raw_frame(0x81, b"one") + raw_frame(0x82, b"two") + raw_frame(0x83, b"bad")
        await assert_failed_with(server, raw, logs, attack, 1002, echoes=2)


# -- close frames -------------------------------------------------------------------------------

# BAD_CLOSES: tests/support/hostileframes.py (shared with tests/http2).


@pytest.mark.parametrize("payload", BAD_CLOSES)
@pytest_twisted.ensureDeferred
async def test_close_with_bad_code_or_payload_gets_1002(
    hardened: Any, raw: Any, logs: LogLines, payload: bytes
) -> None:
    """
    A close frame with a code that may not be sent (RFC 6455 §7.4: below
    1000, reserved, 1005/1006/1015, unassigned below 3000, above 4999), a
    1-byte payload, or a reason that is not UTF-8 fails the connection with
    1002 (txpulse's documented choice for the reason; wsproto uses 1007).
    """
    server = hardened()
    async with undisturbed(server):
        await assert_failed_with(server, raw, logs, raw_frame(0x88, payload), 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1014, 3000, 4999])
@pytest_twisted.ensureDeferred
async def test_close_with_valid_edge_code_is_echoed(hardened: Any, raw: Any, logs: LogLines, code: int) -> None:
    """
    The valid neighbours of the refused codes (the registered codes, 3000
    and 4999) are echoed: a clean close, the code reaches the application
    and the connection's log line.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, app = await opened(raw, server)
        await sock.send(raw_frame(0x88, close_payload(code, "bye")))
        # Compared as bytes: wsproto's parser refuses 1014 (see test_differential).
        assert await sock.read_until_eof() == bytes((0x88, 2)) + code.to_bytes(2, "big")
        failure = await app.lostReason()
        assert (failure.value.code, failure.value.reason, failure.value.clean) == (code, "bye", True)
        await logs.expect("WebSocket closed:", peer, f"code={code}")


@pytest_twisted.ensureDeferred
async def test_data_after_close_is_ignored(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    Frames after the peer's close frame (in the same segment, and even
    invalid ones) are discarded (RFC 6455 §5.5.1): the server echoes the
    close, answers nothing else, delivers nothing else, and ends TCP.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, app = await opened(raw, server)
        await sock.send(
            raw_frame(0x81, b"before")
            + raw_frame(0x88, close_payload(1000))
            + raw_frame(0x81, b"after")
            + raw_frame(0x89, b"ping after")
            + raw_frame(0x83, b"garbage after")
        )
        messages = await sock.read_all_messages()
        assert [(m.opcode, m.payload, m.code) for m in messages] == [
            (Opcode.TEXT, "before", None),
            (Opcode.CLOSE, b"", 1000),
        ]
        failure = await app.lostReason()
        assert (failure.value.code, failure.value.clean) == (1000, True)
        await logs.expect("WebSocket closed:", peer, "code=1000")


# -- floods ---------------------------------------------------------------------------------


def collect_pongs(sock: RawSocket, count: int) -> list[bytes]:
    """
    (In a thread.) Read until C{count} pongs arrived; anything else fails.
    """
    pongs: list[bytes] = []
    while len(pongs) < count:
        data = sock.sock.recv(1 << 16)
        if not data:
            raise AssertionError(f"EOF after {len(pongs)} pongs")
        sock.frames.receive_bytes(data)
        for received in sock.frames.received_frames():
            assert received.opcode is Opcode.PONG, received
            pongs.append(bytes(received.payload))
    return pongs


@pytest_twisted.ensureDeferred
async def test_ping_burst_is_answered_in_full(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    10,000 pings in one burst are legal (RFC 6455 §5.5.2 asks for a pong
    to each; txpulse answers every one, in order, batched per read), so the
    connection stays healthy: it echoes and closes normally afterwards,
    and the bystander is served during the burst.
    """
    server = hardened()
    async with undisturbed(server) as bystander:
        sock, peer, app = await opened(raw, server)
        payloads = [i.to_bytes(4, "big") for i in range(10_000)]
        burst = b"".join(raw_frame(0x89, p) for p in payloads)
        sending = deferToThread(sock.sock.sendall, burst)
        await bystander.exchange()  # during the burst
        pongs = await within(deferToThread(collect_pongs, sock, len(payloads)))
        await within(sending)
        assert pongs == payloads
        await sock.send(raw_frame(0x81, b"still here"))
        echo = await sock.read_message()
        assert echo is not None and echo.payload == "still here"
        await sock.send(raw_frame(0x88, close_payload(1000)))
        assert [m.code for m in await sock.read_all_messages()] == [1000]
        failure = await app.lostReason()
        assert failure.value.clean
        await logs.expect("WebSocket closed:", peer, "code=1000", "messages in=1 out=1")


def flood_without_reading(sock: RawSocket, chunk: bytes, limit: int) -> tuple[int, str]:
    """
    (In a thread.) Send C{chunk} again and again, never reading, until the
    server drops the connection or C{limit} bytes went out.

    @return: the bytes sent, and how it ended.
    """
    sent = 0
    try:
        while sent < limit:
            sock.sock.sendall(chunk)
            sent += len(chunk)
    except (ConnectionResetError, BrokenPipeError) as error:
        return sent, type(error).__name__
    except TimeoutError:
        return sent, "timeout"
    return sent, "limit"


@pytest_twisted.ensureDeferred
async def test_pinger_that_never_reads_pongs_is_no_longer_read_then_dropped_by_the_keepalive(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    A peer flooding pings while never reading the pongs: once the pongs
    queued behind the server's full write buffer pass half of
    C{maxWriteBuffer} (1 MiB) it stops reading from that peer (TCP
    back-pressure holds the flood in the kernel's buffers), so what is
    queued for it stays under Twisted's pause threshold plus half the limit
    plus the replies to two reads, and the limit itself is never crossed
    (the other half is the application's). Its pongs cannot be read either:
    C{pingTimeout} (0.3 s) after the keepalive ping it is closed with 1011,
    and since that close frame cannot reach it, aborted C{closeTimeout}
    (0.3 s) later; both logged with the peer's address.
    """
    limit = 1 << 20
    server = hardened(maxWriteBuffer=limit, pingInterval=0.3, pingTimeout=0.3, closeTimeout=0.3)
    async with undisturbed(server):
        sock, peer, app = await opened(raw, server)
        sock.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport = app.transport.transport
        chunk = b"".join(raw_frame(0x89, b"p" * 125) for _ in range(500))  # 64 KiB of max-size pings
        flooding = deferToThread(flood_without_reading, sock, chunk, 256 << 20)
        largest = 0
        deadline = time.monotonic() + WAIT
        while not app.lost.called and time.monotonic() < deadline:
            largest = max(largest, write_backlog(transport))
            await deferLater(reactor, 0.002)
        failure = await app.lostReason()
        sent, ended = await within(flooding)
        assert (failure.value.code, failure.value.codeSent, failure.value.clean) == (1006, 1011, False)
        assert ended in ("ConnectionResetError", "BrokenPipeError"), (sent, ended)
        # Up to Twisted's pause threshold (LARGE_READ_SIZE, since a flooding
        # peer fills every read) plus the write that crossed it (the pongs
        # answering one read, less than the read itself), then half the
        # limit plus the pongs of the read that crossed that mark.
        assert largest <= 3 * LARGE_READ_SIZE + limit // 2, largest
        assert not logs.matching(peer, "is not reading")
        await logs.expect(peer, "silent 0.3s after a ping; closing with 1011")
        await logs.expect(peer, "did not finish closing within 0.3s; aborting")


def fragments(opcode: int, payload: bytes) -> bytes:
    """
    C{payload} as a fragmented message of 1-byte frames (RFC 6455 §5.4).
    """
    # Masking each frame by hand is slow; 256 distinct frames cover it all.
    first = {b: raw_frame(opcode, bytes((b,))) for b in set(payload[:1])}
    middle = {b: raw_frame(0x00, bytes((b,))) for b in range(256)}
    last = {b: raw_frame(0x80, bytes((b,))) for b in range(256)}
    return first[payload[0]] + b"".join(middle[b] for b in payload[1:-1]) + last[payload[-1]]


async def consumed(app: ObservedEcho, count: int) -> None:
    """
    Wait (bounded) until the server has read C{count} WebSocket bytes.
    """
    deadline = time.monotonic() + WAIT
    while app.transport.bytesIn < count:
        assert time.monotonic() < deadline, f"server read {app.transport.bytesIn} of {count} bytes"
        await deferLater(reactor, 0.005)


@pytest_twisted.ensureDeferred
async def test_100k_one_byte_fragments_under_the_limit_are_delivered(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    A 100,000-byte binary message sent as 100,000 one-byte fragments (7
    bytes on the wire each, interleaved with nothing) is within the 1 MiB
    default limit: it is reassembled in order and echoed, and the
    bystander is served meanwhile.
    """
    server = hardened()
    async with undisturbed(server) as bystander:
        sock, peer, app = await opened(raw, server)
        payload = bytes(range(256)) * 390 + bytes(range(160))
        assert len(payload) == 100_000
        sending = deferToThread(sock.sock.sendall, fragments(0x02, payload))
        await bystander.exchange()  # during the flood
        await within(sending)
        echo = await sock.read_message()
        assert echo is not None and echo.opcode is Opcode.BINARY and echo.payload == payload
        await sock.send(raw_frame(0x88, close_payload(1000)))
        assert [m.code for m in await sock.read_all_messages()] == [1000]
        await logs.expect("WebSocket closed:", peer, "code=1000", "messages in=1 out=1")


@pytest_twisted.ensureDeferred
async def test_fragment_flood_memory_stays_proportional_to_the_message(hardened: Any, raw: Any) -> None:
    """
    While 100,000 one-byte fragments of a message are being reassembled,
    the server's connection holds memory in proportion to the payload (at
    most twice it, plus 64 KiB), not a Python object per fragment: the
    message limit must bound memory, whatever the fragmentation.
    """
    server = hardened()
    async with undisturbed(server):
        sock, peer, app = await opened(raw, server)
        payload = bytes(range(256)) * 390 + bytes(range(160))
        stream = fragments(0x02, payload)
        lastFrame = len(stream) - 7
        await sock.send(stream[:lastFrame])
        await consumed(app, lastFrame)
        held = retained_bytes(app.transport._conn)
        await sock.send(stream[lastFrame:])
        echo = await sock.read_message()
        assert echo is not None and echo.payload == payload
        assert held <= 2 * len(payload) + (64 << 10), f"{held} bytes held for a {len(payload) - 1}-byte partial message"


@pytest_twisted.ensureDeferred
async def test_fragment_flood_over_the_limit_gets_1009_at_the_first_byte_over(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    With C{maxMessageSize=50000}, 50,000 one-byte fragments are accepted
    (the connection still answers a ping between fragments, RFC 6455 §5.4),
    and the very next fragment closes it with 1009, before any more is
    read or delivered.
    """
    server = hardened(maxMessageSize=50_000)
    async with undisturbed(server):
        sock, peer, app = await opened(raw, server)
        payload = bytes(range(250)) * 200
        stream = fragments(0x02, payload + b"!")
        atLimit = len(stream) - 7  # all 50,000 payload bytes, message unfinished
        await sock.send(stream[:atLimit] + raw_frame(0x89, b"are you there"))
        pong = await sock.read_message()
        assert pong is not None and (pong.opcode, pong.payload) == (Opcode.PONG, b"are you there")
        await sock.send(stream[atLimit:])
        messages = await sock.read_all_messages()
        assert [(m.opcode, m.code) for m in messages] == [(Opcode.CLOSE, 1009)]
        failure = await app.lostReason()
        assert failure.value.codeSent == 1009
        await logs.expect("protocol error from", peer, "closing with 1009")


# -- the client side: a hostile server ------------------------------------------------------


class HostileServer(Protocol):
    """
    A server that completes the opening handshake by hand, then sends
    C{frames} (which a real server never would) and records what the
    client sends back until the connection ends.

    @ivar ended: fires with the bytes received after the handshake.
    """

    def __init__(self, frames: bytes) -> None:
        self.frames = frames
        self.head = b""
        self.received = b""
        self.upgraded = False
        self.ended: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        if self.upgraded:
            self.received += data
            return
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        head, _, rest = self.head.partition(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip().decode("ascii")
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key_for(key).encode("ascii") + b"\r\n\r\n" + self.frames
        )
        self.upgraded = True
        self.received += rest

    def connectionLost(self, reason: Any = None) -> None:
        self.ended.callback(self.received)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param(raw_frame(0x81, b"masked"), 1002, id="masked-text"),
        pytest.param(raw_frame(0x89, b"masked ping"), 1002, id="masked-ping"),
        pytest.param(raw_frame(0x83, b"x", masked=False), 1002, id="bad-opcode"),
        pytest.param(
            raw_frame(0x82, b"x" * 5, masked=False, length_bytes=b"\x7e\x00\x05"), 1002, id="non-minimal-length"
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_client_fails_a_server_that_breaks_framing(
    hardened: Any, logs: LogLines, frames: bytes, code: int
) -> None:
    """
    txpulse's client endpoint, facing a server that sends a masked frame
    (RFC 6455 §5.1: a client MUST close on one) or another framing
    violation, fails the connection with 1002 (a masked close frame, as a
    client's must be), logs it and tells its application; another client
    connection of the same process, to a well-behaved server, exchanges
    messages before and after without disruption.
    """
    from txpulse import WebSocketClientEndpoint

    good = hardened()
    well = await WebSocketClientEndpoint.new(reactor, good.url()).connect(RecordingFactory())
    well.transport.sendTextMessage("before")
    assert await within(well.inbox.get()) == "before"

    hostile = HostileServer(frames)
    factory = Factory.forProtocol(lambda: hostile)
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        port = listening.getHost().port
        app = await WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/").connect(RecordingFactory())
        received = await within(hostile.ended)
        await within(app.lost)
    finally:
        await listening.stopListening()
    parser = FrameProtocol(client=False, extensions=[])  # requires the client's frames to be masked
    parser.receive_bytes(received)
    closes = [f for f in parser.received_frames() if f.opcode is Opcode.CLOSE]
    assert [int(f.payload[0]) for f in closes] == [code]
    assert app.reason.value.codeSent == code
    await logs.expect("protocol error from", f"127.0.0.1:{port}", f"closing with {code}")

    well.transport.sendTextMessage("after")
    assert await within(well.inbox.get()) == "after"
    well.transport.loseConnection()
    await within(well.lost)
    assert well.reason.value.clean

"""
Property-based fuzzing of the sans-IO core (L{txpulse.core.connection}):
random byte streams, and valid streams mutated (bits flipped, truncated,
slices duplicated or deleted, other streams spliced in), fed to a server
and to a client L{Connection} in random chunks, the way the wire feeds it.

Whatever the input, the core must never raise, never buffer more than one
frame's worth within its limits, never deliver a message over the limit,
and always end in a valid state: open, cleanly closing, or failed with
1002, 1007 or 1009 (then CLOSED, asking for the transport to go, with that
code as its last frame).

Frames are built by hand and the core's output is parsed by a parser
written here, so a bug shared by txpulse's encoder and decoder cannot hide.
An atheris target doing the same from coverage feedback lives in
C{fuzz/fuzz_core.py}.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from txpulse.core.connection import Close, Connection, Ping, Pong, Side, State
from txpulse.core.deflate import Deflate, DeflateParameters
from txpulse.core.exceptions import ProtocolError

from ..support.frames import KEY, raw_frame

#: The close codes a peer's bytes may make the core fail with.
FAILURE_CODES = {1002, 1007, 1009}
#: The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
MAX_HEADER = 14
#: RFC 6455 §5.5.
MAX_CONTROL = 125

FUZZ_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- building streams, independently of txpulse --------------------------------------------------


def deflate(payload: bytes) -> bytes:
    """
    A whole message compressed as permessage-deflate sends it (RFC 7692
    §7.2.1: raw DEFLATE, sync flush, the 4-byte tail removed), without
    context takeover.
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


@dataclass(frozen=True)
class Message:
    """
    One valid message: C{opcode} 1 or 2 (or 9/10 for a ping/pong), its
    payload and the fragment sizes it is sent in.
    """

    opcode: int
    payload: bytes
    cuts: tuple[int, ...] = ()
    compressed: bool = False


def split(data: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def encode_message(message: Message, masked: bool, interleave: bytes = b"") -> bytes:
    """
    C{message} as frames (fragmented at its cuts, with C{interleave} — a
    control frame — after the first fragment, RFC 6455 §5.4).
    """
    if message.opcode >= 8:
        return raw_frame(0x80 | message.opcode, message.payload, masked=masked)
    data = deflate(message.payload) if message.compressed else message.payload
    pieces = split(data, message.cuts)
    out = []
    for i, piece in enumerate(pieces):
        first = (0x80 if i == len(pieces) - 1 else 0) | (message.opcode if i == 0 else 0)
        if i == 0 and message.compressed:
            first |= 0x40
        out.append(raw_frame(first, piece, masked=masked))
        if i == 0 and len(pieces) > 1:
            out.append(interleave)
    return b"".join(out)


def messages(compressed: bool = False) -> st.SearchStrategy[Message]:
    cuts = st.lists(st.integers(0, 400), max_size=4).map(tuple)
    text = st.builds(
        lambda s, c, z: Message(1, s.encode("utf-8"), c, z),
        st.text(max_size=60),
        cuts,
        st.just(False) if not compressed else st.booleans(),
    )
    binary = st.builds(
        lambda b, c, z: Message(2, b, c, z),
        st.one_of(st.binary(max_size=60), st.binary(min_size=126, max_size=300)),
        cuts,
        st.just(False) if not compressed else st.booleans(),
    )
    control = st.builds(lambda o, b: Message(o, b), st.sampled_from([9, 10]), st.binary(max_size=MAX_CONTROL))
    return st.one_of(text, binary, control)


close_frames = st.one_of(
    st.just(b""),
    st.tuples(st.sampled_from([1000, 1001, 1003, 1008, 1011, 3000, 4999]), st.text(max_size=20)).map(
        lambda t: t[0].to_bytes(2, "big") + t[1].encode("utf-8")[:100]
    ),
)


@st.composite
def valid_streams(draw: st.DrawFn, masked: bool, compressed: bool = False) -> tuple[bytes, list[Message], bytes | None]:
    """
    A valid stream: messages (fragmented, with pings between fragments),
    maybe ended by a close frame.

    @return: the bytes, the messages, and the close payload (or C{None}).
    """
    sent = draw(st.lists(messages(compressed), max_size=6))
    ping = raw_frame(0x89, draw(st.binary(max_size=8)), masked=masked)
    data = b"".join(encode_message(m, masked, ping) for m in sent)
    close = draw(st.one_of(st.none(), close_frames))
    if close is not None:
        data += raw_frame(0x88, close, masked=masked)
    return data, sent, close


@st.composite
def mutated(draw: st.DrawFn, stream: st.SearchStrategy[bytes]) -> bytes:
    """
    A stream after a few random mutations: a bit flipped, a byte replaced,
    the end cut off, a slice duplicated or deleted, another stream (or
    random bytes) spliced in.
    """
    data = bytearray(draw(stream))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "truncate", "duplicate", "delete", "splice", "random"]))
        size = len(data)
        a = draw(st.integers(0, max(size, 1) * 2)) % (size + 1)
        b = draw(st.integers(0, max(size, 1) * 2)) % (size + 1)
        a, b = min(a, b), max(a, b)
        if op == "flip" and size:
            data[a % size] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and size:
            data[a % size] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[a:]
        elif op == "duplicate":
            data[b:b] = data[a:b]
        elif op == "delete":
            del data[a:b]
        elif op == "splice":
            data[a:a] = draw(stream)
        else:
            data[a:a] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


def server_streams(compressed: bool = False) -> st.SearchStrategy[bytes]:
    return valid_streams(masked=True, compressed=compressed).map(lambda t: t[0])


def client_streams() -> st.SearchStrategy[bytes]:
    return valid_streams(masked=False).map(lambda t: t[0])


chunkings = st.lists(st.integers(1, 97), min_size=1, max_size=8)
limits = st.sampled_from([(None, None), (1 << 20, None), (64, None), (200, 16), (1000, 130), (130, 1000)])


# -- parsing the core's output, independently of txpulse --------------------------------------------


def parse_output(data: bytes, masked: bool) -> list[tuple[int, bytes]]:
    """
    Parse what the core wrote: well-formed frames only (minimal lengths,
    masked by a client only, no RSV bits on control frames).

    @return: C{(first byte, unmasked payload)} for each frame.
    """
    frames = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 2
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        assert bool(b1 & 0x80) == masked
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            assert n >= 126
        elif n == 127:
            n = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
            assert n >= 0x10000
        key = b"\x00" * 4
        if masked:
            key = data[pos : pos + 4]
            pos += 4
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(data[pos : pos + n]))
        assert len(payload) == n
        pos += n
        if b0 & 0x0F >= 8:
            assert b0 & 0xF0 == 0x80 and n <= MAX_CONTROL
        frames.append((b0, payload))
    return frames


# -- the invariants --------------------------------------------------------------------------


def buffer_bound(conn: Connection) -> int:
    """
    The most the receive buffer may hold: the frame being received (a data
    frame within both limits, or a control frame) and the longest header.
    """
    return max(min(conn.max_frame_size, conn.max_message_size), MAX_CONTROL) + MAX_HEADER


def feed(conn: Connection, data: bytes, chunks: list[int]) -> tuple[list[object], bytes]:
    """
    Feed C{data} in chunks of the given sizes (cycled), draining events and
    output after each one as the wire does, and check the invariants that
    hold at every step.

    @return: every event, and every byte written.
    """
    events: list[object] = []
    out: list[bytes] = []
    pos = i = 0
    failed_at = None
    while pos < len(data):
        size = chunks[i % len(chunks)]
        i += 1
        conn.receive_data(data[pos : pos + size])
        pos += size
        new = conn.events_received()
        out.extend(conn.data_to_send())
        if failed_at is not None:
            assert new == [], "events after the connection failed"
        events.extend(new)
        assert len(conn._buf or b"") <= buffer_bound(conn), (len(conn._buf or b""), buffer_bound(conn))
        if conn.error is not None:
            failed_at = failed_at or pos
            assert conn.state is State.CLOSED
            assert conn.should_close_transport()
    return events, b"".join(out)


def check_outcome(conn: Connection, events: list[object], output: bytes) -> None:
    """
    The end state is valid, the output agrees with it, and nothing
    delivered exceeds the message limit.
    """
    for event in events:
        if isinstance(event, (str, bytes)):
            size = len(event.encode("utf-8")) if isinstance(event, str) else len(event)
            assert size <= conn.max_message_size
        else:
            assert isinstance(event, (Ping, Pong, Close))
    frames = parse_output(output, masked=conn.side is Side.CLIENT)
    pings = [e.payload for e in events if isinstance(e, Ping)]
    pongs = [payload for first, payload in frames if first == 0x8A]
    assert pongs == pings  # every ping answered, in order (nothing else sent pongs)
    closes = [payload for first, payload in frames if first == 0x88]
    assert len(closes) <= 1 and (not closes or frames[-1][0] == 0x88), "a frame after our close"
    error = conn.error
    if error is not None:
        assert isinstance(error, ProtocolError)
        assert error.closeCode in FAILURE_CODES, error.closeCode
        assert conn.state is State.CLOSED and conn.should_close_transport()
        if conn.close_received is None:
            assert closes and int.from_bytes(closes[0][:2], "big") == error.closeCode
        assert not conn.can_send()
    elif conn.close_received is not None:
        # The peer's close was echoed (same code, or none) and the core is done.
        received = conn.close_received
        assert isinstance(events[-1], Close) and events[-1] == received
        expected = b"" if received.code == 1005 else received.code.to_bytes(2, "big")
        assert closes == [expected]
        assert conn.state is State.CLOSED
        assert conn.should_close_transport() == (conn.side is Side.SERVER)
    else:
        assert conn.state is State.OPEN and not conn.should_close_transport() and closes == []


def run(side: Side, data: bytes, chunks: list[int], limit: tuple[int | None, int | None], **kwargs: object) -> None:
    max_message, max_frame = limit
    conn = Connection(side, max_message_size=max_message, max_frame_size=max_frame, **kwargs)  # type: ignore[arg-type]
    events, output = feed(conn, data, chunks)
    check_outcome(conn, events, output)


def server_deflate() -> Deflate:
    return Deflate(DeflateParameters(client_no_context_takeover=True), is_server=True)


# -- the properties ---------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(st.binary(max_size=300), chunkings, limits)
@example(b"\x82\xff" + (1 << 63 | 5).to_bytes(8, "big"), [1], (None, None))
@example(b"\x82\xfe\x00\x05" + KEY + b"xxxxx", [3], (None, None))
def test_server_survives_random_bytes(data: bytes, chunks: list[int], limit: tuple[int | None, int | None]) -> None:
    """
    Random bytes, fed to a server core in random chunks, never raise and
    leave it in a valid state within its buffer limit.
    """
    run(Side.SERVER, data, chunks, limit)


@FUZZ_SETTINGS
@given(st.binary(max_size=300), chunkings, limits)
def test_client_survives_random_bytes(data: bytes, chunks: list[int], limit: tuple[int | None, int | None]) -> None:
    """
    The same for a client core (which requires unmasked frames).
    """
    run(Side.CLIENT, data, chunks, limit)


@FUZZ_SETTINGS
@given(mutated(server_streams()), chunkings, limits)
@example(raw_frame(0x01, b"abc") + raw_frame(0x89, b"") + raw_frame(0x80, b"\xff"), [2], (None, None))
def test_server_survives_mutated_streams(data: bytes, chunks: list[int], limit: tuple[int | None, int | None]) -> None:
    """
    Valid client streams, mutated, fed to a server core: it never raises,
    stays within its limits, and ends open, closed, or failed with 1002,
    1007 or 1009.
    """
    run(Side.SERVER, data, chunks, limit)


@FUZZ_SETTINGS
@given(mutated(client_streams()), chunkings, limits)
def test_client_survives_mutated_streams(data: bytes, chunks: list[int], limit: tuple[int | None, int | None]) -> None:
    """
    Valid server streams, mutated, fed to a client core: the same.
    """
    run(Side.CLIENT, data, chunks, limit)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(server_streams(compressed=True)), chunkings, st.sampled_from([(1 << 20, None), (64, None), (300, 40)]))
@example(
    raw_frame(0xC2, deflate(b"\x00" * 100_000)),  # a 100 KB inflation bomb in a 100-byte frame
    [7],
    (64, None),
)
def test_server_with_deflate_survives_mutated_compressed_streams(
    data: bytes, chunks: list[int], limit: tuple[int | None, int | None]
) -> None:
    """
    With permessage-deflate negotiated, mutated compressed streams (broken
    DEFLATE data, RSV1 where it must not be) never raise, and no message
    inflates past C{max_message_size}: a failure is 1002, 1007 or 1009.
    """
    run(Side.SERVER, data, chunks, limit, deflate=server_deflate())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.booleans().flatmap(lambda z: st.tuples(st.just(z), valid_streams(masked=True, compressed=z))),
    chunkings,
    st.sampled_from([None, 1 << 20]),
)
def test_valid_streams_are_delivered_intact_in_any_chunking(
    case: tuple[bool, tuple[bytes, list[Message], bytes | None]], chunks: list[int], max_message: int | None
) -> None:
    """
    The other half of the fuzz: valid streams (fragmented, interleaved with
    pings, compressed or not, with or without a message limit) are
    delivered exactly, however they are chunked, and never fail.
    """
    negotiated, (data, sent, close) = case
    conn = Connection(Side.SERVER, max_message_size=max_message, deflate=server_deflate() if negotiated else None)
    events, output = feed(conn, data, chunks)
    assert conn.error is None, conn.error
    expected = [m.payload.decode("utf-8") if m.opcode == 1 else m.payload for m in sent if m.opcode < 8]
    assert [e for e in events if isinstance(e, (str, bytes))] == expected
    check_outcome(conn, events, output)


def test_compressed_message_is_delivered_without_a_message_limit() -> None:
    """
    C{max_message_size=None} means no limit, for compressed messages too:
    one is inflated and delivered, not refused as too big.
    """
    conn = Connection(Side.SERVER, max_message_size=None, deflate=server_deflate())
    conn.receive_data(raw_frame(0xC1, deflate(b"hello " * 20)))
    assert conn.error is None, conn.error
    assert conn.events_received() == ["hello " * 20]

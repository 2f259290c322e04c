"""
Tests for the strict UTF-8 rules of L{txpulse.core.connection}: invalid
UTF-8 fails the connection with 1007 as soon as its bytes arrive, even in
the middle of a frame, on both sides; and a close reason is cut to what fits
in a close frame.
"""

from __future__ import annotations

import itertools

import pytest

from txpulse.core.connection import Connection, Side, State
from txpulse.core.deflate import Deflate, DeflateParameters
from txpulse.core.exceptions import InvalidPayload

from ..support.frames import mask, raw_frame

SIDES = [Side.SERVER, Side.CLIENT]


def peer_frame(side: Side, first_byte: int, payload: bytes) -> bytes:
    """
    A frame as the peer of a C{side} core sends it: masked to a server,
    unmasked to a client.
    """
    return raw_frame(first_byte, payload, masked=side is Side.SERVER)


def close_frames(conn: Connection) -> list[tuple[int, str]]:
    """
    The close frames a core queued, as (code, reason), unmasked when the
    core is a client.
    """
    out = b"".join(conn.data_to_send())
    closes = []
    while out:
        length = out[1] & 0x7F
        assert length < 126, "only short frames expected"
        start = 2
        payload = out[start : start + length]
        if out[1] & 0x80:
            key = out[2:6]
            start = 6
            payload = mask(out[start : start + length], key)
        if out[0] == 0x88:
            closes.append((int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8")))
        out = out[start + length :]
    return closes


def feed_until_failed(conn: Connection, data: bytes) -> int:
    """
    Feed C{data} one byte at a time until the core fails.

    @return: the index of the byte after which it failed.
    """
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        if conn.error is not None:
            return i
    raise AssertionError("the connection did not fail")


def assert_failed_1007(conn: Connection) -> None:
    """
    The core failed with 1007, sent its close, and asks for the transport
    to close.
    """
    assert isinstance(conn.error, InvalidPayload)
    assert conn.error.closeCode == 1007
    assert [code for code, _ in close_frames(conn)] == [1007]
    assert conn.state is State.CLOSED
    assert conn.should_close_transport()


# Payload prefixes ending at the first byte that makes them invalid UTF-8.
INVALID_PREFIXES = [
    pytest.param(b"ok \xff", id="invalid-start-byte"),
    pytest.param("é".encode() + b"\xe2\x82(", id="truncated-then-ascii"),
    pytest.param(b"\xed\xa0", id="surrogate-prefix"),
    pytest.param(b"\xf4\x90", id="above-U+10FFFF"),
    pytest.param(b"\xc0", id="overlong"),
]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("prefix", INVALID_PREFIXES)
def test_invalid_utf8_in_unfragmented_frame_fails_mid_frame(side: Side, prefix: bytes) -> None:
    """
    A peer sending a text frame byte by byte gets 1007 right after the byte
    that makes the payload invalid, long before the frame completes.
    """
    payload = prefix + b"x" * 200
    frame = peer_frame(side, 0x81, payload)
    header = len(frame) - len(payload)
    conn = Connection(side)
    failed_at = feed_until_failed(conn, frame)
    assert failed_at == header + len(prefix) - 1
    assert conn.events_received() == []
    assert_failed_1007(conn)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("prefix", INVALID_PREFIXES)
def test_invalid_utf8_in_continuation_fails_mid_frame(side: Side, prefix: bytes) -> None:
    """
    The same inside a continuation fragment of a fragmented text message
    (with a ping between the fragments): 1007 right after the bad byte.
    """
    first = peer_frame(side, 0x01, b"start ")
    ping = peer_frame(side, 0x89, b"p")
    payload = prefix + b"y" * 300
    cont = peer_frame(side, 0x80, payload)
    conn = Connection(side)
    conn.receive_data(first + ping)
    conn.data_to_send()
    failed_at = feed_until_failed(conn, cont)
    assert failed_at == len(cont) - len(payload) + len(prefix) - 1
    assert_failed_1007(conn)


@pytest.mark.parametrize("side", SIDES)
def test_invalid_sequence_across_fragment_boundary_fails_at_once(side: Side) -> None:
    """
    A sequence started in one fragment and broken by the first byte of the
    next (still incomplete) fragment fails at that byte: the check continues
    from the message's decoder state.
    """
    conn = Connection(side)
    conn.receive_data(peer_frame(side, 0x01, b"euro: \xe2\x82"))
    assert conn.error is None
    cont = peer_frame(side, 0x80, b"(" + b"z" * 50)
    failed_at = feed_until_failed(conn, cont)
    assert failed_at == len(cont) - 51
    assert_failed_1007(conn)


@pytest.mark.parametrize("side", SIDES)
def test_first_fragment_fails_mid_frame(side: Side) -> None:
    """
    A non-final first text fragment is checked mid-frame too.
    """
    payload = b"abc\xfe" + b"q" * 40
    frame = peer_frame(side, 0x01, payload)
    conn = Connection(side)
    assert feed_until_failed(conn, frame) == len(frame) - len(payload) + 3
    assert_failed_1007(conn)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("size", [20, 300, 70000])
def test_valid_multibyte_text_fed_in_small_reads(side: Side, size: int) -> None:
    """
    Valid text whose multibyte characters are split across reads (and
    across the 4-byte masking period) is delivered whole, in an unfragmented
    frame and in a fragmented message; with 16-bit and 64-bit lengths.
    """
    text = ("aé€😀" * size)[:size]
    encoded = text.encode()
    cut = len(encoded) // 2 + 1  # inside a character
    stream = (
        peer_frame(side, 0x81, encoded)
        + peer_frame(side, 0x01, encoded[:cut])
        + peer_frame(side, 0x89, b"")
        + peer_frame(side, 0x80, encoded[cut:])
    )
    conn = Connection(side)
    step = 1 if size < 1000 else 7
    for i in range(0, len(stream), step):
        conn.receive_data(stream[i : i + step])
    assert conn.error is None
    assert [e for e in conn.events_received() if isinstance(e, str)] == [text, text]


@pytest.mark.parametrize("side", SIDES)
def test_every_split_of_a_four_byte_character_passes(side: Side) -> None:
    """
    A frame holding a 4-byte character, cut at every pair of points into
    three reads, gives the message every time; so does a continuation
    frame.
    """
    text = "a😀b€"
    frame = peer_frame(side, 0x81, text.encode())
    for i, j in itertools.combinations(range(len(frame) + 1), 2):
        conn = Connection(side)
        for part in (frame[:i], frame[i:j], frame[j:]):
            conn.receive_data(part)
        assert conn.error is None, (i, j)
        assert conn.events_received() == [text], (i, j)
    first = peer_frame(side, 0x01, "x\U0001f600".encode()[:3])
    cont = peer_frame(side, 0x80, "x\U0001f600".encode()[3:] + "é".encode())
    for i in range(len(cont) + 1):
        conn = Connection(side)
        for part in (first, cont[:i], cont[i:]):
            conn.receive_data(part)
        assert conn.error is None, i
        assert conn.events_received() == ["x\U0001f600é"], i


@pytest.mark.parametrize("side", SIDES)
def test_binary_frames_are_not_checked(side: Side) -> None:
    """
    Binary payloads, in one frame or fragmented, are never UTF-8 checked.
    """
    stream = (
        peer_frame(side, 0x82, b"\xff\xfe" * 40) + peer_frame(side, 0x02, b"\xff") + peer_frame(side, 0x80, b"\xc0")
    )
    conn = Connection(side)
    for i in range(len(stream)):
        conn.receive_data(stream[i : i + 1])
    assert conn.error is None
    assert conn.events_received() == [b"\xff\xfe" * 40, b"\xff\xc0"]


@pytest.mark.parametrize("side", SIDES)
def test_compressed_text_is_checked_once_inflated(side: Side) -> None:
    """
    A compressed text frame's bytes are DEFLATE data, not UTF-8: they are
    not checked mid-frame (they cannot be before inflating), and the
    message is delivered when complete.
    """
    text = "compressed €😀 " * 20
    sender = Deflate(DeflateParameters(), is_server=side is Side.CLIENT)
    payload = sender.compress(text.encode())
    frame = peer_frame(side, 0xC1, payload)
    conn = Connection(side, deflate=Deflate(DeflateParameters(), is_server=side is Side.SERVER))
    for i in range(len(frame)):
        conn.receive_data(frame[i : i + 1])
    assert conn.error is None
    assert conn.events_received() == [text]


def test_frame_after_a_completed_partial_frame_is_checked_afresh() -> None:
    """
    The validation state of a frame that completed does not carry over to
    the next one, even when the next one's header arrives in pieces.
    """
    side = Side.SERVER
    one = peer_frame(side, 0x81, b"\xe2" + b"\x82\xac" + b"a" * 10)
    two = peer_frame(side, 0x81, b"b" * 10 + b"\xff" + b"c" * 10)
    conn = Connection(side)
    conn.receive_data(one[:4])
    conn.receive_data(one[4:] + two[:1])
    conn.receive_data(two[1:8])
    assert conn.events_received() == ["€" + "a" * 10]
    assert conn.error is None
    conn.receive_data(two[8:17])
    assert conn.error is not None and conn.error.closeCode == 1007


# -- close reasons -----------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param("€" * 60, "€" * 41, id="60x3-bytes"),
        pytest.param("😀" * 40, "😀" * 30, id="40x4-bytes"),
        pytest.param("x" * 200, "x" * 123, id="ascii"),
        pytest.param("é" * 70, "é" * 61, id="70x2-bytes"),
        pytest.param("ab" + "€" * 60, "ab" + "€" * 40, id="cut-inside-a-character"),
        pytest.param("short", "short", id="short"),
        pytest.param("€" * 41, "€" * 41, id="exactly-123-bytes"),
    ],
)
def test_long_close_reason_cut_to_123_bytes_on_a_character_boundary(side: Side, reason: str, expected: str) -> None:
    """
    A failure's close reason is cut to at most 123 bytes of UTF-8 (RFC 6455
    §5.5: 125 bytes of payload, 2 for the code), on a character boundary;
    60 three-byte characters no longer raise C{ValueError}.
    """
    conn = Connection(side)
    conn.fail(1011, reason)
    [(code, sent)] = close_frames(conn)
    assert code == 1011
    assert sent == expected
    assert len(sent.encode()) <= 123

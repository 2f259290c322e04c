"""
Tests for L{txpulse.core.connection}: the RFC 6455 rules, limits and the
close handshake, fed as bytes.
"""

from __future__ import annotations

import pytest

from txpulse.core.connection import Close, Connection, Ping, Pong, Side, State
from txpulse.core.exceptions import InvalidPayload, InvalidState, PayloadTooBig, ProtocolError
from txpulse.core.frames import Opcode, encode_frame

from ..support.core import assert_failed, server_with
from ..support.frames import KEY, client_frame, raw_frame

# -- messages --------------------------------------------------------------


def test_text_and_binary_messages() -> None:
    """
    Complete frames come out as C{str} (text) and C{bytes} (binary).
    """
    conn = server_with(client_frame(Opcode.TEXT, "héllo".encode()) + client_frame(Opcode.BINARY, b"\x00\xff"))
    assert conn.events_received() == ["héllo", b"\x00\xff"]
    assert conn.data_to_send() == []


def test_empty_messages() -> None:
    """
    Zero-length text and binary messages are delivered.
    """
    conn = server_with(client_frame(Opcode.TEXT, b"") + client_frame(Opcode.BINARY, b""))
    assert conn.events_received() == ["", b""]


def test_fragmented_message_with_interleaved_control_frames() -> None:
    """
    RFC 6455 §5.4: control frames may arrive between the fragments of a
    message; they are handled at once and the message is reassembled.
    """
    data = (
        client_frame(Opcode.TEXT, b"Hel", fin=False)
        + client_frame(Opcode.PING, b"p1")
        + client_frame(Opcode.CONT, b"lo ", fin=False)
        + client_frame(Opcode.PONG, b"p2")
        + client_frame(Opcode.CONT, "wörld".encode())
    )
    conn = server_with(data)
    assert conn.events_received() == [Ping(b"p1"), Pong(b"p2"), "Hello wörld"]
    assert b"".join(conn.data_to_send()) == encode_frame(Opcode.PONG, b"p1")


def test_fragmented_binary_message() -> None:
    """
    Binary fragments are joined in order.
    """
    data = (
        client_frame(Opcode.BINARY, b"ab", fin=False)
        + client_frame(Opcode.CONT, b"", fin=False)
        + client_frame(Opcode.CONT, b"cd")
    )
    assert server_with(data).events_received() == [b"abcd"]


def test_multibyte_character_split_across_fragments() -> None:
    """
    A UTF-8 sequence may be split between fragments (RFC 6455 §5.6).
    """
    euro = "€".encode()
    data = (
        client_frame(Opcode.TEXT, euro[:1], fin=False)
        + client_frame(Opcode.CONT, euro[1:2], fin=False)
        + client_frame(Opcode.CONT, euro[2:])
    )
    assert server_with(data).events_received() == ["€"]


STREAM = (
    client_frame(Opcode.TEXT, b"hello")
    + client_frame(Opcode.BINARY, bytes(range(256)) * 300)
    + client_frame(Opcode.TEXT, "hé".encode(), fin=False)
    + client_frame(Opcode.PING, b"ping")
    + client_frame(Opcode.CONT, "llo €".encode())
    + client_frame(Opcode.BINARY, b"x" * 200)
    + client_frame(Opcode.CLOSE, b"\x03\xe8bye")
)
EXPECTED = ["hello", bytes(range(256)) * 300, Ping(b"ping"), "héllo €", b"x" * 200, Close(1000, "bye")]


def test_every_split_point_gives_the_same_events() -> None:
    """
    Feeding the stream in two pieces, split at every offset, gives exactly
    the events (and replies) of feeding it whole.
    """
    whole = server_with(STREAM)
    assert whole.events_received() == EXPECTED
    expected_out = b"".join(whole.data_to_send())
    for split in range(len(STREAM) + 1):
        conn = Connection(Side.SERVER)
        conn.receive_data(STREAM[:split])
        conn.receive_data(STREAM[split:])
        assert conn.events_received() == EXPECTED, split
        assert b"".join(conn.data_to_send()) == expected_out, split


def test_byte_by_byte_feeding() -> None:
    """
    One byte at a time gives the same events as the whole stream.
    """
    conn = Connection(Side.SERVER)
    for i in range(len(STREAM)):
        conn.receive_data(STREAM[i : i + 1])
    assert conn.events_received() == EXPECTED


# -- framing rules ---------------------------------------------------------


def test_unmasked_client_frame_fails_with_1002() -> None:
    """
    RFC 6455 §5.1: a server closes on an unmasked frame.
    """
    assert_failed(server_with(raw_frame(0x81, b"hi", masked=False)), 1002)


def test_masked_server_frame_fails_the_client_with_1002() -> None:
    """
    RFC 6455 §5.1: a client closes on a masked frame.
    """
    conn = Connection(Side.CLIENT, mask_key=lambda n: KEY)
    conn.receive_data(raw_frame(0x81, b"hi", masked=True))
    out = b"".join(conn.data_to_send())
    assert out[0] == 0x88 and out[1] & 0x80, "the client's close frame is masked"
    assert conn.error is not None and conn.error.closeCode == 1002


def test_client_reads_unmasked_frames_and_masks_what_it_sends() -> None:
    """
    A client core accepts unmasked server frames and masks its own.
    """
    conn = Connection(Side.CLIENT, mask_key=lambda n: KEY)
    conn.receive_data(raw_frame(0x81, b"Hello", masked=False))
    assert conn.events_received() == ["Hello"]
    conn.send_text("Hello")
    assert conn.data_to_send() == [bytes.fromhex("818537fa213d7f9f4d5158")]


@pytest.mark.parametrize("first_byte", [0xC1, 0xA1, 0x91, 0xF2])
def test_reserved_bits_without_extension_fail_with_1002(first_byte: int) -> None:
    """
    RFC 6455 §5.2: RSV1-3 must be 0 unless an extension was negotiated.
    """
    assert_failed(server_with(raw_frame(first_byte, b"x")), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcodes_fail_with_1002(opcode: int) -> None:
    """
    RFC 6455 §5.2: an unknown opcode fails the connection.
    """
    assert_failed(server_with(raw_frame(0x80 | opcode, b"")), 1002)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_fragmented_control_frame_fails_with_1002(opcode: int) -> None:
    """
    RFC 6455 §5.5: control frames must not be fragmented.
    """
    assert_failed(server_with(raw_frame(opcode, b"")), 1002)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_of_125_bytes_is_accepted_126_fails(opcode: int) -> None:
    """
    RFC 6455 §5.5: control payloads are at most 125 bytes (N and N+1).
    """
    payload = b"\x03\xe8" + b"x" * 123 if opcode == Opcode.CLOSE else b"x" * 125
    conn = server_with(client_frame(opcode, payload))
    assert conn.error is None
    assert_failed(server_with(client_frame(opcode, payload + b"x")), 1002)


def test_continuation_without_start_fails_with_1002() -> None:
    """
    RFC 6455 §5.4: a continuation frame needs a message to continue.
    """
    assert_failed(server_with(client_frame(Opcode.CONT, b"x")), 1002)


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_new_message_inside_fragmented_message_fails_with_1002(opcode: int) -> None:
    """
    RFC 6455 §5.4: fragments of different messages are not interleaved.
    """
    data = client_frame(Opcode.TEXT, b"a", fin=False) + client_frame(opcode, b"b")
    assert_failed(server_with(data), 1002)


def test_64_bit_length_with_top_bit_fails_with_1002() -> None:
    """
    RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0;
    the failure happens on the header, before any payload.
    """
    data = raw_frame(0x82, b"", length_bytes=b"\x7f" + (1 << 63).to_bytes(8, "big"))
    assert_failed(server_with(data, max_message_size=None), 1002)


@pytest.mark.parametrize(
    "length_bytes",
    [b"\x7e\x00\x05", b"\x7e\x00\x7d", b"\x7f" + (5).to_bytes(8, "big"), b"\x7f" + (65535).to_bytes(8, "big")],
)
def test_non_minimal_lengths_fail_with_1002(length_bytes: bytes) -> None:
    """
    RFC 6455 §5.2 requires the minimal length encoding; txpulse (like
    wsproto) treats anything else as a protocol error.
    """
    n = int.from_bytes(length_bytes[1:], "big")
    assert_failed(server_with(raw_frame(0x82, b"x" * n, length_bytes=length_bytes)), 1002)


# -- limits ------------------------------------------------------------------


def test_message_size_limit_at_n_and_n_plus_1() -> None:
    """
    A message of exactly C{max_message_size} is delivered; one more byte
    fails with 1009.
    """
    assert server_with(client_frame(Opcode.BINARY, b"x" * 1000), max_message_size=1000).events_received() == [
        b"x" * 1000
    ]
    assert_failed(server_with(client_frame(Opcode.BINARY, b"x" * 1001), max_message_size=1000), 1009)


def test_message_size_limit_counts_across_fragments() -> None:
    """
    The limit applies to the sum of the fragments: 600 + 400 passes,
    600 + 401 fails with 1009 as soon as the second header arrives.
    """
    ok = client_frame(Opcode.TEXT, b"a" * 600, fin=False) + client_frame(Opcode.CONT, b"b" * 400)
    assert server_with(ok, max_message_size=1000).events_received() == ["a" * 600 + "b" * 400]
    conn = Connection(Side.SERVER, max_message_size=1000)
    conn.receive_data(client_frame(Opcode.TEXT, b"a" * 600, fin=False))
    conn.receive_data(client_frame(Opcode.CONT, b"b" * 401)[:8])  # the header alone
    assert isinstance(conn.error, PayloadTooBig)
    assert_failed(conn, 1009)


def test_oversized_frame_fails_before_the_payload_arrives() -> None:
    """
    A header announcing a 1 GiB frame fails at once with 1009: the payload
    is never buffered.
    """
    header = raw_frame(0x82, b"", length_bytes=b"\x7f" + (1 << 30).to_bytes(8, "big"))
    conn = server_with(header)
    assert_failed(conn, 1009)


def test_frame_size_limit_at_n_and_n_plus_1() -> None:
    """
    C{max_frame_size} bounds each frame separately from the message limit.
    """
    ok = client_frame(Opcode.TEXT, b"a" * 100, fin=False) + client_frame(Opcode.CONT, b"b" * 100)
    assert server_with(ok, max_frame_size=100).events_received() == ["a" * 100 + "b" * 100]
    assert_failed(server_with(client_frame(Opcode.TEXT, b"a" * 101), max_frame_size=100), 1009)


def test_unlimited_message_size() -> None:
    """
    C{max_message_size=None} accepts any size.
    """
    big = b"x" * (2 << 20)
    assert server_with(client_frame(Opcode.BINARY, big), max_message_size=None).events_received() == [big]


# -- UTF-8 -------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xce"])
def test_invalid_utf8_text_fails_with_1007(payload: bytes) -> None:
    """
    RFC 6455 §8.1: a text message that is not UTF-8 fails with 1007,
    including a truncated sequence at the end of the message.
    """
    conn = server_with(client_frame(Opcode.TEXT, payload))
    assert isinstance(conn.error, InvalidPayload)
    assert_failed(conn, 1007)


@pytest.mark.parametrize("bad_prefix", [b"\xff", b"ok\xed\xa0", b"\xf4\x90", b"\xc0"])
def test_invalid_utf8_in_first_fragment_fails_fast(bad_prefix: bytes) -> None:
    """
    Invalid bytes in the first fragment close the connection before the
    rest of the message arrives.
    """
    conn = server_with(client_frame(Opcode.TEXT, bad_prefix, fin=False))
    assert_failed(conn, 1007)


def test_incomplete_sequence_at_fragment_end_is_not_an_error() -> None:
    """
    A fragment may end inside a character; only the final fragment must
    complete it.
    """
    conn = server_with(client_frame(Opcode.TEXT, b"\xe2\x82", fin=False))
    assert conn.error is None
    conn.receive_data(client_frame(Opcode.CONT, b"\xac"))
    assert conn.events_received() == ["€"]


# -- ping / pong ---------------------------------------------------------------


def test_ping_is_answered_with_identical_pong() -> None:
    """
    RFC 6455 §5.5.2: a pong echoes the ping's payload.
    """
    conn = server_with(client_frame(Opcode.PING, b"abc"))
    assert conn.events_received() == [Ping(b"abc")]
    assert conn.data_to_send() == [encode_frame(Opcode.PONG, b"abc")]


def test_send_ping_and_pong_validate_payload_size() -> None:
    """
    A local ping or pong over 125 bytes is refused (local misuse raises).
    """
    conn = Connection(Side.SERVER)
    conn.send_ping(b"x" * 125)
    with pytest.raises(ValueError):
        conn.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        conn.send_pong(b"x" * 126)


# -- close handshake -----------------------------------------------------------


def test_peer_close_is_echoed_and_server_closes_tcp() -> None:
    """
    RFC 6455 §5.5.1, §7.1.1: the server echoes the close code, then closes
    the TCP connection itself.
    """
    conn = server_with(client_frame(Opcode.CLOSE, b"\x0f\xa0app"))
    assert conn.events_received() == [Close(4000, "app")]
    assert conn.close_received == Close(4000, "app")
    assert conn.data_to_send() == [encode_frame(Opcode.CLOSE, b"\x0f\xa0")]
    assert conn.state is State.CLOSED
    assert conn.should_close_transport()
    assert conn.error is None


def test_empty_close_is_answered_with_empty_close() -> None:
    """
    A close without a code reports 1005 and is answered without a code.
    """
    conn = server_with(client_frame(Opcode.CLOSE, b""))
    assert conn.close_received == Close(1005, "")
    assert conn.data_to_send() == [encode_frame(Opcode.CLOSE, b"")]


def test_client_waits_for_server_to_close_tcp() -> None:
    """
    RFC 6455 §7.1.1: after the close handshake a client does not close TCP
    first; the server does.
    """
    conn = Connection(Side.CLIENT, mask_key=lambda n: KEY)
    conn.receive_data(raw_frame(0x88, b"\x03\xe8", masked=False))
    assert conn.close_expected()
    assert conn.data_to_send()[0][0] == 0x88
    assert conn.state is State.CLOSED
    assert not conn.should_close_transport()
    assert conn.close_expected()


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_code_fails_with_1002(code: int) -> None:
    """
    RFC 6455 §7.4: a received close with a reserved or out-of-range code is
    a protocol error.
    """
    assert_failed(server_with(client_frame(Opcode.CLOSE, code.to_bytes(2, "big"))), 1002)


def test_one_byte_close_payload_fails_with_1002() -> None:
    """
    RFC 6455 §5.5.1: a close body starts with a 2-byte code.
    """
    assert_failed(server_with(client_frame(Opcode.CLOSE, b"\x03")), 1002)


def test_close_reason_not_utf8_fails_with_1002() -> None:
    """
    A close reason that is not UTF-8 fails the connection with 1002.
    """
    assert_failed(server_with(client_frame(Opcode.CLOSE, b"\x03\xe8\xff")), 1002)


def test_local_close_then_peer_reply_completes_handshake() -> None:
    """
    After L{Connection.send_close} the state is CLOSING; data still arrives
    (RFC 6455 §1.4) and the peer's close completes the handshake.
    """
    conn = Connection(Side.SERVER)
    conn.send_close(1001, "going")
    assert conn.data_to_send() == [encode_frame(Opcode.CLOSE, b"\x03\xe9going")]
    assert conn.state is State.CLOSING and conn.close_expected()
    conn.receive_data(client_frame(Opcode.TEXT, b"late") + client_frame(Opcode.CLOSE, b"\x03\xe9"))
    assert conn.events_received() == ["late", Close(1001, "")]
    assert conn.data_to_send() == [], "a close reply is not answered again"
    assert conn.state is State.CLOSED and conn.should_close_transport()


def test_ping_while_closing_is_not_answered() -> None:
    """
    After our close frame no other frame goes out (RFC 6455 §5.5.1).
    """
    conn = Connection(Side.SERVER)
    conn.send_close()
    conn.data_to_send()
    conn.receive_data(client_frame(Opcode.PING, b"x"))
    assert conn.data_to_send() == []


def test_messages_before_a_close_can_still_be_answered() -> None:
    """
    The echo of the peer's close waits for the next C{data_to_send()}, so
    answers to messages that arrived with it go out before it (RFC 6455
    §5.5.1 allows the delay); afterwards sending is refused.
    """
    conn = server_with(client_frame(Opcode.TEXT, b"question") + client_frame(Opcode.CLOSE, b"\x03\xe8"))
    assert conn.events_received() == ["question", Close(1000, "")]
    assert conn.can_send()
    conn.send_text("answer")
    assert conn.data_to_send() == [encode_frame(Opcode.TEXT, b"answer"), encode_frame(Opcode.CLOSE, b"\x03\xe8")]
    assert not conn.can_send()
    with pytest.raises(InvalidState):
        conn.send_text("too late")


def test_local_close_answering_a_pending_peer_close() -> None:
    """
    Closing while the peer's close awaits its echo sends our close (with our
    code) as the reply and completes the handshake.
    """
    conn = server_with(client_frame(Opcode.CLOSE, b"\x03\xe8"))
    conn.send_close(4001, "mine")
    assert conn.data_to_send() == [encode_frame(Opcode.CLOSE, b"\x0f\xa1mine")]
    assert conn.state is State.CLOSED and conn.should_close_transport()


def test_frames_after_close_are_discarded() -> None:
    """
    Nothing after the peer's close frame is processed.
    """
    conn = server_with(client_frame(Opcode.CLOSE, b"\x03\xe8") + client_frame(Opcode.TEXT, b"after"))
    assert conn.events_received() == [Close(1000, "")]


def test_sending_after_close_raises_invalid_state() -> None:
    """
    Local misuse raises at once.
    """
    conn = Connection(Side.SERVER)
    conn.send_close()
    for send in (
        lambda: conn.send_text("x"),
        lambda: conn.send_binary(b"x"),
        lambda: conn.send_ping(),
        lambda: conn.send_close(),
    ):
        with pytest.raises(InvalidState):
            send()


def test_send_close_validates_code() -> None:
    """
    Unsendable codes are refused before anything is queued.
    """
    conn = Connection(Side.SERVER)
    with pytest.raises(ValueError):
        conn.send_close(1006)
    assert conn.state is State.OPEN and conn.data_to_send() == []


def test_local_fail_sends_1011_and_closes() -> None:
    """
    L{Connection.fail} (an application error) sends 1011 with no reason and
    asks for the transport to close.
    """
    conn = Connection(Side.SERVER)
    conn.fail()
    assert conn.data_to_send() == [encode_frame(Opcode.CLOSE, b"\x03\xf3")]
    assert conn.should_close_transport()


def test_eof_without_close_is_abnormal() -> None:
    """
    TCP closing without a close frame leaves C{close_received} empty
    (reported as 1006 by the I/O layer).
    """
    conn = Connection(Side.SERVER)
    conn.receive_data(client_frame(Opcode.TEXT, b"partial")[:4])
    conn.receive_eof()
    assert conn.state is State.CLOSED and conn.close_received is None


def test_protocol_error_is_stored_not_raised() -> None:
    """
    Peer misbehaviour never raises out of the core.
    """
    conn = server_with(b"\x81\x05hello")
    assert isinstance(conn.error, ProtocolError)


def test_send_frame_bytes_broadcasts_a_preencoded_frame() -> None:
    """
    A frame encoded once can be queued on many server connections.
    """
    frame = encode_frame(Opcode.TEXT, b"news")
    conns = [Connection(Side.SERVER) for _ in range(3)]
    for conn in conns:
        conn.send_frame_bytes(frame)
        assert conn.data_to_send() == [frame]
    client = Connection(Side.CLIENT)
    with pytest.raises(InvalidState):
        client.send_frame_bytes(frame)


def test_large_payload_is_queued_without_concatenation() -> None:
    """
    Large server payloads go out as header + payload chunks (no copy).
    """
    conn = Connection(Side.SERVER)
    conn.send_binary(b"x" * 100_000)
    out = conn.data_to_send()
    assert b"".join(out) == encode_frame(Opcode.BINARY, b"x" * 100_000)
    assert len(out) == 2

"""
Tests for L{txpulse.core.frames}: serialization, masking, close payloads.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txpulse.core import frames
from txpulse.core.frames import CloseCode, Opcode, apply_mask, encode_close_payload, encode_frame, is_valid_close_code

KEY = b"\x37\xfa\x21\x3d"


def test_rfc_unmasked_text_hello() -> None:
    """
    RFC 6455 §5.7: a single-frame unmasked text message "Hello".
    """
    assert encode_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")


def test_rfc_masked_text_hello() -> None:
    """
    RFC 6455 §5.7: a single-frame masked text message "Hello".
    """
    assert encode_frame(Opcode.TEXT, b"Hello", mask_key=KEY) == bytes.fromhex("818537fa213d7f9f4d5158")


def test_rfc_fragmented_unmasked_text() -> None:
    """
    RFC 6455 §5.7: "Hel" then "lo" as two fragments.
    """
    assert encode_frame(Opcode.TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert encode_frame(Opcode.CONT, b"lo") == bytes.fromhex("80026c6f")


def test_rfc_masked_pong() -> None:
    """
    RFC 6455 §5.7: a masked pong carrying "Hello".
    """
    assert encode_frame(Opcode.PONG, b"Hello", mask_key=KEY) == bytes.fromhex("8a8537fa213d7f9f4d5158")


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "8200"),
        (125, "827d"),
        (126, "827e007e"),
        (256, "827e0100"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
    ],
)
def test_lengths_use_the_minimal_encoding(size: int, header: str) -> None:
    """
    7-, 16- and 64-bit lengths switch exactly at 126 and 65536 (RFC 6455
    §5.2; the 256 and 65536 cases are §5.7's examples).
    """
    frame = encode_frame(Opcode.BINARY, b"\0" * size)
    assert frame[: len(header) // 2] == bytes.fromhex(header)
    assert len(frame) == len(header) // 2 + size


def test_rsv1_and_fin_bits() -> None:
    """
    RSV1 sets 0x40 and a non-final frame clears 0x80.
    """
    assert encode_frame(Opcode.TEXT, b"", rsv1=True)[0] == 0xC1
    assert encode_frame(Opcode.BINARY, b"", fin=False)[0] == 0x02


@given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
def test_mask_is_its_own_inverse_and_matches_bytewise_xor(data: bytes, key: bytes) -> None:
    """
    Masking twice gives the input back, and equals the RFC 6455 §5.3
    definition (octet i XOR key[i mod 4]) on both the Python and native paths.
    """
    masked = apply_mask(data, key)
    assert masked == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask(masked, key) == data


def test_native_and_python_masks_agree_on_large_payloads() -> None:
    """
    Payloads past the native threshold (autobahn.nvx) give the same bytes
    as the pure-Python masker.
    """
    data = os.urandom(100_000)
    assert frames._nvx_lib is not None, "autobahn's native masker should be importable"
    assert apply_mask(data, KEY) == frames._mask_python(data, KEY)
    assert apply_mask(memoryview(data)[3:], KEY) == frames._mask_python(data[3:], KEY)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes(code: int) -> None:
    """
    Defined codes and the 3000-4999 range are valid on the wire.
    """
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    """
    Reserved (1004), never-on-the-wire (1005, 1006, 1015), undefined and
    out-of-range codes are invalid (RFC 6455 §7.4).
    """
    assert not is_valid_close_code(code)


def test_close_payload_encoding() -> None:
    """
    A close payload is the 2-byte code then the UTF-8 reason; no code gives
    an empty payload.
    """
    assert encode_close_payload(1000, "bye") == b"\x03\xe8bye"
    assert encode_close_payload(None) == b""
    assert encode_close_payload(CloseCode.NO_STATUS_RCVD) == b""


@pytest.mark.parametrize("code", [1005, 1006, 1015, 999, 5000])
def test_close_payload_refuses_unsendable_codes(code: int) -> None:
    """
    Codes that must not be sent raise L{ValueError} (local misuse).
    """
    if code == 1005:
        with pytest.raises(ValueError):
            encode_close_payload(code, "reason without a code")
    else:
        with pytest.raises(ValueError):
            encode_close_payload(code)


def test_close_reason_limit_is_123_bytes() -> None:
    """
    A control frame carries 125 bytes, so the reason has at most 123.
    """
    assert len(encode_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(ValueError):
        encode_close_payload(1000, "x" * 124)
    with pytest.raises(ValueError):
        encode_close_payload(1000, "é" * 62)

"""
Hostile frames shared by the suites that send them: every RFC 6455 framing
violation with the close code it must get (L{VIOLATIONS}), and close-frame
payloads that must get 1002 (L{BAD_CLOSES}); sent over TCP by
C{tests/hardening/test_hostile_frames.py} and inside an HTTP/2 stream by
C{tests/http2/test_frames_over_h2.py}.
"""

from __future__ import annotations

import pytest

from .frames import close_payload, raw_frame

VIOLATIONS = [
    pytest.param(raw_frame(0x81, b"hello", masked=False), 1002, id="unmasked-text"),
    pytest.param(raw_frame(0x89, b"", masked=False), 1002, id="unmasked-ping"),
    pytest.param(raw_frame(0x83, b"x"), 1002, id="opcode-0x3"),
    pytest.param(raw_frame(0x87, b"x"), 1002, id="opcode-0x7"),
    pytest.param(raw_frame(0x8B, b"x"), 1002, id="opcode-0xB"),
    pytest.param(raw_frame(0x8F, b""), 1002, id="opcode-0xF"),
    pytest.param(raw_frame(0xC1, b"x"), 1002, id="rsv1-without-extension"),
    pytest.param(raw_frame(0xA1, b"x"), 1002, id="rsv2"),
    pytest.param(raw_frame(0x91, b"x"), 1002, id="rsv3"),
    pytest.param(raw_frame(0x09, b"ping"), 1002, id="fragmented-ping"),
    pytest.param(raw_frame(0x08, close_payload(1000)), 1002, id="fragmented-close"),
    pytest.param(raw_frame(0x0A, b""), 1002, id="fragmented-pong"),
    pytest.param(raw_frame(0x89, b"p" * 126), 1002, id="ping-126-bytes"),
    pytest.param(raw_frame(0x8A, b"p" * 126), 1002, id="pong-126-bytes"),
    pytest.param(raw_frame(0x88, close_payload(1000, "r" * 124)), 1002, id="close-126-bytes"),
    pytest.param(raw_frame(0x80, b"orphan"), 1002, id="continuation-without-start"),
    pytest.param(raw_frame(0x00, b"orphan"), 1002, id="unfinished-continuation-without-start"),
    pytest.param(raw_frame(0x01, b"first") + raw_frame(0x81, b"second"), 1002, id="text-inside-text"),
    pytest.param(raw_frame(0x02, b"first") + raw_frame(0x01, b"second"), 1002, id="text-inside-binary"),
    pytest.param(
        raw_frame(0x82, b"x" * 10, length_bytes=bytes((127,)) + ((1 << 63) | 10).to_bytes(8, "big")),
        1002,
        id="64-bit-length-top-bit",
    ),
    pytest.param(
        raw_frame(0x82, b"x" * 5, length_bytes=bytes((126,)) + (5).to_bytes(2, "big")), 1002, id="16-bit-length-5"
    ),
    pytest.param(
        raw_frame(0x82, b"x" * 125, length_bytes=bytes((126,)) + (125).to_bytes(2, "big")), 1002, id="16-bit-length-125"
    ),
    pytest.param(
        raw_frame(0x82, b"x" * 200, length_bytes=bytes((127,)) + (200).to_bytes(8, "big")), 1002, id="64-bit-length-200"
    ),
    pytest.param(
        raw_frame(0x82, b"x" * 65535, length_bytes=bytes((127,)) + (65535).to_bytes(8, "big")),
        1002,
        id="64-bit-length-65535",
    ),
    pytest.param(
        raw_frame(0x89, b"", length_bytes=bytes((126,)) + (0).to_bytes(2, "big")), 1002, id="ping-16-bit-length-0"
    ),
    pytest.param(
        raw_frame(0x82, b"", length_bytes=bytes((127,)) + (1 << 40).to_bytes(8, "big")), 1009, id="declared-1-TiB-frame"
    ),
    pytest.param(raw_frame(0x81, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007, id="invalid-utf8"),
]


BAD_CLOSES = [
    *(
        pytest.param(close_payload(code), id=f"code-{code}")
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    ),
    pytest.param(b"\x03", id="1-byte-payload"),
    pytest.param(b"\x03\xe8\xff\xfe", id="reason-not-utf8"),
    pytest.param(b"\x03\xe8\xed\xa0\x80", id="reason-surrogate"),
]

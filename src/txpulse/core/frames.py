# -*- test-case-name: tests.core.test_frames -*-
"""
RFC 6455 §5 framing: opcodes, close codes, masking and frame serialization.

Parsing lives in L{txpulse.core.connection}, next to the state it validates
against (fragmentation, limits, negotiated extensions); this module holds the
pure, stateless pieces both directions share.

Wire layout (RFC 6455 §5.2)::

     0                   1                   2                   3
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Masking-key, if MASK set to 1 (4 bytes)   |  Payload ...  |
    +-----------------------------------------------+---------------+
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

__all__ = [
    "Opcode",
    "CloseCode",
    "apply_mask",
    "encode_frame",
    "encode_close_payload",
    "is_valid_close_code",
    "is_sendable_close_code",
    "MAX_CONTROL_PAYLOAD",
]

#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD = 125

#: Payloads at least this long are masked by autobahn's C XOR masker when it is
#: installed; below it the pure-Python big-int XOR is faster (measured: the
#: two cross near 300 bytes on this project's reference machine).
NATIVE_MASK_THRESHOLD = 512


class Opcode(IntEnum):
    """
    Frame opcodes (RFC 6455 §5.2, §11.8).
    """

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """
    Close status codes (RFC 6455 §7.4.1 and the IANA registry).
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


#: Codes in 1000-2999 a peer may put on the wire (RFC 6455 §7.4.1 plus the
#: IANA registry's 1012-1014). 1004 is reserved; 1005, 1006 and 1015 "MUST NOT
#: be set as a status code in a Close control frame by an endpoint".
_WIRE_CODES_BELOW_3000 = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def is_valid_close_code(code: int) -> bool:
    """
    Whether C{code} may appear in a received close frame.

    RFC 6455 §7.4.2: codes below 1000 are unused; 1000-2999 are reserved for
    the protocol (only the defined ones are valid); 3000-4999 belong to
    libraries, frameworks and applications.
    """
    return code in _WIRE_CODES_BELOW_3000 or 3000 <= code <= 4999


#: A local endpoint may send exactly the codes a peer may send.
is_sendable_close_code = is_valid_close_code


def _mask_python(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """
    XOR C{data} with the repeating 4-byte C{key} using one big-int XOR.
    """
    n = len(data)
    if n == 0:
        return b""
    keystream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")).to_bytes(n, "little")


_nvx_ffi: Any = None
_nvx_lib: Any = None
try:  # autobahn's C masker (SSE2): ~40x faster than Python past a few KiB.
    import _nvx_xormasker  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - autobahn is a declared dependency
    pass
else:
    _nvx_ffi, _nvx_lib = _nvx_xormasker.ffi, _nvx_xormasker.lib


def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """
    Mask or unmask C{data} with the 4-byte masking C{key} (RFC 6455 §5.3).

    Masking is its own inverse. Large payloads use autobahn's C masker when
    it is importable; small ones (and every payload without it) use a pure
    Python big-int XOR, which is faster below L{NATIVE_MASK_THRESHOLD} bytes.
    """
    n = len(data)
    if n < NATIVE_MASK_THRESHOLD or _nvx_lib is None:
        return _mask_python(data, key)
    # One copy, masked in place: bytes(memoryview(...)) always builds a new
    # object, which nothing else references until it is returned (the
    # usual way, bytearray then bytes(), copies a large payload twice).
    buf = bytes(memoryview(data))
    masker = _nvx_lib.nvx_xormask_new(key)
    try:
        _nvx_lib.nvx_xormask_set_impl(masker, 2)  # SSE2 where available
        _nvx_lib.nvx_xormask_process(masker, _nvx_ffi.from_buffer(buf), n)
    finally:
        _nvx_lib.nvx_xormask_free(masker)
    return buf


_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def encode_header(first_byte: int, length: int, mask_bit: int = 0) -> bytes:
    """
    Encode a frame header without the masking key.

    @param first_byte: FIN, RSV bits and opcode, already combined.
    @param length: the payload length; always encoded minimally
        (RFC 6455 §5.2: "the minimal number of bytes MUST be used").
    @param mask_bit: C{0x80} for a masked (client) frame, else C{0}.
    """
    if length < 126:
        return bytes((first_byte, mask_bit | length))
    if length < 0x10000:
        return _pack_short(first_byte, mask_bit | 126, length)
    return _pack_long(first_byte, mask_bit | 127, length)


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask_key: bytes | None = None,
) -> bytes:
    """
    Serialize one frame.

    Server frames are unmasked, so the same bytes can be written to every
    receiver of a broadcast. Client frames pass the 4-byte C{mask_key}.

    @param opcode: the frame's opcode.
    @param payload: the (unmasked) payload.
    @param fin: whether this frame ends its message.
    @param rsv1: set RSV1 (permessage-deflate's "compressed" flag).
    @param mask_key: the masking key for a client frame, or C{None}.
    """
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if mask_key is None:
        return encode_header(first, len(payload)) + payload
    return encode_header(first, len(payload), 0x80) + mask_key + apply_mask(payload, mask_key)


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """
    Build a close frame's payload: the 2-byte code then the UTF-8 reason.

    C{None} (or 1005, "no status received") gives an empty payload.

    @raise ValueError: for a code that must not be sent, or a reason that
        does not fit in a control frame (123 bytes of UTF-8).
    """
    if code is None or code == CloseCode.NO_STATUS_RCVD:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_sendable_close_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError("close reason longer than 123 bytes of UTF-8")
    return code.to_bytes(2, "big") + encoded

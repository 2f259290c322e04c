"""
Frames by hand: what a client sends (masked with a fixed key, so frames are
reproducible byte for byte), malformed frames, close payloads, and what a
server wrote parsed with wsproto's frame parser as the oracle.
"""

from __future__ import annotations

from wsproto.frame_protocol import Frame, FrameProtocol

from txpulse.core.frames import encode_frame

#: A fixed masking key, so frames are reproducible byte for byte.
KEY = b"\x37\xfa\x21\x3d"


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False, key: bytes = KEY) -> bytes:
    """
    A masked frame as a client sends it.
    """
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask_key=key)


def mask(payload: bytes, key: bytes = KEY) -> bytes:
    """
    C{payload} XORed with C{key} (RFC 6455 §5.3), by hand: independent of
    txpulse, and fast enough for multi-megabyte payloads.
    """
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def raw_frame(
    first_byte: int, payload: bytes = b"", *, masked: bool = True, length_bytes: bytes | None = None, key: bytes = KEY
) -> bytes:
    """
    Hand-build a frame, possibly malformed: any first byte, any length
    encoding (C{length_bytes} replaces the length field, including the 7-bit
    part), masked with C{key} or not.
    """
    mask_bit = 0x80 if masked else 0
    if length_bytes is None:
        n = len(payload)
        if n < 126:
            length_bytes = bytes((n,))
        elif n < 65536:
            length_bytes = bytes((126,)) + n.to_bytes(2, "big")
        else:
            length_bytes = bytes((127,)) + n.to_bytes(8, "big")
    head = bytes((first_byte, length_bytes[0] | mask_bit)) + length_bytes[1:]
    if not masked:
        return head + payload
    return head + key + mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    """
    The payload of a close frame: the code, then the UTF-8 reason.
    """
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def server_frames(data: bytes) -> list[Frame]:
    """
    Parse what a server wrote, with wsproto's frame parser as the oracle.
    """
    parser = FrameProtocol(client=True, extensions=[])
    parser.receive_bytes(data)
    return list(parser.received_frames())

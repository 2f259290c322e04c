"""
permessage-deflate payloads built with C{zlib} alone, independently of
txpulse's codec.
"""

from __future__ import annotations

import zlib

#: RFC 7692 §7.2.1: the tail a sender strips and a receiver appends.
TAIL = b"\x00\x00\xff\xff"

MIB = 1 << 20


def gigabyte_bomb() -> bytes:
    """
    A permessage-deflate payload that inflates to exactly 1 GiB of zeros.

    DEFLATE cannot do better than about 1032:1 (a 258-byte match per 2
    bits), so 1 GiB needs about 1 MiB of compressed data; it is built from
    4 MiB pieces so this test never holds (or compresses) the gigabyte:
    the compressor is primed with zeros, then one more 4 MiB of zeros is
    compressed and ends in a sync flush. Such a piece starts and ends on a
    byte boundary and only refers back into zeros, so it can be repeated.
    """
    piece_size = 4 * MIB
    zeros = bytes(piece_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    piece = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert piece == again, "the repeated piece is not stable"
    # Check the building blocks with a real inflater (8 MiB, not 1 GiB).
    check = zlib.decompressobj(-15)
    assert check.decompress(first + piece) == bytes(2 * piece_size)
    stream = first + piece * ((1 << 30) // piece_size - 1)
    assert stream.endswith(TAIL)
    return stream[:-4]

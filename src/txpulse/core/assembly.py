# -*- test-case-name: tests.core.test_connection,tests.core.test_deflate -*-
"""
Message assembly: one data message that arrives in several frames, or
compressed with permessage-deflate, turned back into a C{str} or C{bytes}.

L{txpulse.core.connection.Connection} parses frames and checks their headers;
it hands the payloads of such a message, in order, to a L{MessageAssembler}
that lives only while that message is incomplete. A message in one
uncompressed frame (the common case) never gets one: the parser delivers it
itself.
"""

from __future__ import annotations

import zlib

from ..exceptions import InvalidPayload, PayloadTooBig
from .deflate import Deflate
from .utf8 import Utf8Decoder

__all__ = ["MessageAssembler"]


class MessageAssembler:
    """
    One text or binary message being received, fragment by fragment
    (RFC 6455 §5.4), inflated when it is compressed (RFC 7692 §7.2.2).

    The frame headers were already validated by the connection (opcodes,
    interleaving, the wire size against the limits); what is checked here is
    what only the payloads tell: UTF-8 validity of a text message, the
    compressed data and the decompressed size. A violation raises, and the
    connection fails with the exception's close code (1007 or 1009).

    @ivar size: the payload bytes received so far, as sent on the wire
        (compressed, for a compressed message); the connection checks each
        continuation frame's length against C{max_message_size} with it.
    """

    __slots__ = ("size", "_parts", "_decoder", "_deflate", "_inflated", "_max_size")

    def __init__(self, text: bool, max_size: int, deflate: Deflate | None = None) -> None:
        """
        @param text: whether this is a text message (validated as UTF-8).
        @param max_size: the most bytes the message may inflate to.
        @param deflate: the permessage-deflate codec when this message is
            compressed (RSV1 set on its first frame), else C{None}.
        """
        self.size = 0
        self._parts = bytearray()
        # Fail fast (RFC 6455 §8.1): the fragment that breaks UTF-8 ends the
        # connection, the rest of the message is never buffered.
        self._decoder = Utf8Decoder() if text else None
        self._deflate = deflate
        self._inflated = 0
        self._max_size = max_size

    def receive(self, payload: bytes, fin: bool) -> str | bytes | None:
        """
        Add one fragment's payload.

        @param fin: whether this is the message's last fragment.
        @return: the whole message on its last fragment (C{str} for text,
            C{bytes} for binary), else C{None}.
        @raise PayloadTooBig: when the message inflates past C{max_size}.
        @raise InvalidPayload: for invalid compressed data, or as soon as a
            text message cannot be valid UTF-8.
        """
        self.size += len(payload)
        deflate = self._deflate
        if deflate is not None:
            # The decompressed size counts against max_size while inflating,
            # so a small frame cannot make us allocate a huge one.
            try:
                payload = deflate.decompress(payload, fin, self._max_size - self._inflated)
            except OverflowError:
                raise PayloadTooBig("decompressed message too big") from None
            except zlib.error:
                raise InvalidPayload("invalid compressed data") from None
            self._inflated += len(payload)
        parts = self._parts
        decoder = self._decoder
        if decoder is not None:
            try:
                decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise InvalidPayload("invalid UTF-8 in a text message") from None
            parts += payload
            return parts.decode("utf-8") if fin else None
        parts += payload
        return bytes(parts) if fin else None

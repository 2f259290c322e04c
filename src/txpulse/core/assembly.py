# -*- test-case-name: tests.core.test_connection,tests.core.test_deflate -*-
"""
Message assembly: one data message that arrives in several frames, or
compressed with permessage-deflate, turned back into a C{str} or C{bytes}.

L{txpulse.core.connection.Connection} parses frames and checks their headers;
it hands the payloads of such a message, in order, to a L{MessageAssembler}
that lives only while that message is incomplete. A message in one
uncompressed frame (the common case) never gets one: the parser delivers it
itself.

What incomplete messages hold is bounded twice: each one by
C{max_message_size} (after inflating), and all of them together, across every
connection that shares an L{AssemblyBudget}, by that budget's limit. The
first bound alone is not enough: one compressed fragment of 1 KiB may inflate
to a whole 1 MiB message, and a thousand connections that each send one such
first fragment and never the rest would make the server hold 1 GiB for the
200 KiB they sent.
"""

from __future__ import annotations

import zlib

from .deflate import Deflate
from .exceptions import InvalidPayload, PayloadTooBig
from .utf8 import Utf8Decoder

__all__ = ["AssemblyBudget", "MessageAssembler", "OverBudget", "DEFAULT_MAX_INCOMPLETE_SIZE"]

#: 64 MiB: what the incomplete messages of a server's connections may hold
#: together by default; 64 messages of the default 1 MiB maximum at once.
DEFAULT_MAX_INCOMPLETE_SIZE = 64 << 20


class OverBudget(Exception):
    """
    Holding one more fragment would take the incomplete messages of every
    connection sharing an L{AssemblyBudget} past its limit. The connection
    fails with 1013 ("Try Again Later"): the server is short of memory for
    now, the message itself broke no limit.
    """


class AssemblyBudget:
    """
    The most bytes the incomplete messages of several connections may hold
    together: a limit and a counter, shared by every connection of a server
    (one per process, ideally).

    A L{MessageAssembler} charges it, as its buffer grows, with what it
    buffers (the I{inflated} bytes of a compressed message, the received
    bytes of an uncompressed one: those cost an attacker as much as they cost
    us, but a thousand connections holding 1 MiB each are still 1 GiB), and
    releases the charge when the message completes or the connection ends.
    A message that arrives in one call (one frame, compressed or not) is never
    charged: it is not held across reads.

    @ivar limit: the most bytes that may be held at once.
    @ivar used: the bytes held now.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        """
        @param limit: the most bytes the incomplete messages may hold
            together; positive.
        @raise ValueError: when C{limit} is not positive.
        """
        if limit <= 0:
            raise ValueError("the budget must be positive")
        self.limit = limit
        self.used = 0

    def charge(self, size: int) -> bool:
        """
        Take C{size} bytes out of the budget, if they fit.

        @return: whether they did (when not, nothing was taken).
        """
        used = self.used + size
        if used > self.limit:
            return False
        self.used = used
        return True

    def release(self, size: int) -> None:
        """
        Give back C{size} bytes taken with L{charge}.
        """
        self.used -= size


class MessageAssembler:
    """
    One text or binary message being received, fragment by fragment
    (RFC 6455 §5.4), inflated when it is compressed (RFC 7692 §7.2.2).

    The frame headers were already validated by the connection (opcodes,
    interleaving, the wire size against the limits); what is checked here is
    what only the payloads tell: UTF-8 validity of a text message, the
    compressed data and the decompressed size. A violation raises, and the
    connection fails with the exception's close code (1007 or 1009).

    When it shares an L{AssemblyBudget}, every fragment that leaves the
    message incomplete charges it with what it added to the buffer; the
    charge is given back by L{receive} on the last fragment, or by L{release}
    when the message will never complete (the connection failed or ended).

    @ivar size: the payload bytes received so far, as sent on the wire
        (compressed, for a compressed message); the connection checks each
        continuation frame's length against C{max_message_size} with it.
    """

    __slots__ = ("size", "_parts", "_decoder", "_deflate", "_inflated", "_max_size", "_budget")

    def __init__(
        self, text: bool, max_size: int, deflate: Deflate | None = None, budget: AssemblyBudget | None = None
    ) -> None:
        """
        @param text: whether this is a text message (validated as UTF-8).
        @param max_size: the most bytes the message may inflate to.
        @param deflate: the permessage-deflate codec when this message is
            compressed (RSV1 set on its first frame), else C{None}.
        @param budget: the budget shared with other connections, or C{None}
            for no bound beyond C{max_size}.
        """
        self.size = 0
        self._parts = bytearray()
        # Fail fast (RFC 6455 §8.1): the fragment that breaks UTF-8 ends the
        # connection, the rest of the message is never buffered.
        self._decoder = Utf8Decoder() if text else None
        self._deflate = deflate
        self._inflated = 0
        self._max_size = max_size
        self._budget = budget

    def receive(self, payload: bytes, fin: bool) -> str | bytes | None:
        """
        Add one fragment's payload.

        @param fin: whether this is the message's last fragment.
        @return: the whole message on its last fragment (C{str} for text,
            C{bytes} for binary), else C{None}.
        @raise PayloadTooBig: when the message inflates past C{max_size}.
        @raise InvalidPayload: for invalid compressed data, or as soon as a
            text message cannot be valid UTF-8.
        @raise OverBudget: when the buffer would grow past the shared
            budget (checked after inflating: what one fragment inflates to
            is bounded by C{max_size}, and dropped at once).
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
        budget = self._budget
        if budget is not None:
            if fin:
                # Complete: nothing is held past this call.
                budget.release(len(parts))
                self._budget = None
            elif not budget.charge(len(payload)):
                # Short: it is also the close reason (at most 123 bytes sent).
                raise OverBudget("incomplete messages over the server's budget")
        parts += payload
        if decoder is not None:
            return parts.decode("utf-8") if fin else None
        return bytes(parts) if fin else None

    def text_decoder(self) -> Utf8Decoder | None:
        """
        A copy of the UTF-8 decoder of this message, for validating a
        continuation frame's payload before the frame is complete.

        @return: a decoder in the state the fragments received so far left
            this message's in, or C{None} when there is nothing to validate
            on the wire bytes: a binary message, or a compressed one (its
            bytes are only text once inflated, and inflating happens when the
            frame is complete).
        """
        decoder = self._decoder
        if decoder is None or self._deflate is not None:
            return None
        return decoder.copy()

    def release(self) -> None:
        """
        Give back what this incomplete message charged its budget, and drop
        its buffer: the message will never complete (the connection failed,
        or ended). Idempotent.
        """
        budget = self._budget
        if budget is not None:
            budget.release(len(self._parts))
            self._budget = None
        self._parts = bytearray()

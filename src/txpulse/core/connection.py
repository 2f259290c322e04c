# -*- test-case-name: tests.core.test_connection -*-
"""
The RFC 6455 state machine after the opening handshake: bytes in, messages
out; commands in, bytes out. No I/O, no clocks, no Twisted.

Theory of operation
===================

A L{Connection} is fed what the network delivered (L{Connection.receive_data},
L{Connection.receive_eof}) and told what the application wants to send
(L{Connection.send_text}, L{Connection.send_close}, ...). It answers with two
queues the I/O layer drains after every call:

  - L{Connection.events_received}: what to hand the application. A complete
    text message is a plain C{str}, a complete binary message plain C{bytes}
    (so the hot path allocates no event object per message); control frames
    are L{Ping}, L{Pong} and L{Close}.
  - L{Connection.data_to_send}: bytes to write, in order.

plus one flag, L{Connection.should_close_transport}, that says the TCP
connection must now be closed by this side.

The core answers on its own whatever RFC 6455 says an endpoint must answer:
a ping gets its pong (§5.5.2), a close gets its close (§5.5.1), and a peer
that breaks a rule gets a close frame with the right code, after which every
further byte is discarded ("fail the WebSocket connection", §7.1.7). Peer
misbehaviour never raises; the failure is stored in L{Connection.error}.
Local misuse (sending after close, an oversized ping) raises at once.

States::

    OPEN ──send_close()──▶ CLOSING ──peer's close──▶ CLOSED
      │                                                 ▲
      └──────── peer's close (we echo it) / failure ────┘

Who closes TCP (§7.1.1): after the close handshake the server does, at once;
the client waits for the server to do it (the I/O layer bounds that wait).
After a failure, whichever side failed closes at once.

Limits are checked on the frame header, before the payload is buffered: a
frame longer than C{max_frame_size}, or one that would take its message past
C{max_message_size}, fails the connection with 1009 without reading the
payload.

The parser reads straight out of the receive buffer. A complete, unfragmented
text or binary frame (the overwhelmingly common case) is unmasked, validated
and appended to the event queue in the loop itself; everything else takes the
general path in L{Connection._receive_frame}.

A text frame whose payload has not all arrived is validated as far as it
has (L{Connection._check_partial_text}, off the hot path: only when a read
leaves a frame incomplete), so invalid UTF-8 fails the connection with 1007
as soon as its bytes arrive, not when the frame completes (the strict
behaviour of RFC 6455 §8.1, "fail fast").

A data message in several frames (RFC 6455 §5.4) or compressed with
permessage-deflate (RFC 7692) is put back together by a
L{txpulse.core.assembly.MessageAssembler}: the connection validates its frame
headers and the size of what arrives on the wire, the assembler validates its
UTF-8 and inflates it. A connection holds an assembler only while such a
message is incomplete.

What all the incomplete messages of a server hold together is bounded by an
L{txpulse.core.assembly.AssemblyBudget} its connections share (C{budget}):
a fragment that would take the total past it fails its connection with 1013
("Try Again Later", IANA registry: the server is short of a resource, not
the peer at fault; 1009 would tell a peer whose message is within
C{max_message_size} that it is too big). An unfragmented message never
touches the budget. The charge of a message that will never complete is
given back when the connection fails, receives the peer's close, or ends
(L{Connection.receive_eof}).

Where each part lives: L{Connection} is one class, built as a chain of
parts of one job each. The slots are declared once, at the root of the chain
(L{txpulse.core.fields}); every other part adds none, so an instance is the
same size as when this was one class of 825 lines:

  - this module: the constructor, the two queues, C{receive_data} and the
    hot parse loop (C{_parse}), kept in one method with no call per frame;
  - L{txpulse.core.receiving}: the general receive path (header rules,
    control frames, fragmented and compressed messages, the early UTF-8
    check of a partial text frame);
  - L{txpulse.core.closing}: the close handshake and failing the connection;
  - L{txpulse.core.sending}: what the application sends, serialized onto
    the output queue;
  - L{txpulse.core.fields}: the fields they share, declared once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .assembly import AssemblyBudget
from .deflate import Deflate
from .events import Close, Event, Ping, Pong, Side, State
from .frames import NATIVE_MASK_THRESHOLD, CloseCode, apply_mask
from .receiving import Receiving

__all__ = [
    "Side",
    "State",
    "Ping",
    "Pong",
    "Close",
    "Event",
    "Connection",
    "DEFAULT_MAX_MESSAGE_SIZE",
]

#: 1 MiB: large enough for any chat or RPC payload, small enough that a
#: thousand hostile peers cannot exhaust a server's memory.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20

#: Stands for "no limit" in the hot path, which compares integers only.
_UNLIMITED = 1 << 64


class Connection(Receiving):
    """
    One side of an open WebSocket connection (see the module docstring;
    most methods are defined by the parts it is built from: the sending,
    closing and receiving modules, each named there).

    @ivar state: the L{State}.
    @ivar close_received: the peer's close frame, once received.
    @ivar close_sent: our close frame, once sent.
    @ivar error: the L{txpulse.core.exceptions.ProtocolError} the
        connection was failed with, if any.
    @ivar hold_close_reply: while true, L{data_to_send} does not yet queue the
        echo of the peer's close.
    """

    __slots__ = ()

    def __init__(
        self,
        side: Side,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        mask_key: Callable[[int], bytes] = secrets.token_bytes,
        deflate: Deflate | None = None,
        budget: AssemblyBudget | None = None,
    ) -> None:
        """
        @param side: L{Side.SERVER} requires masked frames from the peer and
            sends unmasked ones; L{Side.CLIENT} the reverse.
        @param max_message_size: the largest message accepted, summed across
            its fragments; C{None} for no limit. A larger one fails the
            connection with 1009 as soon as its size is known.
        @param max_frame_size: the largest single frame accepted; C{None}
            means C{max_message_size}. A larger one fails with 1009.
        @param mask_key: returns C{n} random bytes; used for the client's
            masking keys (injectable so tests are deterministic).
        @param deflate: the permessage-deflate codec, when negotiated.
        @param budget: bounds what the incomplete messages of this and the
            other connections sharing it hold together (see the module
            docstring); C{None} for no bound beyond C{max_message_size}.
        """
        # What each field means: txpulse.core.fields.
        self._client = side is Side.CLIENT
        self.state = State.OPEN
        self.max_message_size = _UNLIMITED if max_message_size is None else max_message_size
        self.max_frame_size = self.max_message_size if max_frame_size is None else max_frame_size
        self._max_single = min(self.max_frame_size, self.max_message_size)
        self._mask_key = mask_key
        self._buf = None
        self._need = 0
        self._partial_decoder = None
        self._partial_checked = -1
        self._events = []
        self._out = []
        self._message = None
        self._deflate = deflate
        self._budget = budget
        self._discard = False
        self._eof = False
        self._reply_pending = False
        self._fail_pending = None
        self.hold_close_reply = False
        self.close_received = None
        self.close_sent = None
        self.error = None

    # -- queues drained by the I/O layer ---------------------------------

    def events_received(self) -> list[Event]:
        """
        Return (and forget) the events parsed so far, in order.
        """
        events = self._events
        if events:
            self._events = []
        return events

    def data_to_send(self) -> list[bytes]:
        """
        Return (and forget) the bytes to write so far, in order.

        A close frame answering the peer's close is queued here, after
        whatever the application sent in answer to earlier messages, unless
        C{hold_close_reply} is set (the I/O layer sets it while the
        application is still busy with messages that came before the close).
        """
        if self._fail_pending is not None or self._reply_pending:
            self._queue_pending_close()
        out = self._out
        if out:
            self._out = []
        return out

    @property
    def side(self) -> Side:
        """
        The L{Side} this core plays.
        """
        return Side.CLIENT if self._client else Side.SERVER

    # -- input ------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """
        Feed bytes received from the network.
        """
        if self._discard or not data:
            return
        buf = self._buf
        if buf is not None:
            buf += data
            if self._need > len(data):
                # Still inside a frame's payload: nothing new to parse, but
                # a text payload's new bytes are validated at once.
                self._need -= len(data)
                if self._partial_decoder is not None:
                    self._check_partial_text(False)
                return
            self._need = 0
            consumed = self._parse(buf)
            if self._discard:
                self._buf = None
            elif consumed == len(buf):
                self._buf = None
            else:
                del buf[:consumed]
                # consumed > 0: the frame examined before is complete, the
                # one now at the start of the buffer is another.
                self._check_partial_text(consumed > 0)
            return
        consumed = self._parse(data)
        if consumed < len(data) and not self._discard:
            self._buf = bytearray(memoryview(data)[consumed:])
            self._check_partial_text(True)

    def receive_eof(self) -> None:
        """
        The peer closed the TCP connection (or it was lost).

        Without a prior close frame this is an abnormal closure (1006).
        """
        self.state = State.CLOSED
        self._discard = True
        self._buf = None
        self._drop_message()

    # -- the parser -------------------------------------------------------

    def _parse(self, b: bytes | bytearray) -> int:
        """
        Parse as many complete frames out of C{b} as it holds.

        @return: the number of bytes consumed.
        """
        pos = 0
        n = len(b)
        events = self._events
        from_bytes = int.from_bytes  # a local: looked up once per read, not per frame
        # A server requires the MASK bit on every frame, a client forbids it.
        want_mask = 0 if self._client else 0x80
        while n - pos >= 2:
            b0 = b[pos]
            b1 = b[pos + 1]
            length = b1 & 0x7F
            if length < 126:
                header = 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = (b[pos + 2] << 8) | b[pos + 3]
                header = 4
                if length < 126:
                    # RFC 6455 §5.2: "the minimal number of bytes MUST be used".
                    self._fail(CloseCode.PROTOCOL_ERROR, "length not minimally encoded")
                    return pos
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(b[pos + 2 : pos + 10], "big")
                header = 10
                if length >> 63:
                    # RFC 6455 §5.2: "the most significant bit MUST be 0".
                    self._fail(CloseCode.PROTOCOL_ERROR, "64-bit length with the top bit set")
                    return pos
                if length < 0x10000:
                    self._fail(CloseCode.PROTOCOL_ERROR, "length not minimally encoded")
                    return pos
            masked = b1 & 0x80
            opcode = b0 & 0x0F
            if masked != want_mask or (b0 & 0x70 and not self._compressed_start(b0, opcode)):
                self._check_mask_and_rsv(b0, masked, want_mask)
                return pos
            # A final text/binary frame outside a fragmented message, within
            # both limits, needs no further header check; anything else goes
            # through the full rules.
            if not ((b0 == 0x81 or b0 == 0x82) and length <= self._max_single and self._message is None):
                if not self._header_ok(b0, opcode, length):
                    return pos
            if masked:
                header += 4
            end = pos + header + length
            if end > n:
                self._need = end - n
                break
            start = pos + header
            if masked:
                key = b[start - 4 : start]
                if length < NATIVE_MASK_THRESHOLD:
                    # RFC 6455 §5.3, inlined for small payloads: one big-int XOR.
                    payload = (
                        from_bytes(b[start:end], "little") ^ from_bytes((key * ((length >> 2) + 1))[:length], "little")
                    ).to_bytes(length, "little")
                else:
                    payload = apply_mask(memoryview(b)[start:end], bytes(key))
            else:
                payload = bytes(b[start:end])
            pos = end
            # (A 0x81/0x82 frame inside a fragmented message already failed
            # in _header_ok, so these tests alone select the hot path.)
            if b0 == 0x81:
                # Hot path: a complete text message in one frame.
                try:
                    events.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
                    return pos
            elif b0 == 0x82:
                events.append(payload)
            else:
                self._receive_frame(opcode, bool(b0 & 0x80), payload, bool(b0 & 0x40))
                if self._discard:
                    return pos
        return pos

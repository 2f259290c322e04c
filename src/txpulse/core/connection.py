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
L{txpulse.core.assembly.MessageAssembler}: this module validates its frame
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
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .assembly import AssemblyBudget, MessageAssembler, OverBudget
from .deflate import Deflate
from .events import Close, Event, Ping, Pong, Side, State
from .exceptions import InvalidPayload, InvalidState, PayloadTooBig, ProtocolError
from .frames import (
    MAX_CONTROL_PAYLOAD,
    NATIVE_MASK_THRESHOLD,
    CloseCode,
    Opcode,
    apply_mask,
    encode_close_payload,
    encode_header,
    is_valid_close_code,
)
from .utf8 import Utf8Decoder

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

#: Payloads at least this long are queued as a separate write chunk after
#: their header instead of being concatenated with it (saves one copy).
_SEPARATE_PAYLOAD = 4096


_OPEN = State.OPEN

#: Headers of unmasked, unfragmented text and binary frames with payloads
#: under 126 bytes (the common small message), built once.
_SMALL_TEXT_HEADERS = tuple(bytes((0x81, n)) for n in range(126))
_SMALL_BINARY_HEADERS = tuple(bytes((0x82, n)) for n in range(126))


def _cut_reason(reason: str) -> str:
    """
    Cut a close reason to what fits in a close frame: at most 123 bytes of
    UTF-8 (RFC 6455 §5.5: 125 bytes of control frame payload, 2 of them the
    code), on a character boundary.
    """
    if len(reason) <= (MAX_CONTROL_PAYLOAD - 2) // 4:
        # At most 4 bytes per character: fits without encoding.
        return reason
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CONTROL_PAYLOAD - 2:
        return reason
    # The bytes kept are valid UTF-8 but for a sequence cut at the end,
    # which "ignore" drops: the cut lands on the last whole character.
    return encoded[: MAX_CONTROL_PAYLOAD - 2].decode("utf-8", "ignore")


class Connection:
    """
    One side of an open WebSocket connection (see the module docstring).

    @ivar state: the L{State}.
    @ivar close_received: the peer's close frame, once received.
    @ivar close_sent: our close frame, once sent.
    @ivar error: the L{ProtocolError} the connection was failed with, if any.
    @ivar hold_close_reply: while true, L{data_to_send} does not yet queue the
        echo of the peer's close.
    """

    __slots__ = (
        "_client",
        "state",
        "max_message_size",
        "max_frame_size",
        "_max_single",
        "_mask_key",
        "_buf",
        "_need",
        "_partial_decoder",
        "_partial_checked",
        "_events",
        "_out",
        "_message",
        "_deflate",
        "_budget",
        "_discard",
        "_eof",
        "_reply_pending",
        "_fail_pending",
        "hold_close_reply",
        "close_received",
        "close_sent",
        "error",
    )

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
        self._client = side is Side.CLIENT
        self.state = State.OPEN
        self.max_message_size = _UNLIMITED if max_message_size is None else max_message_size
        self.max_frame_size = self.max_message_size if max_frame_size is None else max_frame_size
        self._max_single = min(self.max_frame_size, self.max_message_size)
        self._mask_key = mask_key
        self._buf: bytearray | None = None
        self._need = 0
        # The validation so far of the incomplete frame at the start of _buf
        # (see _check_partial_text): its decoder (None: not a frame to
        # validate) and how many of its payload bytes were fed to it (-1:
        # the frame was not examined yet).
        self._partial_decoder: Utf8Decoder | None = None
        self._partial_checked = -1
        self._events: list[Event] = []
        self._out: list[bytes] = []
        # The fragmented or compressed message being received, if any.
        self._message: MessageAssembler | None = None
        self._deflate = deflate
        self._budget = budget
        self._discard = False
        self._eof = False
        self._reply_pending = False
        self._fail_pending: Close | None = None
        self.hold_close_reply = False
        self.close_received: Close | None = None
        self.close_sent: Close | None = None
        self.error: ProtocolError | None = None

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
        failed = self._fail_pending
        if failed is not None:
            # Queued after whatever the application sent while handling the
            # messages that preceded the violation.
            self._fail_pending = None
            if self.close_sent is None:
                self._queue_close(failed, failed.code, failed.reason)
        if self._reply_pending and not self.hold_close_reply:
            self._reply_pending = False
            received = self.close_received
            assert received is not None
            echo = None if received.code == CloseCode.NO_STATUS_RCVD else received.code
            self._queue_close(Close(received.code), echo, "")
            self._closed()
        out = self._out
        if out:
            self._out = []
        return out

    def should_close_transport(self) -> bool:
        """
        Whether this side must now close the TCP connection: the server after
        the close handshake, either side after failing the connection.
        """
        return self._eof

    def can_send(self) -> bool:
        """
        Whether data may still be sent: the connection is open, or the peer's
        close arrived and our reply has not been queued yet.
        """
        return self.state is State.OPEN or self._reply_pending or self._fail_pending is not None

    def close_expected(self) -> bool:
        """
        Whether the TCP connection is expected to close soon (a close frame
        was sent or received), so the I/O layer should bound the wait.
        """
        return self.state is not State.OPEN

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

    def _drop_message(self) -> None:
        """
        Forget the incomplete message, if any: no more of it will be read.
        Its charge goes back to the shared budget.
        """
        message = self._message
        if message is not None:
            self._message = None
            message.release()

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

    def _check_partial_text(self, new: bool) -> None:
        """
        Validate the UTF-8 of a text payload that has only partly arrived:
        the incomplete frame at the start of C{_buf}, after C{_parse} left it
        there. Fails the connection with 1007 as soon as the bytes arrived so
        far cannot begin valid UTF-8 (a sequence cut at the end of what
        arrived is not invalid yet). Off the hot path: only called when a
        read leaves a frame incomplete.

        The bytes validated are remembered (C{_partial_checked}), so each
        arriving byte is fed to the incremental decoder once; the complete
        frame is then decoded as usual (the copy validated here is a
        scratch one: the frame is unmasked again when complete).

        @param new: whether the frame at the start of C{_buf} is not the one
            examined before (that one completed, or none was).
        """
        if new:
            self._partial_decoder = None
            self._partial_checked = -1
        if not self._need:
            # The header itself is incomplete: examined when it is not.
            return
        buf = self._buf
        assert buf is not None
        b0 = buf[0]
        length = buf[1] & 0x7F
        start = 2 if length < 126 else 4 if length == 126 else 10
        if buf[1] & 0x80:
            start += 4
        checked = self._partial_checked
        if checked < 0:
            # First look at this frame (its header was validated by _parse).
            checked = self._partial_checked = 0
            opcode = b0 & 0x0F
            if b0 & 0x40:
                # A compressed message (RSV1) is only text once inflated,
                # which needs the whole frame: it is validated then.
                decoder = None
            elif opcode == Opcode.TEXT:
                decoder = Utf8Decoder()
            elif opcode == Opcode.CONT and self._message is not None:
                # Continue from the fragments already received; a copy, as
                # the assembler validates the complete frame itself.
                decoder = self._message.text_decoder()
            else:
                decoder = None
            self._partial_decoder = decoder
        else:
            decoder = self._partial_decoder
        offset = start + checked
        if decoder is None or len(buf) <= offset:
            return
        chunk: bytes | bytearray = buf[offset:]
        if buf[1] & 0x80:
            # The masking key, rotated to where the new bytes start.
            shift = checked & 3
            key = bytes(buf[start - 4 + shift : start]) + bytes(buf[start - 4 : start - 4 + shift])
            chunk = apply_mask(chunk, key)
        self._partial_checked = checked + len(chunk)
        try:
            decoder.decode(chunk, False)
        except UnicodeDecodeError:
            self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")

    def _compressed_start(self, b0: int, opcode: int) -> bool:
        """
        Whether reserved bits C{b0} are allowed: only RSV1, only with
        permessage-deflate, only on the first frame of a data message
        (RFC 7692 §6: never on control or continuation frames).
        """
        return self._deflate is not None and b0 & 0x70 == 0x40 and (opcode == Opcode.TEXT or opcode == Opcode.BINARY)

    def _check_mask_and_rsv(self, b0: int, masked: int, want_mask: int) -> None:
        """
        Fail the connection for a masking or RSV violation.
        """
        if masked != want_mask:
            # RFC 6455 §5.1: a server MUST close on an unmasked client frame;
            # a client MUST close on a masked server frame.
            if self._client:
                self._fail(CloseCode.PROTOCOL_ERROR, "masked frame from server")
            else:
                self._fail(CloseCode.PROTOCOL_ERROR, "unmasked frame from client")
        elif b0 & 0x70:
            # RFC 6455 §5.2: non-zero RSV bits without a negotiated extension.
            self._fail(CloseCode.PROTOCOL_ERROR, "reserved bits set")

    def _header_ok(self, b0: int, opcode: int, length: int) -> bool:
        """
        Validate a frame header against RFC 6455 §5 and the size limits,
        failing the connection when it breaks one.

        @return: whether parsing may go on.
        """
        if opcode >= 0x8:
            if opcode > 0xA:
                self._fail(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
                return False
            # RFC 6455 §5.5: control frames are never fragmented and carry at
            # most 125 bytes.
            if not b0 & 0x80:
                self._fail(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
                return False
            if length > MAX_CONTROL_PAYLOAD:
                self._fail(CloseCode.PROTOCOL_ERROR, "control frame longer than 125 bytes")
                return False
            return True
        if opcode > 0x2:
            self._fail(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            return False
        if length > self.max_frame_size:
            self._fail(CloseCode.MESSAGE_TOO_BIG, "frame too big")
            return False
        if opcode == Opcode.CONT:
            # RFC 6455 §5.4: a continuation needs a message to continue.
            message = self._message
            if message is None:
                self._fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
                return False
            if message.size + length > self.max_message_size:
                self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                return False
        else:
            # RFC 6455 §5.4: fragments of one message are not interleaved
            # with another message (only control frames may come between).
            if self._message is not None:
                self._fail(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented message")
                return False
            if length > self.max_message_size:
                self._fail(CloseCode.MESSAGE_TOO_BIG, "message too big")
                return False
        return True

    def _receive_frame(self, opcode: int, fin: bool, payload: bytes, rsv1: bool = False) -> None:
        """
        The general path: fragments, compressed messages and control frames.
        The header was already validated by L{_header_ok}; data frames go to
        the L{MessageAssembler} of their message.
        """
        if opcode == Opcode.PING:
            # RFC 6455 §5.5.2: answer with a pong carrying the same payload.
            if self.state is State.OPEN:
                self._queue_frame(0x80 | Opcode.PONG, payload)
            self._events.append(Ping(payload))
        elif opcode == Opcode.PONG:
            self._events.append(Pong(payload))
        elif opcode == Opcode.CLOSE:
            self._receive_close(payload)
        else:
            message = self._message
            if message is None:
                # The first frame of a data message (_header_ok made sure no
                # other one is in progress).
                message = self._message = MessageAssembler(
                    opcode == Opcode.TEXT, self.max_message_size, self._deflate if rsv1 else None, self._budget
                )
            try:
                data = message.receive(payload, fin)
            except PayloadTooBig as error:
                self._fail(CloseCode.MESSAGE_TOO_BIG, str(error))
                return
            except InvalidPayload as error:
                self._fail(CloseCode.INVALID_DATA, str(error))
                return
            except OverBudget as error:
                self._fail(CloseCode.TRY_AGAIN_LATER, str(error))
                return
            if data is not None:
                self._events.append(data)
                self._message = None

    def _receive_close(self, payload: bytes) -> None:
        """
        Handle the peer's close frame (RFC 6455 §5.5.1, §7.1.5).
        """
        code: int
        if not payload:
            code, reason = CloseCode.NO_STATUS_RCVD, ""
        elif len(payload) == 1:
            self._fail(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return
        else:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                self._fail(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(CloseCode.PROTOCOL_ERROR, "close reason is not UTF-8")
                return
        close = Close(code, reason)
        self.close_received = close
        self._events.append(close)
        # No frame may follow the peer's close (§5.5.1): stop parsing, and
        # forget a message it interrupted.
        self._discard = True
        self._drop_message()
        if self.close_sent is None:
            # RFC 6455 §5.5.1: reply with a close frame, "typically echoing the
            # status code it received". The reply waits for the next
            # data_to_send(), so the application can still answer the
            # messages that arrived before the close ("an endpoint MAY delay
            # sending a Close frame until its current message is sent").
            self.state = State.CLOSING
            self._reply_pending = True
        else:
            self._closed()

    def _closed(self) -> None:
        """
        Both close frames have crossed.
        """
        self.state = State.CLOSED
        if not self._client:
            # RFC 6455 §7.1.1: the server closes the TCP connection first.
            self._eof = True

    def _fail(self, code: int, message: str) -> None:
        """
        Fail the WebSocket connection (RFC 6455 §7.1.7): send a close frame
        with C{code} unless one was sent, discard all further input, and ask
        the I/O layer to close the transport.
        """
        if code == CloseCode.MESSAGE_TOO_BIG:
            self.error = PayloadTooBig(message)
        elif code == CloseCode.INVALID_DATA:
            self.error = InvalidPayload(message)
        else:
            self.error = ProtocolError(message, code)
        if self.close_sent is None and self.can_send():
            self._fail_pending = Close(code, message)
        self._reply_pending = False
        self.state = State.CLOSED
        self._discard = True
        self._buf = None
        self._eof = True
        self._drop_message()

    # -- output -------------------------------------------------------------

    def _queue_frame(self, first_byte: int, payload: bytes) -> None:
        """
        Serialize one frame onto the output queue, masking it on the client.
        """
        if self._client:
            key = self._mask_key(4)
            self._out.append(encode_header(first_byte, len(payload), 0x80) + key + apply_mask(payload, key))
        elif len(payload) < _SEPARATE_PAYLOAD:
            self._out.append(encode_header(first_byte, len(payload)) + payload)
        else:
            self._out.append(encode_header(first_byte, len(payload)))
            self._out.append(payload)

    def _queue_close(self, record: Close, code: int | None, reason: str) -> None:
        """
        Queue a close frame and remember it as sent.
        """
        self._queue_frame(0x80 | Opcode.CLOSE, encode_close_payload(code, _cut_reason(reason)))
        self.close_sent = record

    def _require_open(self) -> None:
        if self.state is not State.OPEN and not self._reply_pending and self._fail_pending is None:
            raise InvalidState(f"cannot send in state {self.state.name}")

    def send_text(self, text: str) -> None:
        """
        Queue a text message.

        @raise InvalidState: after the close handshake started.
        """
        if self.state is not _OPEN:
            self._require_open()
        payload = text.encode("utf-8")
        if self._deflate is not None and len(payload) >= self._deflate.min_size:
            self._queue_frame(0xC1, self._deflate.compress(payload))
        elif len(payload) < 126 and not self._client:
            self._out.append(_SMALL_TEXT_HEADERS[len(payload)] + payload)
        else:
            self._queue_frame(0x81, payload)

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """
        Queue a binary message.

        @raise InvalidState: after the close handshake started.
        """
        if self.state is not _OPEN:
            self._require_open()
        payload = bytes(data)
        if self._deflate is not None and len(payload) >= self._deflate.min_size:
            self._queue_frame(0xC2, self._deflate.compress(payload))
        elif len(payload) < 126 and not self._client:
            self._out.append(_SMALL_BINARY_HEADERS[len(payload)] + payload)
        else:
            self._queue_frame(0x82, payload)

    def send_frame_bytes(self, frame: bytes) -> bool:
        """
        Queue a frame that was already serialized (by
        L{txpulse.core.frames.encode_frame}), so a broadcast encodes once.

        Only valid on the server side, whose frames are not masked.

        @return: whether the output queue was empty before this frame (a
            broadcaster batching frames knows which connections to flush).
        @raise InvalidState: after the close handshake started, or on a client.
        """
        if self.state is not _OPEN:
            self._require_open()
        if self._client:
            raise InvalidState("a client must mask each frame it sends")
        out = self._out
        out.append(frame)
        return len(out) == 1

    def send_ping(self, payload: bytes = b"") -> None:
        """
        Queue a ping.

        @raise ValueError: for a payload longer than 125 bytes.
        @raise InvalidState: after the close handshake started.
        """
        self._require_open()
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("ping payload longer than 125 bytes")
        self._queue_frame(0x80 | Opcode.PING, bytes(payload))

    def send_pong(self, payload: bytes = b"") -> None:
        """
        Queue an unsolicited pong (a one-way heartbeat, RFC 6455 §5.5.3).

        @raise ValueError: for a payload longer than 125 bytes.
        @raise InvalidState: after the close handshake started.
        """
        self._require_open()
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("pong payload longer than 125 bytes")
        self._queue_frame(0x80 | Opcode.PONG, bytes(payload))

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """
        Start the closing handshake (RFC 6455 §7.1.2).

        @param code: the status code, or C{None} for a close frame without
            one.
        @param reason: at most 123 bytes of UTF-8.
        @raise ValueError: for a code that must not be sent or a reason too
            long.
        @raise InvalidState: when a close frame was already sent, or the
            peer's close was already answered.
        """
        self._require_open()
        if self._fail_pending is not None:
            raise InvalidState("the connection failed")
        payload = encode_close_payload(code, reason)
        self._queue_frame(0x80 | Opcode.CLOSE, payload)
        self.close_sent = Close(CloseCode.NO_STATUS_RCVD if code is None else code, reason)
        if self._reply_pending:
            # This close answers the peer's: the handshake is complete.
            self._reply_pending = False
            self._closed()
        else:
            self.state = State.CLOSING

    def fail(self, code: int = CloseCode.INTERNAL_ERROR, reason: str = "") -> None:
        """
        Fail the connection from the local side (e.g. an application error:
        1011), sending C{code} if no close frame was sent yet, and ask for
        the transport to be closed without waiting for the peer.
        """
        if self.close_sent is None and self.can_send():
            self._queue_close(Close(code, reason), code, reason)
        self._reply_pending = False
        self.state = State.CLOSED
        self._discard = True
        self._buf = None
        self._eof = True
        self._drop_message()

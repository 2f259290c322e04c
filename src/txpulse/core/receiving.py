# -*- test-case-name: tests.core.test_connection,tests.core.test_strict_utf8,tests.core.test_assembly -*-
"""
The general receive path of a L{txpulse.core.connection.Connection}: every
frame the hot loop does not finish itself. The rules of RFC 6455 §5 on
frame headers (opcodes, RSV bits, masking, control frames, fragmentation)
and the size limits, the control frames (a ping is answered with its pong
here, §5.5.2; a close goes to L{txpulse.core.closing}), the messages that
arrive in fragments or compressed (handed to a
L{txpulse.core.assembly.MessageAssembler}), and the early UTF-8 check of a
text frame that has only partly arrived.

Why a module of its own: L{txpulse.core.connection.Connection._parse} reads
frames straight out of the receive buffer and, for a complete unfragmented
text or binary frame within the limits (the overwhelmingly common case),
does everything inline, with no call per frame. Whatever else it meets
(any other header, or a frame that is not complete) it passes here, with
one call. Keeping the rare cases apart keeps the loop short enough to read
and to check against the rules written out below.
"""

from __future__ import annotations

from .assembly import MessageAssembler, OverBudget
from .closing import Closing
from .events import Ping, Pong, State
from .exceptions import InvalidPayload, PayloadTooBig
from .frames import MAX_CONTROL_PAYLOAD, CloseCode, Opcode, apply_mask
from .utf8 import Utf8Decoder

__all__ = ["Receiving"]


class Receiving(Closing):
    """
    The part of L{txpulse.core.connection.Connection} that handles the
    frames its hot loop does not (see the module docstring). Not used alone.
    """

    __slots__ = ()

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

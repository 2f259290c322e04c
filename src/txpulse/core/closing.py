# -*- test-case-name: tests.core.test_connection,tests.core.test_assembly -*-
"""
The end of a L{txpulse.core.connection.Connection}: the close handshake
(RFC 6455 §5.5.1, §7) and failing the connection (§7.1.7).

Why a module of its own: every rule about how a connection ends is here,
and nowhere else, whichever side starts it: the close codes a frame may
carry, who closed first, the reply to the peer's close and when it is
queued, what C{close_expected} and C{should_close_transport} tell the I/O
layer, and what a failure leaves behind (the stored error, the discarded
input, the shared assembly budget given back). The parser and the sender
only call in.

States::

    OPEN ──send_close()──▶ CLOSING ──peer's close──▶ CLOSED
      │                                                 ▲
      └──────── peer's close (we echo it) / failure ────┘

Invariants: C{close_sent} is set exactly when our close frame is queued (at
most once); C{_reply_pending} means the peer's close arrived and our reply is
not queued yet (state CLOSING); C{_fail_pending} holds the close frame of a
failure until the next C{data_to_send()}, so it goes out after whatever the
application sent in answer to earlier messages.
"""

from __future__ import annotations

from .events import Close, State
from .exceptions import InvalidPayload, InvalidState, PayloadTooBig, ProtocolError
from .frames import MAX_CONTROL_PAYLOAD, CloseCode, Opcode, encode_close_payload, is_valid_close_code
from .sending import Sending

__all__ = ["Closing"]


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


class Closing(Sending):
    """
    The part of L{txpulse.core.connection.Connection} that ends it (see the
    module docstring). Not used alone.
    """

    __slots__ = ()

    # -- what the I/O layer asks ------------------------------------------------

    def should_close_transport(self) -> bool:
        """
        Whether this side must now close the TCP connection: the server after
        the close handshake, either side after failing the connection.
        """
        return self._eof

    def close_expected(self) -> bool:
        """
        Whether the TCP connection is expected to close soon (a close frame
        was sent or received), so the I/O layer should bound the wait.
        """
        return self.state is not State.OPEN

    # -- commands ---------------------------------------------------------------

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

    # -- close frames on the output queue ---------------------------------------

    def _queue_pending_close(self) -> None:
        """
        Queue the close frame a failure or the peer's close left pending (for
        L{txpulse.core.connection.Connection.data_to_send}, which calls this
        only when one of them is set): a failure's close after whatever the
        application sent while handling the messages that preceded the
        violation; the reply to the peer's close unless C{hold_close_reply}
        is set.
        """
        failed = self._fail_pending
        if failed is not None:
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

    def _queue_close(self, record: Close, code: int | None, reason: str) -> None:
        """
        Queue a close frame and remember it as sent.
        """
        self._queue_frame(0x80 | Opcode.CLOSE, encode_close_payload(code, _cut_reason(reason)))
        self.close_sent = record

    # -- the peer's close, and the end ------------------------------------------

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

    def _drop_message(self) -> None:
        """
        Forget the incomplete message, if any: no more of it will be read.
        Its charge goes back to the shared budget.
        """
        message = self._message
        if message is not None:
            self._message = None
            message.release()

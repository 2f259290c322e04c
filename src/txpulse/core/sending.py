# -*- test-case-name: tests.core.test_connection -*-
"""
The output side of a L{txpulse.core.connection.Connection}: the data and
ping/pong frames the application sends, serialized onto the output queue
that L{txpulse.core.connection.Connection.data_to_send} drains.

Why a module of its own: sending shares no state with parsing but the
connection's state and the queue itself, and it has its own hot path (a
reply to every message of an echo or a broadcast), which is easiest to keep
lean when it is read on its own: a small server frame is one precomputed
header concatenated with its payload, and nothing else.

The close frame is sent by L{txpulse.core.closing}, which owns the close
handshake; it serializes through L{Sending._queue_frame} like every frame.
"""

from __future__ import annotations

from .events import State
from .exceptions import InvalidState
from .fields import ConnectionFields
from .frames import MAX_CONTROL_PAYLOAD, Opcode, apply_mask, encode_header

__all__ = ["Sending"]

#: Payloads at least this long are queued as a separate write chunk after
#: their header instead of being concatenated with it (saves one copy).
_SEPARATE_PAYLOAD = 4096

_OPEN = State.OPEN

#: Headers of unmasked, unfragmented text and binary frames with payloads
#: under 126 bytes (the common small message), built once.
_SMALL_TEXT_HEADERS = tuple(bytes((0x81, n)) for n in range(126))
_SMALL_BINARY_HEADERS = tuple(bytes((0x82, n)) for n in range(126))


class Sending(ConnectionFields):
    """
    The part of L{txpulse.core.connection.Connection} that serializes what
    the application sends (see the module docstring). Not used alone.
    """

    __slots__ = ()

    def can_send(self) -> bool:
        """
        Whether data may still be sent: the connection is open, or the peer's
        close arrived and our reply has not been queued yet.
        """
        return self.state is State.OPEN or self._reply_pending or self._fail_pending is not None

    def _require_open(self) -> None:
        if self.state is not State.OPEN and not self._reply_pending and self._fail_pending is None:
            raise InvalidState(f"cannot send in state {self.state.name}")

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

    # -- ping/pong (the automatic pong answering a ping is queued by the
    # receiving side, txpulse.core.receiving) --------------------------------

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

# -*- test-case-name: tests.wire.test_protocol,tests.pubsub.test_hub -*-
"""
L{Extras}: what a L{txpulse.wire.protocol.WebSocketWire} offers beyond
Twisted's C{WebSocketTransport}: sending frames serialized once for many
receivers (L{Extras.sendFrame}, L{Extras.queueFrame} and L{Extras.flush},
used by the pub/sub hub's fan-out), and the addresses of both ends.

Apart from the rest of the wire because these are additions, never
changes, to the API that code written for Twisted's uses
(C{sendTextMessage} and the other Twisted methods stay in
L{txpulse.wire.protocol}); the connection's state, the producer and the
close are in L{txpulse.wire.closing} and L{txpulse.wire.backpressure}.
"""

from __future__ import annotations

from typing import Any

from ..core.exceptions import InvalidState
from .closing import dropped
from .state import WireState

__all__ = ["Extras"]


class Extras(WireState):
    """
    Broadcast sends and addresses, for a L{txpulse.wire.protocol.WebSocketWire}.
    """

    __slots__ = ()

    def sendFrame(self, frame: bytes) -> None:
        """
        Send a message already serialized by L{txpulse.core.frames.encode_frame}
        (server side only): a broadcast encodes once and calls this on every
        receiver. Written at once, with whatever is queued before it: the
        caller batches (see L{queueFrame}), unlike the application's sends,
        which L{txpulse.wire.turns} batches per turn.
        """
        if self._send(self._conn.send_frame_bytes, frame):
            self.messagesOut += 1

    def queueFrame(self, frame: bytes) -> bool:
        """
        Queue a serialized message like L{sendFrame}, without writing it yet:
        a broadcaster queues a batch of messages on each receiver and then
        calls L{flush} once per receiver (one write instead of one per
        message). Dropped, like every send, once the connection is closing.

        @return: whether this frame started a new batch, i.e. the caller
            must call L{flush} later.
        """
        # The try is inline, not through _send (see the comment above
        # WebSocketWire.sendTextMessage): this runs once per receiver of a
        # broadcast's every other message.
        try:
            first = self._conn.send_frame_bytes(frame)
        except InvalidState:
            dropped()
            return False
        self.messagesOut += 1
        return first

    def flush(self) -> None:
        """
        Write everything queued (by L{queueFrame}).
        """
        if not self._dispatching:
            self._flush()

    def getPeer(self) -> Any:
        """
        The peer's address (from the underlying transport).
        """
        assert self.transport is not None
        return self.transport.getPeer()

    def getHost(self) -> Any:
        """
        This side's address (from the underlying transport).
        """
        assert self.transport is not None
        return self.transport.getHost()

# -*- test-case-name: tests.wire.test_protocol,tests.wire.test_tcp -*-
"""
L{BackPressure}: flow control both ways between the transport and the
application, for L{txpulse.wire.protocol.WebSocketWire}.

Towards the peer, the wire is the transport's L{IPushProducer}: when the
transport's write buffer fills it pauses the application's own producer
(C{attachProducer}) and starts counting the backlog
(L{BackPressure.writeBacklog}) against C{maxWriteBuffer}. From the peer,
reading is paused for as long as any reason holds it (one C{HOLD_*} bit
each: the application digesting an awaitable, or a peer fallen behind), so
that one reason lifting does not resume reading another still holds.

Apart from the rest of the wire because these rules (when to stop reading,
what counts as the peer's backlog) are subtle and hold whatever the frames
say; the write path (L{txpulse.wire.protocol.WebSocketWire._flush}) applies
them inline, at no extra call per write.
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer

from .state import WireState
from .tcp import heldBytes, queuedBytes

__all__ = ["BackPressure", "HOLD_APPLICATION", "HOLD_WRITES"]

# Why reading from the transport is paused: each reason is one bit of
# WebSocketWire._readHolds, and reading resumes only when none is left.
#: The application returned an awaitable it has not finished with.
HOLD_APPLICATION = 1
#: The peer has fallen behind: what we queued for it since the transport's
#: buffer filled (L{BackPressure.writeBacklog}) passed half of
#: C{maxWriteBuffer}, so we stop reading what it sends (every ping or echoed
#: message would add to the queue) until the buffer drains. TCP's own flow
#: control then holds the peer back. A full buffer alone is no reason: a
#: peer that writes as much as it reads (full duplex, pipelining) fills it
#: all the time, and two peers that both stopped reading then would wait
#: for each other for ever.
HOLD_WRITES = 2


class BackPressure(WireState):
    """
    The L{IPushProducer} side of a L{txpulse.wire.protocol.WebSocketWire},
    the application's producer, the write backlog and the read holds.
    """

    __slots__ = ()

    @property
    def writeBacklog(self) -> int:
        """
        How far behind a slow reader is: the growth of the memory queued
        for it (L{txpulse.wire.tcp.heldBytes}: bytes plus per-object overhead)
        since the transport's buffer filled up (0 while the peer keeps up).
        A peer that reads steadily, if not as fast as we write, keeps this
        near 0 even while the buffer never fully drains.
        """
        if not self._writePaused:
            return 0
        queued = heldBytes(self.transport)
        if queued is None:
            # A transport whose buffer we cannot see: count what was written
            # since it filled.
            return self._bufferedWhilePaused
        return max(0, queued - self._queuedAtPause)

    def attachProducer(self, producer: IPushProducer) -> None:
        """
        Attach the application's L{IPushProducer}: it is paused while the
        peer is not keeping up with what we send, and resumed when it is.
        """
        if self._producer is not None:
            raise RuntimeError("a producer is already attached")
        self._producer = producer
        if self._writePaused:
            producer.pauseProducing()

    def detachProducer(self) -> None:
        """
        Detach the producer attached with L{attachProducer}.
        """
        self._producer = None

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full (the peer reads slower than we
        write): pause the application's producer and start counting the
        backlog.

        Reading goes on: a full buffer is the normal state of a connection
        streaming both ways, and two peers that both stopped reading here
        would each wait for the other to drain. Every frame read may add to
        the buffer, though (the core answers a ping with a pong, an echo
        answers a message), so once the backlog passes half of
        C{maxWriteBuffer} C{_flush} stops reading until the buffer drains:
        a peer that sends and never reads is then held back by TCP's flow
        control, in the kernel's buffers.
        """
        if not self._writePaused:
            self._writePaused = True
            self._bufferedWhilePaused = 0
            self._queuedAtPause = heldBytes(self.transport) or 0
            # (Set again by _flush when the pause came from its own write,
            # once that write is counted in bytesOut.)
            self._drainMark = self._drained() or 0
            if self._producer is not None:
                self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained: resume the application's
        producer, and reading if a backlog had stopped it (unless the
        application still holds it).
        """
        self._writePaused = False
        self._bufferedWhilePaused = 0
        if self._producer is not None:
            self._producer.resumeProducing()
        self._resumeReading(HOLD_WRITES)

    def stopProducing(self) -> None:
        """
        The transport is going away.
        """
        if self._producer is not None:
            self._producer.stopProducing()

    def _drained(self) -> int | None:
        """
        Bytes that have left user space for the kernel so far; C{None} on a
        transport that does not show its buffer.
        """
        queued = queuedBytes(self.transport)
        return None if queued is None else self.bytesOut - queued

    def _pauseReading(self, reason: int) -> None:
        """
        Stop reading from the transport for C{reason} (a C{HOLD_*} bit), in
        addition to any other reason already holding it.
        """
        holds = self._readHolds
        self._readHolds = holds | reason
        if not holds and self.transport is not None:
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def _resumeReading(self, reasons: int) -> None:
        """
        C{reasons} (C{HOLD_*} bits) no longer hold reading; it resumes if
        no other reason does.
        """
        holds = self._readHolds
        if holds & reasons:
            self._readHolds = holds & ~reasons
            if not self._readHolds and self.transport is not None:
                self.transport.resumeProducing()  # type: ignore[attr-defined]

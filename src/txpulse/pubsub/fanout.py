# -*- test-case-name: tests.pubsub.test_hub,tests.hardening.test_slow_subscriber -*-
"""
Fan-out: how the hub writes what its broker delivers to the local
subscribers of a channel (L{FanOut}, a part of L{txpulse.pubsub.hub.Hub}).

Delivery: L{txpulse.pubsub.hub.Hub.publish} hands the message to the
hub's broker; the broker (L{txpulse.pubsub.broker.memory.MemoryBroker} in
one process, the Redis broker across processes) calls L{FanOut.deliver} in
every process with subscribers, which serializes the frame I{once} and
writes the same bytes to each local subscriber.

Batching: the first message delivered in a reactor turn is written to every
subscriber at once (so a burst's first message does not wait for the rest
of the burst); the ones after it, in the same turn, are queued on each
subscriber and written at the end of the turn, one write per subscriber
for the whole batch, or as soon as the batch holds C{maxBatch} bytes (a
server-side loop publishing megabytes in one turn must not pile them up
unchecked). Order is kept per subscriber.

Slow subscribers: a subscriber whose write backlog (the growth of its
queue since its transport's buffer filled) is over C{maxBacklog} bytes is
disconnected with close code 1008 ("subscriber too slow") and a log line,
checked before each turn's first delivery and after each batch is written;
the others keep receiving, in order, and the memory a slow subscriber holds
stays bounded by its transport's buffer, plus C{maxBacklog}, plus about two
batches (the one that filled the buffer, and the one that went over the
limit; a batch is C{maxBatch} bytes plus at most one message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.frames import Opcode, encode_frame
from ..logs.peers import peerOf
from .interfaces import Subscriber

if TYPE_CHECKING:
    from .recovery import _Pending

__all__ = ["FanOut", "TOO_SLOW"]

# The hub's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.hub")

#: Close code for a subscriber that cannot keep up (RFC 6455 §7.4.1: 1008,
#: "a message that violates its policy").
TOO_SLOW = 1008


class FanOut:
    """
    The part of L{txpulse.pubsub.hub.Hub} that writes deliveries to the
    local subscribers (see the module docstring); not used on its own.
    """

    maxBacklog: int
    maxBatch: int
    _queued: list[Subscriber] | None
    _batchBytes: int
    _topics: dict[str, set[Subscriber]]
    _recovering: dict[str, dict[Subscriber, _Pending]]

    if TYPE_CHECKING:

        @property
        def clock(self) -> IReactorTime: ...

        def unsubscribeAll(self, subscriber: Subscriber) -> None: ...

    def deliver(self, topic: str, payload: str, offset: int | None = None, epoch: str | None = None) -> None:
        """
        Write C{payload} (a JSON envelope, from the broker) to every local
        subscriber of broker channel C{topic}, with its position if it has
        one: encoded once, the same frame to all; the turn's first delivery
        at once, later ones batched (see the module docstring). Kept aside
        for the subscribers of C{topic} waiting for their history.
        """
        if self._recovering:
            waiting = self._recovering.get(topic)
            if waiting:
                behind: list[tuple[Subscriber, int]] = []
                for waiter, pending in waiting.items():
                    pending.buffer.append((payload, offset, epoch))
                    pending.buffered += len(payload)
                    if pending.buffered > self.maxBacklog:
                        behind.append((waiter, pending.buffered))
                for waiter, buffered in behind:
                    # Still waiting for its history or its replay, while the
                    # topic goes on: as far behind as a slow reader.
                    self._dropSlow(waiter, buffered)
        subscribers = self._topics.get(topic)
        if not subscribers:
            return
        if offset is not None and epoch is not None:
            payload = f'{payload[:-1]},"offset":{offset},"epoch":"{epoch}"}}'
        frame = encode_frame(Opcode.TEXT, payload.encode("utf-8"))
        queued = self._queued
        if queued is None:
            self._queued = []
            self._batchBytes = 0
            self.clock.callLater(0, self._endTurn)
            for subscriber in list(subscribers):
                try:
                    if not subscriber.isOpen():
                        continue
                    if subscriber.writeBacklog > self.maxBacklog:
                        self._dropSlow(subscriber)
                        continue
                    subscriber.sendFrame(frame)
                except Exception:
                    # One broken subscriber must not stop the fan-out.
                    _log.failure("Delivering to a subscriber of {topic} failed", Failure(), topic=topic)
            return
        for subscriber in subscribers:
            try:
                if subscriber.queueFrame(frame):
                    queued.append(subscriber)
            except Exception:
                _log.failure("Delivering to a subscriber of {topic} failed", Failure(), topic=topic)
        self._batchBytes += len(frame)
        if self._batchBytes >= self.maxBatch:
            self._writeBatch()

    def _endTurn(self) -> None:
        """
        The end of the turn: write what is queued; the next delivery is
        again the first of its turn.
        """
        self._writeBatch()
        self._queued = None

    def _writeBatch(self) -> None:
        """
        Write each subscriber's batch, then drop the subscribers that are
        now too far behind.
        """
        queued = self._queued
        self._queued = []
        self._batchBytes = 0
        for subscriber in queued or ():
            try:
                # Written first, then judged by what is left of it: a reader
                # that keeps up takes the batch into the kernel (backlog 0),
                # and only this subscriber's own bytes count against it.
                subscriber.flush()
                if subscriber.writeBacklog > self.maxBacklog:
                    self._dropSlow(subscriber)
            except Exception:
                _log.failure("Flushing a subscriber failed", Failure())

    def _writeTexts(self, subscriber: Subscriber, texts: list[str]) -> None:
        """
        Write C{texts} to C{subscriber} after what is queued for it: in this
        turn's batch if one is being made, else at once.
        """
        try:
            if not subscriber.isOpen():
                return
            started = False
            for text in texts:
                started = subscriber.queueFrame(encode_frame(Opcode.TEXT, text.encode("utf-8"))) or started
            queued = self._queued
            if queued is not None:
                if started:
                    queued.append(subscriber)
                return
            subscriber.flush()
            if subscriber.writeBacklog > self.maxBacklog:
                self._dropSlow(subscriber)
        except Exception:
            _log.failure("Writing to a subscriber failed", Failure())

    def _dropSlow(self, subscriber: Subscriber, kept: int | None = None) -> None:
        """
        Disconnect C{subscriber} with 1008: its backlog is over
        C{maxBacklog}, or (C{kept}) the deliveries kept aside for a
        subscription of it that is not live yet are.
        """
        _log.warn(
            "Disconnecting subscriber {peer}, too slow to keep up: {backlog} bytes queued (limit {limit}); "
            "close 1008 sent behind them",
            peer=peerOf(subscriber),
            backlog=subscriber.writeBacklog if kept is None else kept,
            limit=self.maxBacklog,
        )
        self.unsubscribeAll(subscriber)
        subscriber.loseConnection(TOO_SLOW, "subscriber too slow")

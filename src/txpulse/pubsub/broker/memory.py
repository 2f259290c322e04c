# -*- test-case-name: tests.pubsub.test_history -*-
"""
The in-process broker: the default, needs nothing else running. It assigns
positions and keeps each topic's history in memory (L{Ring}), so a
subscriber of this process that reconnects can resume without a gap.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ...wire.twistedinternals import maybeGlobalReactor
from ..history import DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_MAX_TOPICS, History, Position, Ring

__all__ = ["MemoryBroker", "randomEpoch"]


def _noHistory(channel: str) -> tuple[int, float]:
    return (0, 0.0)


def randomEpoch() -> str:
    """
    A new epoch: 16 random URL-safe characters (96 bits), which match
    L{txpulse.pubsub.history.EPOCH}. Independent per topic: an epoch says
    nothing about other topics (of other namespaces, which a client may not
    be allowed to see) or about how many were made before it.
    """
    return secrets.token_urlsafe(12)


class MemoryBroker:
    """
    Delivers each published message straight back to the local hub,
    synchronously and in order, with its position; answers L{history}
    synchronously.

    Epochs: each topic gets a random one (L{randomEpoch}) whenever its
    offsets start (again) at 1; a new broker (a restarted process) has
    new ones. A topic is forgotten when nothing of it is kept (no history
    left, or history off) and no local subscriber wants it; its next
    publication starts again at offset 1, in a new epoch.

    Expired publications are dropped as new ones arrive, and every
    C{sweepInterval} seconds for all topics (so a topic that went quiet
    does not hold its last messages forever).

    Bounds on what all topics' histories hold together, whoever publishes:
    at most C{maxBytes} of memory (L{txpulse.pubsub.history.keptBytes}:
    each payload's real size plus what keeping it costs) and at most
    C{maxTopics} topics with history. Past C{maxBytes}, the oldest
    publications of the least recently published topic are dropped
    (that topic's history first, then the next one's; a publication
    larger than the budget is not kept at all); past C{maxTopics}, the
    least recently published topic's history is dropped to make room. A
    client resuming from a dropped publication gets C{"recovered":
    false}, the documented degraded mode; positions are unaffected for
    topics with local subscribers (a topic without any is forgotten, as
    above). Every publication is kept, subscribed or not: a client that
    lost its connection is no longer a subscriber, and it is for that
    client that the history is kept. These bounds are what stops one
    client from growing the history without end (many topics, large
    messages): one that publishes a lot only pushes older publications
    out sooner.

    @ivar maxBytes: the memory budget of all histories (0: no bound).
    @ivar maxTopics: the most topics with history (0: no bound).
    """

    #: Seconds between two sweeps of expired publications (while some
    #: topic keeps any).
    sweepInterval = 10.0

    def __init__(
        self,
        *,
        clock: IReactorTime | None = None,
        newEpoch: Callable[[], str] = randomEpoch,
        maxBytes: int = DEFAULT_HISTORY_MAX_BYTES,
        maxTopics: int = DEFAULT_HISTORY_MAX_TOPICS,
    ) -> None:
        """
        @param clock: whose C{seconds()} dates publications for the
            history's ttl, and which runs the sweeps (default: the global
            reactor, looked up when first needed).
        @param newEpoch: makes each new epoch (default: L{randomEpoch});
            it must return strings that match
            L{txpulse.pubsub.history.EPOCH}.
        @param maxBytes: the memory budget of all histories (0: none).
        @param maxTopics: the most topics with history (0: no bound).
        """
        self._clock = clock
        self._newEpoch = newEpoch
        self.maxBytes = maxBytes
        self.maxTopics = maxTopics
        self._deliver: Callable[..., None] | None = None
        self._limits: Callable[[str], tuple[int, float]] = _noHistory
        self._rings: dict[str, Ring] = {}
        #: The rings that keep publications (history on, not dropped by
        #: the bounds), least recently published first, and the memory
        #: they hold together.
        self._kept: OrderedDict[str, Ring] = OrderedDict()
        self._keptBytes = 0
        self._wanted: set[str] = set()
        self._sweep: IDelayedCall | None = None

    @property
    def keptBytes(self) -> int:
        """
        The memory all histories hold (L{txpulse.pubsub.history.keptBytes}).
        """
        return self._keptBytes

    @property
    def keptTopics(self) -> int:
        """
        How many topics have a history.
        """
        return len(self._kept)

    @property
    def clock(self) -> IReactorTime:
        """
        What dates publications and runs the sweeps.
        """
        self._clock = maybeGlobalReactor(self._clock)
        return self._clock

    def start(self, deliver: Callable[..., None], limits: Callable[[str], tuple[int, float]] | None = None) -> None:
        """
        Deliver to C{deliver(channel, payload, offset, epoch)}; keep
        C{limits(channel)} (size, ttl) of each channel's publications
        (default: none).
        """
        self._deliver = deliver
        if limits is not None:
            self._limits = limits

    def subscribe(self, channel: str) -> None:
        """
        A local subscriber wants C{channel}: keep its position while it does.
        """
        self._wanted.add(channel)

    def unsubscribe(self, channel: str) -> None:
        """
        No local subscriber wants C{channel} any more: forget it if nothing
        of it is kept.
        """
        self._wanted.discard(channel)
        ring = self._rings.get(channel)
        if ring is not None and not ring:
            del self._rings[channel]
            self._kept.pop(channel, None)

    def _ring(self, channel: str) -> Ring:
        size, ttl = self._limits(channel)
        ring = Ring(self._newEpoch(), size, ttl)
        if ring.size or channel in self._wanted:
            self._rings[channel] = ring
        return ring

    def _forget(self, channel: str, ring: Ring) -> None:
        """
        C{ring}'s history is dropped (it keeps nothing): it no longer counts
        as a topic with history, and is forgotten unless a local subscriber
        wants it.
        """
        self._kept.pop(channel, None)
        if channel not in self._wanted and self._rings.get(channel) is ring:
            del self._rings[channel]

    def _admit(self, channel: str, ring: Ring) -> None:
        """
        C{ring} is to keep publications: make room for one more topic with
        history (dropping the least recently published one's) if there are
        C{maxTopics} already.
        """
        kept = self._kept
        limit = self.maxTopics
        while limit and len(kept) >= limit:
            oldChannel, old = kept.popitem(last=False)
            self._keptBytes -= old.bytes
            old.clear()
            self._forget(oldChannel, old)
        kept[channel] = ring

    def _trim(self) -> None:
        """
        Over C{maxBytes}: drop the oldest publications of the least recently
        published topics until the histories fit again.
        """
        kept, budget = self._kept, self.maxBytes
        while self._keptBytes > budget and kept:
            channel, ring = next(iter(kept.items()))
            while ring and self._keptBytes > budget:
                self._keptBytes -= ring.dropOldest()
            if not ring:
                self._forget(channel, ring)

    def publish(self, channel: str, payload: str) -> Position:
        """
        Give C{payload} the channel's next offset, keep it (if history is
        on) and deliver it.

        @return: its position.
        """
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._ring(channel)
        if ring.size:
            clock = self.clock
            try:
                self._kept.move_to_end(channel)
            except KeyError:
                self._admit(channel, ring)
            before = ring.bytes
            offset = ring.append(payload, clock.seconds())
            self._keptBytes = keptBytes = self._keptBytes + ring.bytes - before
            if keptBytes > self.maxBytes and self.maxBytes:
                self._trim()
            if self._sweep is None:
                self._sweep = clock.callLater(self.sweepInterval, self._sweepExpired)
        else:
            offset = ring.append(payload, 0.0)
        deliver = self._deliver
        if deliver is not None:
            deliver(channel, payload, offset, ring.epoch)
        return Position(offset, ring.epoch)

    def history(self, channel: str, since: Position | None) -> History:
        """
        The channel's position, and with C{since} the publications after
        it, if they are all kept (see L{History}).
        """
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._ring(channel)
        if not ring.size:
            return ring.since(since, 0.0)
        before = ring.bytes
        answer = ring.since(since, self.clock.seconds())
        self._keptBytes -= before - ring.bytes
        return answer

    def _sweepExpired(self) -> None:
        self._sweep = None
        now = self.clock.seconds()
        keeping = False
        for channel, ring in list(self._rings.items()):
            if not ring.size:
                continue
            before = ring.bytes
            ring.expire(now)
            self._keptBytes -= before - ring.bytes
            if ring:
                keeping = True
            else:
                self._forget(channel, ring)
        if keeping:
            self._sweep = self.clock.callLater(self.sweepInterval, self._sweepExpired)

    def stop(self) -> None:
        """
        No more deliveries, no more sweeps.
        """
        self._deliver = None
        if self._sweep is not None and self._sweep.active():
            self._sweep.cancel()
        self._sweep = None

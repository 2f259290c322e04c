# -*- test-case-name: tests.pubsub.test_history -*-
"""
The in-process broker: the default, needs nothing else running. It assigns
positions and keeps each topic's history in memory (L{Ring}), so a
subscriber of this process that reconnects can resume without a gap.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ...wire.twistedinternals import maybeGlobalReactor
from ..history import History, Position, Ring

__all__ = ["MemoryBroker"]


def _noHistory(channel: str) -> tuple[int, float]:
    return (0, 0.0)


class MemoryBroker:
    """
    Delivers each published message straight back to the local hub,
    synchronously and in order, with its position; answers L{history}
    synchronously.

    Epochs: each topic's is the broker's random C{epoch} plus a
    generation number (C{"3f9a0c1be2d4-7"}); a new broker (a restarted
    process) has a new one. A topic is forgotten when nothing of it is
    kept (no history left, or history off) and no local subscriber wants
    it; its next publication starts again at offset 1, in a new epoch.

    Expired publications are dropped as new ones arrive, and every
    C{sweepInterval} seconds for all topics (so a topic that went quiet
    does not hold its last messages forever).

    @ivar epoch: the random part of this broker's epochs.
    """

    #: Seconds between two sweeps of expired publications (while some
    #: topic keeps any).
    sweepInterval = 10.0

    def __init__(self, *, clock: IReactorTime | None = None, epoch: str | None = None) -> None:
        """
        @param clock: whose C{seconds()} dates publications for the
            history's ttl, and which runs the sweeps (default: the global
            reactor, looked up when first needed).
        @param epoch: the random part of the epochs (default: 12 random hex
            digits); letters, digits and C{._:-} only.
        """
        self._clock = clock
        self.epoch = epoch if epoch is not None else secrets.token_hex(6)
        self._generation = 0
        self._deliver: Callable[..., None] | None = None
        self._limits: Callable[[str], tuple[int, float]] = _noHistory
        self._rings: dict[str, Ring] = {}
        self._wanted: set[str] = set()
        self._sweep: IDelayedCall | None = None

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

    def _ring(self, channel: str) -> Ring:
        self._generation += 1
        size, ttl = self._limits(channel)
        ring = Ring(f"{self.epoch}-{self._generation}", size, ttl)
        if ring.size or channel in self._wanted:
            self._rings[channel] = ring
        return ring

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
            offset = ring.append(payload, clock.seconds())
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
        return ring.since(since, self.clock.seconds() if ring.size else 0.0)

    def _sweepExpired(self) -> None:
        self._sweep = None
        now = self.clock.seconds()
        keeping = False
        for channel, ring in list(self._rings.items()):
            if not ring.size:
                continue
            ring.expire(now)
            if ring:
                keeping = True
            elif channel not in self._wanted:
                del self._rings[channel]
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

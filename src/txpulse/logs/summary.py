# -*- test-case-name: tests.logs.test_summary -*-
"""
L{SummaryLog}: log repeated events in aggregate, so that a client that
repeats something (refused connections, failed logins, refused upgrades,
bad messages from a broker) cannot flood the log.

Theory of operation: events are noted under a key (a client address, a
cap's name, ...) and, optionally, a kind (e.g. "failed" or "refused").
The first event of a key is logged at once, in full, by the caller
(L{SummaryLog.note} returns C{True}); the following ones are only counted
(C{False}). One timer for the whole table fires every C{interval} seconds
while the table is not empty; at each tick, every key that counted events
gets I{one} summary line (the C{summarize} callback), and a key with
nothing counted since its last line, at least C{interval} seconds old, is
forgotten: its next event is logged at once again. So a key costs at most
one full line, then one line per interval while the events last.

Memory is bounded: at most C{maxKeys} keys are kept; events of further
keys are counted under L{OTHERS} (never logged in full), so a flood from
many addresses still makes one summary line per interval; and at most
C{maxKinds} kinds per key (further kinds are counted as L{OTHERS}).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ..wire.twistedinternals import maybeGlobalReactor

__all__ = ["SummaryLog", "OTHERS", "DEFAULT_MAX_KEYS", "DEFAULT_MAX_KINDS"]

#: The key events are counted under once the table is full.
OTHERS = "(other addresses)"

#: Keys remembered at most.
DEFAULT_MAX_KEYS = 1000

#: Kinds counted per key at most.
DEFAULT_MAX_KINDS = 100

#: C{summarize(key, counts, seconds)}: log one summary line for C{key}:
#: C{counts} maps each kind to the events counted since the key's last line,
#: which was C{seconds} ago.
Summarize = Callable[[str, Mapping[str, int], float], None]


class _Entry:
    __slots__ = ("since", "counts")

    def __init__(self, since: float) -> None:
        # When the key's last line (full or summary) was logged.
        self.since = since
        self.counts: Counter[str] = Counter()


class SummaryLog:
    """
    Events logged once per key, then summed up once per interval (see the
    module docstring).
    """

    def __init__(
        self,
        summarize: Summarize,
        interval: float,
        *,
        maxKeys: int = DEFAULT_MAX_KEYS,
        maxKinds: int = DEFAULT_MAX_KINDS,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param summarize: logs one summary line (see L{Summarize}).
        @param interval: seconds between two summary lines of a key.
        @param maxKeys: keys remembered at most (then L{OTHERS}).
        @param maxKinds: kinds counted per key at most (then L{OTHERS}).
        @param clock: the time source (default: the reactor, looked up at
            the first event).
        @raise ValueError: for a non-positive C{interval} or C{maxKeys}.
        """
        if interval <= 0 or maxKeys < 1 or maxKinds < 1:
            raise ValueError("interval, maxKeys and maxKinds must be positive")
        self.interval = interval
        self._summarize = summarize
        self._maxKeys = maxKeys
        self._maxKinds = maxKinds
        self._clockOrNone = clock
        self._entries: dict[str, _Entry] = {}
        self._tick: IDelayedCall | None = None

    @property
    def clock(self) -> IReactorTime:
        """
        The time source.
        """
        self._clockOrNone = maybeGlobalReactor(self._clockOrNone)
        return self._clockOrNone

    @clock.setter
    def clock(self, clock: IReactorTime) -> None:
        self._clockOrNone = clock

    def __len__(self) -> int:
        """
        The number of keys remembered.
        """
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def note(self, key: str, kind: str = "") -> bool:
        """
        Note one event.

        @return: C{True} if the caller should log it now, in full (the first
            of its key in a while); C{False} if it was counted for the next
            summary line.
        """
        entry = self._entries.get(key)
        if entry is None and len(self._entries) >= self._maxKeys:
            entry = self._entries.get(OTHERS)
            if entry is None:
                entry = self._entries[OTHERS] = _Entry(self.clock.seconds())
        if entry is not None:
            counts = entry.counts
            if kind not in counts and len(counts) >= self._maxKinds:
                kind = OTHERS
            counts[kind] += 1
            return False
        clock = self.clock
        self._entries[key] = _Entry(clock.seconds())
        if self._tick is None:
            self._tick = clock.callLater(self.interval, self._flush)
        return True

    def _flush(self) -> None:
        self._tick = None
        now = self.clock.seconds()
        for key, entry in list(self._entries.items()):
            if entry.counts:
                counts = dict(entry.counts)
                entry.counts.clear()
                seconds, entry.since = now - entry.since, now
                self._summarize(key, counts, seconds)
            elif now - entry.since >= self.interval:
                del self._entries[key]
        if self._entries:
            self._tick = self.clock.callLater(self.interval, self._flush)

    def stop(self) -> None:
        """
        Log what is counted now, forget every key and cancel the timer (at
        shutdown).
        """
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        now = self.clock.seconds() if self._entries else 0.0
        for key, entry in self._entries.items():
            if entry.counts:
                self._summarize(key, dict(entry.counts), now - entry.since)
        self._entries.clear()

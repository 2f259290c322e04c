# -*- test-case-name: tests.server.test_deadlines -*-
"""
Deadlines of one length for many connections, on one timer.

Why: every HTTP connection of a L{txpulse.WebSocketSite} has a deadline
while it waits for a request (C{requestTimeout}) and between requests
(C{keepAliveTimeout}); an upgrade cancels it. With one reactor C{callLater}
each, a flood of handshakes pays for a L{DelayedCall} per connection, its
insertion into the reactor's heap (a dozen Python comparisons with ten
thousand timers pending), and the cancelled call lingering in the heap
until it expires. All deadlines of one length expire in the order they were
armed, so a queue in arming order, with one timer for its head, holds them
all: arming appends, cancelling clears an entry, expiry pops from the front.

The cost of that order: should the system clock go back, a deadline armed
after the jump waits behind those armed before it (late, never early).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["Deadline", "DeadlineQueue"]

_log = Logger()

#: Seconds of slack when comparing a deadline with the clock: a timer set
#: for C{time - now} seconds may fire a rounding error before C{time}.
_SLACK = 1e-6

#: A queue holding more cancelled deadlines than this, and more than live
#: ones, drops them (they would otherwise stay until they expire).
_COMPACT_AFTER = 64


class Deadline:
    """
    One armed deadline of a L{DeadlineQueue}: the C{active} and C{cancel}
    of an L{IDelayedCall}.

    @ivar time: when it expires (the clock's C{seconds()}).
    """

    __slots__ = ("time", "_callback", "_queue")

    def __init__(self, time: float, callback: Callable[[], object], queue: DeadlineQueue) -> None:
        self.time = time
        self._callback: Callable[[], object] | None = callback
        self._queue = queue

    def active(self) -> bool:
        return self._callback is not None

    def cancel(self) -> None:
        """
        Cancel it (nothing happens if it fired or was cancelled).
        """
        if self._callback is not None:
            self._callback = None
            self._queue._dropped()


class DeadlineQueue:
    """
    Deadlines of C{delay} seconds from when each is armed, on one timer of
    C{clock}: a callback is called C{delay} seconds after L{arm}, unless its
    L{Deadline} was cancelled first.
    """

    def __init__(self, clock: IReactorTime, delay: float) -> None:
        self._clock = clock
        self.delay = delay
        self._entries: deque[Deadline] = deque()
        self._cancelled = 0
        self._call: IDelayedCall | None = None
        # True while expired callbacks run (they may arm more: the timer is
        # set once they are done).
        self._expiring = False

    def __len__(self) -> int:
        """
        The deadlines armed and not expired, cancelled or not (those
        cancelled are dropped when they reach the front, or when they
        outnumber the live ones).
        """
        return len(self._entries)

    def _dropped(self) -> None:
        """
        One of the deadlines was cancelled: when none is left live, the
        queue is emptied and its timer cancelled (no timer pending for
        nothing, and nothing kept).
        """
        self._cancelled += 1
        if self._cancelled == len(self._entries) and not self._expiring:
            self._entries.clear()
            self._cancelled = 0
            if self._call is not None:
                self._call.cancel()
                self._call = None

    def arm(self, callback: Callable[[], object]) -> Deadline:
        """
        Call C{callback} in C{delay} seconds, unless the deadline returned
        is cancelled before.
        """
        entries = self._entries
        if self._cancelled > _COMPACT_AFTER and self._cancelled * 2 > len(entries):
            self._entries = entries = deque(entry for entry in entries if entry._callback is not None)
            self._cancelled = 0
        deadline = Deadline(self._clock.seconds() + self.delay, callback, self)
        entries.append(deadline)
        if self._call is None and not self._expiring:
            self._call = self._clock.callLater(self.delay, self._expire)
        return deadline

    def _expire(self) -> None:
        """
        The timer fired: call the callbacks of the deadlines that expired,
        in arming order, then set the timer for the next live one.
        """
        self._call = None
        self._expiring = True
        try:
            self._expireDue()
        finally:
            self._expiring = False
        entries = self._entries
        if entries:
            self._call = self._clock.callLater(max(0.0, entries[0].time - self._clock.seconds()), self._expire)

    def _expireDue(self) -> None:
        entries = self._entries
        now = self._clock.seconds() + _SLACK
        while entries:
            deadline = entries[0]
            callback = deadline._callback
            if callback is None:
                entries.popleft()
                self._cancelled -= 1
                continue
            if deadline.time > now:
                break
            entries.popleft()
            deadline._callback = None
            try:
                callback()
            except Exception:
                # One failing callback must not leave the others unfired.
                _log.failure("Deadline callback {callback!r} failed", callback=callback)
            # (A callback may have compacted the queue: read it again.)
            entries = self._entries
            now = self._clock.seconds() + _SLACK

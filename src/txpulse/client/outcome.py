# -*- test-case-name: tests.client.test_endpoint,tests.http2.test_client -*-
"""
L{Outcome}: how an opening handshake ended (the application protocol, or
the L{Failure} that says why there is none), for any number of callers
waiting on it. Both ways the client opens a WebSocket (an HTTP/1.1 upgrade,
L{txpulse.client.endpoint}; an HTTP/2 stream, L{txpulse.client.http2})
answer C{whenOpened()} with one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

__all__ = ["Outcome"]

T = TypeVar("T")


class Outcome(Generic[T]):
    """
    A result that is settled once and given to every waiter: those that
    waited before, when it is settled, and those that come later, at once.

    @ivar result: the value or L{Failure} it was settled with; C{None}
        while unsettled (so a value is never C{None}).
    """

    def __init__(self) -> None:
        self.result: T | Failure | None = None
        self._waiters: list[Deferred[T]] = []

    @property
    def settled(self) -> bool:
        """
        Whether L{settle} was called.
        """
        return self.result is not None

    def wait(self, canceller: Callable[[Deferred[T]], None] | None = None) -> Deferred[T]:
        """
        A new Deferred that fires with the result (fails with it, for a
        L{Failure}): at once when settled already, else when L{settle} is
        called.

        @param canceller: the Deferred's canceller while it waits.
        """
        if isinstance(self.result, Failure):
            return fail(self.result)
        if self.result is not None:
            return succeed(self.result)
        d: Deferred[T] = Deferred(canceller)
        self._waiters.append(d)
        return d

    def settle(self, result: T | Failure) -> None:
        """
        Settle with C{result} and fire every waiting Deferred with it; only
        the first call counts, later ones are ignored.
        """
        if self.result is not None:
            return
        self.result = result
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

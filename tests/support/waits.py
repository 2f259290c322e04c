"""
Bounded waits: every wait in the loopback suites goes through these, so a
hang becomes a clear failure instead of a stuck run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

T = TypeVar("T")

#: Upper bound for any single wait, in seconds. Tests normally finish in
#: milliseconds; this only turns a hang into a clear failure.
WAIT = 5.0


async def within(d: Deferred[T] | Awaitable[T], seconds: float = WAIT) -> T:
    """
    Await C{d}, failing with L{twisted.internet.defer.TimeoutError} after
    C{seconds}.
    """
    if not isinstance(d, Deferred):
        d = Deferred.fromCoroutine(d)  # type: ignore[arg-type]
    return await d.addTimeout(seconds, reactor)


async def until(predicate: Callable[[], object], what: str, seconds: float = WAIT) -> None:
    """
    Poll C{predicate} on the reactor until it is true, failing after
    C{seconds} with a message saying C{what} was awaited.
    """
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for: {what}")
        await deferLater(reactor, 0.01)


def in_thread(coroutine_function: Callable[[], Awaitable[T]], seconds: float = WAIT) -> Deferred[T]:
    """
    Run an asyncio client (C{websockets}) in a worker thread with its own
    event loop, so the Twisted reactor keeps serving meanwhile.
    """

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine_function(), seconds)

    return deferToThread(asyncio.run, bounded())


def failureOf(deferred: Deferred[Any]) -> Failure:
    """
    The failure C{deferred} already holds, consumed (as trial's
    C{failureResultOf}): a test that only read C{deferred.result} would
    leave it unhandled, and Twisted would log it when collected.
    """
    failures: list[Failure] = []
    deferred.addErrback(failures.append)
    assert failures, f"{deferred!r} has not failed"
    return failures[0]

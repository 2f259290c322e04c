# -*- test-case-name: tests.wire.test_turns -*-
"""
Sends made outside a connection's own read, written once per reactor turn.

Inside a read, L{txpulse.wire.protocol.WebSocketWire.dataReceived} already
writes everything the read produced (automatic replies and the
application's answers) at once. A send from anywhere else (a timer, a
Deferred's callback, a loop over many connections inside I{another}
connection's read) has no such end to wait for. Writing each one straight
away costs a C{send} system call per message per connection: a loop
publishing 1,000 messages to 1,000 connections makes a million of them,
where Twisted's own transport (which only ever appends to its buffer and
lets the reactor write when the socket is writable) makes a thousand.

The rule here keeps the latency of a direct write and the cost of a
buffered one:

  - the first message a quiet connection is sent leaves at once (one
    write, no added latency for the common case: one message now and
    then);
  - the ones after it, in the same reactor turn, stay queued in the core
    and are written together at the end of the turn (a C{callLater(0)},
    which runs after the reactor has handled every event it woke up for),
    or as soon as the batch holds L{MAX_BATCH} bytes (a loop sending
    megabytes in one turn must not pile them up unchecked);
  - anything that writes the connection in between (its own read, a ping,
    a close) writes the queue first, so order is kept.

One L{TurnFlusher} per clock (reactor) serves every connection on it: one
C{DelayedCall} per turn, whatever the number of connections.
"""

from __future__ import annotations

from typing import Protocol
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IReactorTime

__all__ = ["MAX_BATCH", "Batched", "TurnFlusher", "flusherFor"]

#: Bytes (of payload) a connection may queue in one turn before they are
#: written without waiting for the turn's end. Large enough that small
#: messages go out in few system calls, small enough that a sender looping
#: over big messages holds little more than Twisted's own buffer would.
MAX_BATCH = 64 << 10


class Batched(Protocol):
    """
    What a L{TurnFlusher} flushes: a connection with sends queued.
    """

    def endTurn(self) -> None:
        """
        The turn is over: write what was queued, and count the next send as
        the first of a new turn.
        """


class TurnFlusher:
    """
    The connections of one reactor that queued sends this turn, and the one
    C{callLater(0)} that writes them at its end.
    """

    __slots__ = ("_clock", "_waiting", "_call", "__weakref__")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._waiting: list[Batched] = []
        self._call: object = None

    def add(self, connection: Batched) -> None:
        """
        C{connection} has opened a batch: call its L{Batched.endTurn} at the
        end of this turn.
        """
        self._waiting.append(connection)
        if self._call is None:
            self._call = self._clock.callLater(0, self._endTurn)

    def _endTurn(self) -> None:
        self._call = None
        waiting = self._waiting
        self._waiting = []
        for connection in waiting:
            connection.endTurn()


_flushers: WeakKeyDictionary[IReactorTime, TurnFlusher] = WeakKeyDictionary()


def flusherFor(clock: IReactorTime) -> TurnFlusher:
    """
    The L{TurnFlusher} of C{clock} (one per reactor, or per test clock).
    """
    flusher = _flushers.get(clock)
    if flusher is None:
        flusher = _flushers[clock] = TurnFlusher(clock)
    return flusher

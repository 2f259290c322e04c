# -*- test-case-name: tests.pubsub.test_hub -*-
"""
What the hub talks to and is given: the L{Subscriber} it delivers to, and
the hooks that decide per topic who may do what (L{Authorize}) and how
much history is kept (L{HistoryFor}). What it expects of a broker is
L{txpulse.pubsub.broker.Broker}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Subscriber", "Authorize", "HistoryFor"]


class Subscriber(Protocol):
    """
    What the hub delivers to: a L{txpulse.wire.protocol.WebSocketWire}, or anything
    with these methods. C{sendFrame} writes a serialized frame now;
    C{queueFrame} queues one and returns whether it started a new batch
    (the hub then remembers to flush this subscriber); C{flush} writes and
    empties the batch, so that the next C{queueFrame} starts a new one;
    C{writeBacklog} says how far behind the reader is, in bytes.
    """

    def sendFrame(self, frame: bytes) -> None: ...

    def queueFrame(self, frame: bytes) -> bool: ...

    def flush(self) -> None: ...

    def loseConnection(self, code: int = 1000, reason: str = "") -> None: ...

    def abortConnection(self) -> None: ...

    def isOpen(self) -> bool: ...

    @property
    def writeBacklog(self) -> int: ...


#: Per-topic authorization: C{(identity, action, topic) -> bool}, where
#: action is C{"subscribe"} or C{"publish"} and identity is what the
#: accept hook (e.g. the Bearer-key check) attached to the connection.
Authorize = Callable[[object, str, str], bool]

#: Per-topic history limits: C{topic -> (size, ttl)}, or C{None} for the
#: hub's defaults. It sees topics as the hub's C{authorize} does (the
#: root's as they are, topic T of namespace N as C{N/T}).
HistoryFor = Callable[[str], "tuple[int, float] | None"]

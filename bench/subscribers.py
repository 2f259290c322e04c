"""
A hub subscriber for the benchmarks that drive L{txpulse.pubsub.hub.Hub}
in process (bench/history.py, bench/redisbroker.py): no connection, no
writes, so that what is measured is the hub's (and the broker's) own cost.
"""

from __future__ import annotations


class NullSubscriber:
    """
    A subscriber (L{txpulse.pubsub.interfaces.Subscriber}) that writes
    nowhere and keeps nothing; always open, never behind. Subclasses that
    look at what is delivered override L{sendFrame} and L{queueFrame}.
    """

    writeBacklog = 0

    def sendFrame(self, frame: bytes) -> None:
        pass

    def queueFrame(self, frame: bytes) -> bool:
        return False

    def flush(self) -> None:
        pass

    def loseConnection(self, code: int = 1000, reason: str = "") -> None:
        pass

    def abortConnection(self) -> None:
        pass

    def isOpen(self) -> bool:
        return True

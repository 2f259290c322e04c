"""
In-memory transports beyond Twisted's own L{StringTransport}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport


class CountingTransport(StringTransport):
    """
    A L{StringTransport} that counts write calls and records aborts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writeCalls = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writeCalls += 1
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.writeCalls += 1
        StringTransport.write(self, b"".join(data))

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()

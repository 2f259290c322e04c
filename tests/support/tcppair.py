"""
A L{txpulse.wire.protocol.WebSocketWire} on a real TCP transport for unit tests:
Twisted's own L{twisted.internet.tcp.Connection} over a connected socket
pair, with a L{MemoryReactorClock} so the test plays the reactor (calls
C{doRead} and C{doWrite} itself).
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.internet.tcp import Connection as TCPConnection
from twisted.internet.testing import MemoryReactorClock

from txpulse.core.connection import Connection, Side
from txpulse.wire.protocol import WebSocketWire, WireOptions

from .apps import RecordingApp


class TCPPair:
    """
    A wire on a real TCP connection, and the peer's end of the socket.
    """

    def __init__(
        self,
        maxWriteBuffer: int = 1 << 20,
        sendBuffer: int | None = None,
        pingInterval: float | None = None,
        pingTimeout: float = 20.0,
    ) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        ours = socket.create_connection(listener.getsockname())
        self.peer, _ = listener.accept()
        listener.close()
        if sendBuffer is not None:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sendBuffer)
            self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sendBuffer)
        self.reactor = MemoryReactorClock()
        self.app = RecordingApp(echo=True)
        self.clock = Clock()
        self.wire = WebSocketWire(
            self.app,
            Connection(Side.SERVER, max_message_size=None),
            clock=self.clock,
            options=WireOptions(pingInterval=pingInterval, pingTimeout=pingTimeout, maxWriteBuffer=maxWriteBuffer),
        )
        self.transport = TCPConnection(ours, self.wire, self.reactor)  # type: ignore[arg-type]
        self.transport.connected = True
        self.wire.makeConnection(self.transport)

    def queued(self) -> int:
        """
        Bytes waiting in Twisted's write buffer.
        """
        t = self.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    def held(self) -> int:
        """
        Bytes held for the peer in user space: Twisted's buffer plus what
        the core has queued and not yet handed over.
        """
        return self.queued() + sum(map(len, self.wire._conn._out))

    def readAll(self, limit: int | None = None) -> bytes:
        """
        Read what the peer can read now (at most C{limit} bytes).
        """
        self.peer.setblocking(False)
        chunks = []
        got = 0
        while limit is None or got < limit:
            try:
                chunk = self.peer.recv(65536 if limit is None else min(65536, limit - got))
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def drain(self) -> bytes:
        """
        Let Twisted write all it holds, reading as the peer meanwhile: all
        the peer received.
        """
        received = bytearray()
        while self.queued():
            received += self.readAll()
            self.transport.doWrite()
        received += self.readAll()
        return bytes(received)

    def close(self) -> None:
        self.peer.close()
        ours = getattr(self.transport, "socket", None)  # gone once the connection was lost
        if ours is not None:
            ours.close()

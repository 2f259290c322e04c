"""
How bytes reach the kernel under Twisted: the one place that reaches into
L{twisted.internet.tcp.Connection} (as L{txpulse.resource.takeOver} is for
C{twisted.web}'s channel).

On plain TCP with nothing queued in Twisted's buffer, a write goes straight
to the socket (L{writeChunks}): Twisted would otherwise hold the bytes until
the reactor's next write phase, which comes only after everything read in
this turn has been processed (a burst of publishes would reach the first
subscriber only after the last one was handled), and would register and
unregister the socket for writability with the poller on every message.
What the kernel does not take goes to Twisted's buffer, which keeps order
and back-pressure as before.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection as TCPConnection

__all__ = ["FULL_READ", "LARGE_READ_SIZE", "directSocket", "writeChunks", "queuedBytes"]

#: What Twisted reads at a time (64 KiB): a read this long means the peer
#: is streaming.
FULL_READ: int = FileDescriptor.bufferSize

#: Read size once a connection has filled a whole read: a peer streaming
#: large messages costs a quarter of the reads and parser passes. Idle and
#: small-message connections never grow. Twisted's C{bufferSize} is also
#: the write buffer size at which it pauses the producer, so such a
#: connection may buffer 256 KiB (not 64 KiB) for its peer before
#: L{txpulse.wire.WebSocketWire.writeBacklog} starts counting.
LARGE_READ_SIZE = 256 << 10

#: At most this many chunks go to one C{sendmsg}; more are joined first
#: (small frames: one copy is cheaper than a long I/O vector, and IOV_MAX
#: is 1024).
_MAX_IOV = 16

#: Windows sockets have no C{sendmsg}: chunks are joined there.
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")


def directSocket(transport: ITransport) -> socket.socket | None:
    """
    The socket under C{transport} if writes may go straight to it: plain
    TCP only, not once C{startTLS} has run on it (C{twisted.internet.ssl}'s
    ports, STARTTLS-style protocols), whose bytes must pass through the TLS
    layer. Decided when a WebSocket attaches: its protocol has no way to
    start TLS later.
    """
    if isinstance(transport, TCPConnection) and not transport.TLS:
        return transport.socket
    return None


def writeChunks(transport: ITransport, sock: socket.socket | None, chunks: list[bytes]) -> int:
    """
    Write C{chunks} to C{transport}, straight to C{sock} (from
    L{directSocket}) when Twisted's buffer is empty; return their size.
    """
    size = sum(map(len, chunks))
    if (
        sock is None
        or transport._tempDataLen  # type: ignore[attr-defined]
        or transport.dataBuffer  # type: ignore[attr-defined]
        or transport.disconnecting  # type: ignore[attr-defined]
        or transport._aborting  # type: ignore[attr-defined]
        or not transport.connected  # type: ignore[attr-defined]
    ):
        # Twisted's buffer holds earlier bytes (order), or the connection is
        # going away (an abortConnection() by anyone leaves it "connected"
        # until the next turn): Twisted's path.
        transport.writeSequence(chunks)
        return size
    try:
        if len(chunks) == 1:
            sent = sock.send(chunks[0])
        elif len(chunks) <= _MAX_IOV and _HAS_SENDMSG:
            sent = sock.sendmsg(chunks)
        else:
            sent = sock.send(b"".join(chunks))
    except OSError:
        # EAGAIN, or an error Twisted will find and report on its own next
        # write: hand it all over.
        sent = 0
    if sent < size:
        transport.writeSequence(_unsent(chunks, sent))
    return size


def _unsent(chunks: Sequence[bytes], sent: int) -> list[bytes]:
    """
    What is left of C{chunks} after the first C{sent} bytes went out.
    """
    for index, chunk in enumerate(chunks):
        if sent < len(chunk):
            return [chunk[sent:], *chunks[index + 1 :]]
        sent -= len(chunk)
    return []


def queuedBytes(transport: object) -> int | None:
    """
    Bytes queued in user space for the peer: Twisted's write buffer, plus,
    for TLS, the application data not yet encrypted. C{None} for a
    transport that does not expose its buffer (tests' fakes, other
    reactors).
    """
    if isinstance(transport, FileDescriptor):
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    inner = getattr(transport, "transport", None)
    appBuffer = getattr(transport, "_appSendBuffer", None)
    if isinstance(inner, FileDescriptor) and isinstance(appBuffer, list):
        # twisted.protocols.tls.TLSMemoryBIOProtocol over TCP.
        return len(inner.dataBuffer) - inner.offset + inner._tempDataLen + sum(map(len, appBuffer))
    return None

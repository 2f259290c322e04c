# -*- test-case-name: tests.wire.test_tcp -*-
"""
How bytes reach the kernel under Twisted: the write policy for
L{twisted.internet.tcp.Connection} (what it reads and changes of Twisted's
write buffer is in L{txpulse.wire.twistedinternals}).

On plain TCP with nothing queued in Twisted's buffer, a write goes straight
to the socket (L{writeChunks}): Twisted would otherwise hold the bytes until
the reactor's next write phase, which comes only after everything read in
this turn has been processed (a burst of publishes would reach the first
subscriber only after the last one was handled), and would register and
unregister the socket for writability with the poller on every message.
What the kernel does not take goes to Twisted's buffer, which keeps order
and back-pressure as before.

What goes to Twisted's buffer is coalesced first (L{writeChunks}): Twisted
keeps one Python object per chunk until the socket is writable again, and
for a peer that does not read, thousands of 2-byte pongs cost some 60 bytes
of memory each, not 2. Small frames are joined into one C{bytes}, and
appended to the small chunk already at the end of Twisted's buffer, so what
a slow peer makes us hold is close to its size in bytes; L{heldBytes}
counts the rest (the per-object overhead) against the write-buffer limit.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection as TCPConnection

from .twistedinternals import (
    chunksInFileDescriptor,
    hasQueuedWrites,
    isAborting,
    queuedInFileDescriptor,
    takeSmallTail,
    tlsPendingCleartext,
)

__all__ = ["FULL_READ", "LARGE_READ_SIZE", "SMALL_READ_SIZE", "directSocket", "writeChunks", "queuedBytes", "heldBytes"]

#: What Twisted reads at a time (64 KiB): a read this long means the peer
#: is streaming.
FULL_READ: int = FileDescriptor.bufferSize

#: Read size once a connection has filled a whole read: a peer streaming
#: large messages costs a quarter of the reads and parser passes. Idle and
#: small-message connections never grow. Twisted's C{bufferSize} is also
#: the write buffer size at which it pauses the producer, so such a
#: connection may buffer 256 KiB (not 64 KiB) for its peer before
#: L{txpulse.wire.protocol.WebSocketWire.writeBacklog} starts counting.
LARGE_READ_SIZE = 256 << 10

#: Read size once a connection has filled a whole read with small messages
#: (a flood of tiny frames): each turn then parses at most a few thousand
#: of its messages, and the connections behind it wait that much less.
SMALL_READ_SIZE = 16 << 10

#: At most this many chunks go to one C{sendmsg}; more are joined first
#: (small frames: one copy is cheaper than a long I/O vector, and IOV_MAX
#: is 1024).
_MAX_IOV = 16

#: Chunks shorter than this are joined with their neighbours before they go
#: to Twisted's buffer (larger ones, e.g. a big message's payload, are
#: handed over as they are: copying them would cost more than the object).
_SMALL_CHUNK = 4096

#: What one object in Twisted's buffer costs beyond its bytes: the C{bytes}
#: header (33 bytes), the allocator's rounding and the list slot. Counted
#: against the write-buffer limit by L{heldBytes}.
CHUNK_OVERHEAD = 64

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
        or transport.disconnecting  # type: ignore[attr-defined]
        or isAborting(transport)
        or not transport.connected  # type: ignore[attr-defined]
    ):
        # Not plain TCP (TLS encrypts each write it is given as a whole), or
        # the connection is going away (an abortConnection() by anyone
        # leaves it "connected" until the next turn): Twisted's path.
        transport.writeSequence(_coalesced(chunks, size))
        return size
    if hasQueuedWrites(transport):
        # Twisted's buffer holds earlier bytes: queue behind them (order).
        _buffer(transport, chunks, size)  # type: ignore[arg-type]
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
        _buffer(transport, _unsent(chunks, sent), size - sent)  # type: ignore[arg-type]
    return size


def _buffer(transport: TCPConnection, chunks: list[bytes], size: int) -> None:
    """
    Hand C{chunks} (C{size} bytes) to the non-empty (or just filled) buffer
    of a plain TCP C{transport}, coalesced: small chunks joined together
    and onto the small chunk at the end of Twisted's buffer, if any.
    """
    chunks = _coalesced(chunks, size)
    first = chunks[0]
    if len(first) < _SMALL_CHUNK:
        last = takeSmallTail(transport, _SMALL_CHUNK)
        if last is not None:
            # Grow the small tail (a copy of at most _SMALL_CHUNK bytes)
            # rather than add an object; writeSequence keeps Twisted's
            # bookkeeping (the producer pause, the writer registration).
            chunks[0] = last + first
    transport.writeSequence(chunks)


def _coalesced(chunks: list[bytes], size: int) -> list[bytes]:
    """
    C{chunks} (C{size} bytes in all) with each run of small ones joined.
    """
    if len(chunks) == 1:
        return chunks
    if size <= FULL_READ:
        return [b"".join(chunks)]
    out: list[bytes] = []
    run: list[bytes] = []
    for chunk in chunks:
        if len(chunk) < _SMALL_CHUNK:
            run.append(chunk)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(chunk)
    if run:
        out.append(b"".join(run))
    return out


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
        return queuedInFileDescriptor(transport)
    inner = getattr(transport, "transport", None)
    appBuffer = tlsPendingCleartext(transport)
    if isinstance(inner, FileDescriptor) and appBuffer is not None:
        # twisted.protocols.tls.TLSMemoryBIOProtocol over TCP.
        return queuedInFileDescriptor(inner) + sum(map(len, appBuffer))
    return None


def heldBytes(transport: object) -> int | None:
    """
    The memory (in bytes) queued for the peer in user space: L{queuedBytes}
    plus L{CHUNK_OVERHEAD} for each object holding them. C{None} for a
    transport that does not expose its buffer.
    """
    queued = queuedBytes(transport)
    if queued is None:
        return None
    inner = transport if isinstance(transport, FileDescriptor) else getattr(transport, "transport", None)
    objects = chunksInFileDescriptor(inner)  # type: ignore[arg-type]
    appBuffer = tlsPendingCleartext(transport)
    if appBuffer is not None:
        objects += len(appBuffer)
    return queued + objects * CHUNK_OVERHEAD

# -*- test-case-name: tests.server.test_site,tests.server.test_fastpath -*-
"""
The send deadline of an HTTP response: whether the peer is taking it.

A response being written must make progress: a reader that stopped reading
a large file would otherwise hold its connection (and the file) for as long
as the response lasts. Progress is what the peer acknowledged: the bytes
written for it, less those Twisted still queues (L{queuedBytes}) and those
in the kernel's send queue (which may hold megabytes that a slow reader
drains long before user space sees the socket writable). Used by
L{txpulse.server.channel.WebSocketChannel}, which aborts a connection whose
response made none for C{sendTimeout} seconds.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from twisted.internet.interfaces import IDelayedCall

from ..wire.tcp import queuedBytes

__all__ = ["SEND_CHECKS", "SendWatch", "kernelUnsent"]

#: Checks per C{sendTimeout} of a response's progress: a response that made
#: none is aborted between C{sendTimeout} and 1.25 times that after the
#: peer last took some of it.
SEND_CHECKS = 4


class SendWatch:
    """
    The deadline of a response being written, in its channel's C{_deadline}
    (a channel has no room for one more attribute: see
    L{WebSocketChannel.__init__<txpulse.server.channel.WebSocketChannel.__init__>}):
    counts the bytes written for the peer, and is checked every
    C{sendTimeout / SEND_CHECKS} seconds for progress (L{observe}).

    @ivar call: the next check (C{None} until the resource returned).
    @ivar written: bytes of body written since the request was received.
    @ivar drained: at the last check, how many of them the peer had taken.
    @ivar quiet: checks in a row without progress.
    """

    __slots__ = ("call", "written", "drained", "quiet")

    def __init__(self) -> None:
        # Scheduled only when the resource returns still answering (see
        # WebSocketChannel.allContentReceived).
        self.call: IDelayedCall | None = None
        self.written = 0
        self.drained = 0
        self.quiet = 0

    def active(self) -> bool:
        return self.call is not None and self.call.active()

    def cancel(self) -> None:
        if self.call is not None:
            self.call.cancel()

    def observe(self, transport: Any, paused: bool) -> int | None:
        """
        One check: count it as quiet unless the peer took some of the
        response since the last one (or nothing is queued for it: then the
        resource is not writing, no fault of the peer). On a transport whose
        queue is not known, progress is not being C{paused} by it.

        @return: the bytes Twisted still queues for the peer (C{None}: not
            known), for the log line of an abort.
        """
        queued = queuedBytes(transport)
        if queued is None:
            progress = not paused
        else:
            drained = self.written - queued - kernelUnsent(transport)
            progress = queued == 0 or drained > self.drained
            self.drained = drained
        self.quiet = 0 if progress else self.quiet + 1
        return queued

    @property
    def expired(self) -> bool:
        """
        Whether the last L{SEND_CHECKS} checks saw no progress.
        """
        return self.quiet >= SEND_CHECKS


def kernelUnsent(transport: Any) -> int:
    """
    Bytes in the kernel's send queue of C{transport}'s socket, not yet
    acknowledged by the peer (Linux C{SIOCOUTQ}); 0 where that is not known.
    """
    try:
        import fcntl
        import termios

        handle = transport.getHandle()
        if not isinstance(handle, socket.socket):
            handle = transport.transport.getHandle()  # TLS over TCP
        if not isinstance(handle, socket.socket):
            return 0
        unsent: int = struct.unpack("i", fcntl.ioctl(handle.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (ImportError, AttributeError, OSError, ValueError):
        return 0
    return unsent

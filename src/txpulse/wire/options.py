# -*- test-case-name: tests.wire.test_protocol -*-
"""
L{WireOptions}: the wire's share of the connection settings (keepalive,
timeouts, the write-buffer limit, the observer).

A separate module because the options are shared by every connection of a
resource or client endpoint and are built once, from
L{txpulse.settings.ConnectionSettings}, where each setting is declared and
checked; L{txpulse.wire.protocol.WebSocketWire} only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import ConnectionSettings
from .interfaces import ConnectionObserver

__all__ = ["WireOptions"]

#: The server's connection settings, whose defaults L{WireOptions} has.
_SERVER_DEFAULTS = ConnectionSettings()


@dataclass(frozen=True, slots=True)
class WireOptions:
    """
    Timing and buffering settings, shared by every connection of a resource
    (or client endpoint).

    @ivar pingInterval: seconds of silence from the peer after which a ping
        is sent; C{None} disables keepalive.
    @ivar pingTimeout: seconds to wait after that ping for I{any} frame from
        the peer (a pong, or data: a busy peer is alive even if its pong is
        late); then the connection is closed with 1011 and dropped.
    @ivar idleTimeout: seconds without a message (text or binary) from the
        peer after which the connection is closed with 1001; C{None} for
        never.
    @ivar closeTimeout: seconds to wait for the peer to finish the close
        handshake (and for the TCP connection to go) before aborting it.
    @ivar maxWriteBuffer: how much memory (in bytes, counting each queued
        object's overhead, see L{txpulse.wire.tcp.heldBytes}) the queue for a
        peer may grow once the transport's buffer is full (see
        L{txpulse.wire.protocol.WebSocketWire.writeBacklog}); past it the
        connection is aborted. Once the queue passes half of it, the peer is
        no longer read from until the transport's buffer drains, so replies
        to the peer's own frames (pongs, echoes) stop there, plus the
        replies to the read that crossed it; the other half is for what the
        application sends.
    @ivar observer: told when each connection opens and closes.
    """

    # The defaults and the checks are those of ConnectionSettings (the
    # server's), where each setting is declared once.
    pingInterval: float | None = _SERVER_DEFAULTS.pingInterval
    pingTimeout: float = _SERVER_DEFAULTS.pingTimeout
    idleTimeout: float | None = _SERVER_DEFAULTS.idleTimeout
    closeTimeout: float = _SERVER_DEFAULTS.closeTimeout
    maxWriteBuffer: int = _SERVER_DEFAULTS.maxWriteBuffer
    observer: ConnectionObserver | None = None

    def __post_init__(self) -> None:
        ConnectionSettings(
            pingInterval=self.pingInterval,
            pingTimeout=self.pingTimeout,
            idleTimeout=self.idleTimeout,
            closeTimeout=self.closeTimeout,
            maxWriteBuffer=self.maxWriteBuffer,
        )

    @classmethod
    def fromSettings(cls, settings: ConnectionSettings, observer: ConnectionObserver | None = None) -> WireOptions:
        """
        The wire's share of C{settings}: keepalive, timeouts and the write
        buffer.
        """
        return cls(
            pingInterval=settings.pingInterval,
            pingTimeout=settings.pingTimeout,
            idleTimeout=settings.idleTimeout,
            closeTimeout=settings.closeTimeout,
            maxWriteBuffer=settings.maxWriteBuffer,
            observer=observer,
        )

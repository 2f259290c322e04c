# -*- test-case-name: tests.wire.test_protocol -*-
"""
L{WireState}: every per-connection attribute of
L{txpulse.wire.protocol.WebSocketWire}, declared once, with its type.

The wire is one object per connection, on the hot path of every message,
so it keeps its state in C{__slots__} (no per-instance C{__dict__}: the
memory of an idle connection is a number we publish). Its behaviour is
split by job into mixins (L{txpulse.wire.keepalive},
L{txpulse.wire.backpressure}, L{txpulse.wire.closing},
L{txpulse.wire.delivery}, L{txpulse.wire.extras}), each with
C{__slots__ = ()}; they all derive from this class, so the slots are laid
out once (the instance is as small as when the wire was a single class,
and the mixins share one layout instead of conflicting), and mypy knows
the type of every attribute a mixin reads or sets. Their initial values
are set by C{WebSocketWire.__init__}.

The methods one part calls on another are declared here too (for the type
checker only), so each mixin states what it relies on of the others.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime, ITransport

from ..core.connection import Connection
from .interfaces import WebSocketProtocol
from .options import WireOptions
from .turns import TurnFlusher

if TYPE_CHECKING:  # pragma: no cover
    from twisted.web.server import Request

__all__ = ["WireState"]


class WireState:
    """
    The slots of a L{txpulse.wire.protocol.WebSocketWire} (the public ones
    are described there).
    """

    __slots__ = (
        "_app",
        "_conn",
        "_clock",
        "_options",
        "transport",
        "subprotocol",
        "request",
        "identity",
        "closeCode",
        "closeReason",
        "_dispatching",
        "_pending",
        "_timer",
        "_lastReceived",
        "_lastMessage",
        "_pingSentAt",
        "_closing",
        "_writePaused",
        "_bufferedWhilePaused",
        "_queuedAtPause",
        "_socket",
        "_producer",
        "_connected",
        "_transportClosing",
        "_readHolds",
        "_drainMark",
        "_linger",
        "_batch",
        "_turns",
        "openedAt",
        "messagesIn",
        "messagesOut",
        "bytesIn",
        "bytesOut",
        "pingRoundTrip",
    )

    # -- what the connection is ---------------------------------------------
    #: The application's protocol (C{None} once the connection is lost).
    _app: WebSocketProtocol
    #: The sans-IO core.
    _conn: Connection
    _clock: IReactorTime
    _options: WireOptions
    transport: ITransport | None
    subprotocol: str | None
    request: Request | None
    identity: object
    closeCode: int | None
    closeReason: str
    #: Plain TCP's socket, for direct writes (L{txpulse.wire.tcp.directSocket}).
    _socket: socket.socket | None
    #: Between C{makeConnection} and C{connectionLost}.
    _connected: bool

    # -- delivery (txpulse.wire.delivery) -----------------------------------
    #: Inside a callback of the application: sends stay queued until the
    #: caller writes them all at once.
    _dispatching: bool
    #: Events held back while the application digests an awaitable.
    _pending: list[object] | None

    # -- keepalive (txpulse.wire.keepalive) ---------------------------------
    #: The one timer this connection has.
    _timer: IDelayedCall | None
    _lastReceived: float
    _lastMessage: float
    _pingSentAt: float | None

    # -- closing (txpulse.wire.closing) -------------------------------------
    #: A close frame crossed, or the core asked for the transport to go.
    _closing: bool
    _transportClosing: bool
    #: Whether to half-close and wait for the peer (not once it is
    #: presumed gone).
    _linger: bool

    # -- back-pressure (txpulse.wire.backpressure) --------------------------
    _writePaused: bool
    _bufferedWhilePaused: int
    _queuedAtPause: int
    _producer: IPushProducer | None
    #: Why reading is paused: C{HOLD_*} bits.
    _readHolds: int
    _drainMark: int

    # -- per-turn batching (txpulse.wire.turns) -----------------------------
    #: Bytes queued in this turn's batch; -1 for none open.
    _batch: int
    _turns: TurnFlusher | None

    # -- counters -----------------------------------------------------------
    openedAt: float
    messagesIn: int
    messagesOut: int
    bytesIn: int
    bytesOut: int
    pingRoundTrip: float | None

    if TYPE_CHECKING:  # pragma: no cover
        # What the parts call on one another (each is defined once, in the
        # module named).

        # txpulse.wire.protocol
        def _flush(self) -> None: ...

        def _send(self, method: Any, payload: Any) -> bool: ...

        # txpulse.wire.keepalive
        def _scheduleTimer(self, now: float) -> None: ...

        def _cancelTimer(self) -> None: ...

        def _pongReceived(self) -> None: ...

        # txpulse.wire.closing
        def loseConnection(self, code: int = ..., reason: str = "") -> None: ...

        def abortConnection(self) -> None: ...

        def _startClosing(self) -> None: ...

        # txpulse.wire.backpressure
        def _drained(self) -> int | None: ...

        def _pauseReading(self, reason: int) -> None: ...

        def _resumeReading(self, reasons: int) -> None: ...

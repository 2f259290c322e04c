"""
The core's vocabulary: which side a L{txpulse.core.connection.Connection}
plays, the states it goes through, and the control-frame events it reports
(a complete text message is a plain C{str}, a binary message plain
C{bytes}: no event object per message on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Side", "State", "Ping", "Pong", "Close", "Event"]


class Side(IntEnum):
    """
    Which end of the connection this core plays (RFC 6455 §5.1: masking).
    """

    SERVER = 0
    CLIENT = 1


class State(IntEnum):
    """
    Connection states after the opening handshake (RFC 6455 §4-§7).
    """

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclass(frozen=True, slots=True)
class Ping:
    """
    The peer sent a ping (already answered by the core).
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """
    The peer sent a pong.
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """
    A close frame: received from the peer, or sent by us.

    @ivar code: the status code; 1005 when the frame carried none.
    @ivar reason: the UTF-8 reason text.
    """

    code: int
    reason: str = ""


#: What L{Connection.events_received} returns: C{str} is a text message,
#: C{bytes} a binary message.
Event = str | bytes | Ping | Pong | Close

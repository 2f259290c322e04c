# -*- test-case-name: tests.core.test_connection -*-
"""
What one L{txpulse.core.connection.Connection} holds: its fields, declared
once, with their types and invariants.

Why a module of its own: a connection's behaviour is split by job
(L{txpulse.core.sending}, L{txpulse.core.closing},
L{txpulse.core.receiving}, and the hot loop in L{txpulse.core.connection}),
and each part reads and writes the same fields. Declaring them here, at the
root of that chain of classes, gives every part the same typed view of them
(mypy checks each assignment against C{__slots__}) and keeps in one place
what an idle connection costs in memory, a figure the project publishes:
no C{__dict__}, one slot per field, and no buffer until one is needed.

The values are set by L{txpulse.core.connection.Connection.__init__}.
"""

from __future__ import annotations

from collections.abc import Callable

from .assembly import AssemblyBudget, MessageAssembler
from .deflate import Deflate
from .events import Close, Event, State
from .exceptions import ProtocolError
from .utf8 import Utf8Decoder

__all__ = ["ConnectionFields"]


class ConnectionFields:
    """
    The fields of a connection (see the module docstring); the public ones
    are documented on L{txpulse.core.connection.Connection}. Not used alone.
    """

    __slots__ = (
        "_client",
        "state",
        "max_message_size",
        "max_frame_size",
        "_max_single",
        "_mask_key",
        "_buf",
        "_need",
        "_partial_decoder",
        "_partial_checked",
        "_events",
        "_out",
        "_message",
        "_deflate",
        "_budget",
        "_discard",
        "_eof",
        "_reply_pending",
        "_fail_pending",
        "hold_close_reply",
        "close_received",
        "close_sent",
        "error",
    )

    # -- who we are, and the limits ------------------------------------------

    #: Whether this side is the client (it masks what it sends, and requires
    #: unmasked frames from the server).
    _client: bool
    state: State
    #: The limits; "no limit" is a huge integer, so the parser compares
    #: integers only.
    max_message_size: int
    max_frame_size: int
    #: min(max_frame_size, max_message_size): the one bound the hot path
    #: checks for an unfragmented frame.
    _max_single: int
    #: Returns n random bytes (the client's masking keys).
    _mask_key: Callable[[int], bytes]

    # -- input ------------------------------------------------------------------

    #: The bytes received and not parsed yet (an incomplete frame), or None
    #: when every byte received was parsed.
    _buf: bytearray | None
    #: How many more bytes the frame at the start of _buf needs (0: unknown,
    #: its header is incomplete).
    _need: int
    #: The validation so far of the incomplete frame at the start of _buf
    #: (see Receiving._check_partial_text): its decoder (None: not a frame
    #: to validate) and how many of its payload bytes were fed to it (-1: the
    #: frame was not examined yet).
    _partial_decoder: Utf8Decoder | None
    _partial_checked: int
    #: Parsed, not yet taken by events_received().
    _events: list[Event]
    #: The fragmented or compressed message being received, if any.
    _message: MessageAssembler | None
    _deflate: Deflate | None
    _budget: AssemblyBudget | None
    #: Set once no further input may be parsed (peer's close, failure, EOF).
    _discard: bool

    # -- output -----------------------------------------------------------------

    #: Serialized frames, not yet taken by data_to_send().
    _out: list[bytes]

    # -- the close handshake ------------------------------------------------

    #: Whether this side must now close the TCP connection.
    _eof: bool
    #: The peer's close arrived and our reply is not queued yet.
    _reply_pending: bool
    #: The close frame a failure will queue at the next data_to_send().
    _fail_pending: Close | None
    hold_close_reply: bool
    close_received: Close | None
    close_sent: Close | None
    error: ProtocolError | None

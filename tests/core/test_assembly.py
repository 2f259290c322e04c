"""
Tests for L{txpulse.core.assembly.AssemblyBudget}: what the incomplete
messages of several connections hold together, charged as their buffers grow
(inflated bytes for compressed messages), given back when a message
completes or its connection fails or ends.
"""

from __future__ import annotations

import zlib

import pytest

from txpulse.core.assembly import AssemblyBudget
from txpulse.core.connection import Close, Connection, Side, State
from txpulse.core.deflate import Deflate, DeflateParameters
from txpulse.core.frames import CloseCode, Opcode

from ..support.core import assert_failed
from ..support.frames import client_frame, close_payload

KIB = 1 << 10


def compressed_fragments(*parts: bytes) -> list[bytes]:
    """
    The payloads of the fragments of one compressed message (RFC 7692), one
    per item of C{parts}, each flushed so it inflates to exactly its part;
    the last is stripped of the C{00 00 FF FF} tail.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH) for part in parts]
    out[-1] = out[-1][:-4]
    return out


def server(budget: AssemblyBudget, *, deflate: bool = False) -> Connection:
    """
    A server core sharing C{budget}, with permessage-deflate agreed when
    C{deflate} is set.
    """
    codec = Deflate(DeflateParameters(), is_server=True) if deflate else None
    return Connection(Side.SERVER, deflate=codec, budget=budget)


def test_budget_charges_what_fits_and_releases() -> None:
    """
    L{AssemblyBudget.charge} takes what fits and refuses (taking nothing)
    what would pass the limit; L{AssemblyBudget.release} gives it back.
    """
    budget = AssemblyBudget(10)
    assert budget.charge(6)
    assert not budget.charge(5)
    assert budget.used == 6
    assert budget.charge(4)
    budget.release(10)
    assert budget.used == 0


@pytest.mark.parametrize("limit", [0, -1])
def test_budget_must_be_positive(limit: int) -> None:
    """
    A budget of nothing (or less) is a mistake, not "no limit".
    """
    with pytest.raises(ValueError):
        AssemblyBudget(limit)


def test_two_connections_share_the_budget_in_inflated_bytes() -> None:
    """
    A compressed first fragment is charged what it inflates to, not what it
    cost on the wire: a second connection whose first fragment would take
    the total past the shared budget fails with 1013 (its charge is not
    kept), the first one is unaffected, and completing the first message
    gives its charge back, so a third connection fits again.
    """
    budget = AssemblyBudget(96 * KIB)
    first = server(budget, deflate=True)
    head, tail = compressed_fragments(b"\0" * (64 * KIB), b"end")
    assert len(head) < 1 * KIB
    first.receive_data(client_frame(Opcode.BINARY, head, fin=False, rsv1=True))
    assert first.events_received() == []
    assert budget.used == 64 * KIB

    second = server(budget, deflate=True)
    head2, _ = compressed_fragments(b"\1" * (64 * KIB), b"")
    second.receive_data(client_frame(Opcode.BINARY, head2, fin=False, rsv1=True))
    assert_failed(second, CloseCode.TRY_AGAIN_LATER)
    assert budget.used == 64 * KIB

    first.receive_data(client_frame(Opcode.CONT, tail))
    assert first.events_received() == [b"\0" * (64 * KIB) + b"end"]
    assert first.state is State.OPEN
    assert budget.used == 0

    third = server(budget, deflate=True)
    third.receive_data(client_frame(Opcode.BINARY, head2, fin=False, rsv1=True))
    assert third.state is State.OPEN
    assert budget.used == 64 * KIB


def test_uncompressed_fragments_are_charged_as_received() -> None:
    """
    Fragments of an uncompressed message count too, fragment by fragment:
    the one that would pass the budget fails its connection with 1013.
    """
    budget = AssemblyBudget(10)
    conn = server(budget)
    conn.receive_data(client_frame(Opcode.TEXT, b"12345", fin=False))
    conn.receive_data(client_frame(Opcode.CONT, b"6789", fin=False))
    assert budget.used == 9
    conn.receive_data(client_frame(Opcode.CONT, b"ab", fin=False))
    assert_failed(conn, CloseCode.TRY_AGAIN_LATER)
    assert budget.used == 0


def test_last_fragment_is_not_charged() -> None:
    """
    The fragment that completes a message is not held past its read: it
    needs no room in the budget, and the whole charge is given back.
    """
    budget = AssemblyBudget(4)
    conn = server(budget)
    conn.receive_data(client_frame(Opcode.BINARY, b"abcd", fin=False) + client_frame(Opcode.CONT, b"efgh" * 100))
    assert conn.events_received() == [b"abcd" + b"efgh" * 100]
    assert budget.used == 0


def test_unfragmented_messages_never_touch_the_budget() -> None:
    """
    A message in one frame, compressed or not, is delivered whatever the
    budget holds (here, all of it).
    """
    budget = AssemblyBudget(1)
    assert budget.charge(1)
    plain = server(budget)
    plain.receive_data(client_frame(Opcode.TEXT, b"x" * 200) + client_frame(Opcode.BINARY, b"y"))
    assert plain.events_received() == ["x" * 200, b"y"]
    compressed = server(budget, deflate=True)
    (payload,) = compressed_fragments(b"z" * (16 * KIB))
    compressed.receive_data(client_frame(Opcode.BINARY, payload, rsv1=True))
    assert compressed.events_received() == [b"z" * (16 * KIB)]
    assert budget.used == 1


def test_end_of_connection_releases_the_charge() -> None:
    """
    A message that will never complete because the TCP connection ended
    (L{Connection.receive_eof}, which the wire calls from C{connectionLost})
    gives its charge back, once.
    """
    budget = AssemblyBudget(100 * KIB)
    conn = server(budget, deflate=True)
    head, _ = compressed_fragments(b"\0" * (64 * KIB), b"")
    conn.receive_data(client_frame(Opcode.BINARY, head, fin=False, rsv1=True))
    assert budget.used == 64 * KIB
    conn.receive_eof()
    assert budget.used == 0
    conn.receive_eof()
    assert budget.used == 0


def test_peer_close_releases_the_charge() -> None:
    """
    The peer's close in the middle of a message ends it: no frame may
    follow (RFC 6455 §5.5.1), so its charge is given back at once.
    """
    budget = AssemblyBudget(100)
    conn = server(budget)
    conn.receive_data(client_frame(Opcode.TEXT, b"partial", fin=False))
    assert budget.used == 7
    conn.receive_data(client_frame(Opcode.CLOSE, close_payload(1000)))
    assert conn.events_received() == [Close(1000)]
    assert budget.used == 0


def test_failure_releases_the_charge() -> None:
    """
    A connection failed in the middle of a message, by the peer (invalid
    UTF-8 in a later fragment) or locally (L{Connection.fail}), gives its
    charge back.
    """
    budget = AssemblyBudget(100)
    peer = server(budget)
    peer.receive_data(client_frame(Opcode.TEXT, b"fine", fin=False))
    local = server(budget)
    local.receive_data(client_frame(Opcode.BINARY, b"held", fin=False))
    assert budget.used == 8
    peer.receive_data(client_frame(Opcode.CONT, b"\xff", fin=False))
    assert_failed(peer, CloseCode.INVALID_DATA)
    assert budget.used == 4
    local.fail(CloseCode.INTERNAL_ERROR)
    assert budget.used == 0


def test_oversized_inflation_releases_the_charge() -> None:
    """
    A compressed message that inflates past C{max_message_size} in a later
    fragment fails with 1009, and what its earlier fragments held is given
    back.
    """
    budget = AssemblyBudget(1 << 20)
    conn = Connection(
        Side.SERVER, max_message_size=64 * KIB, deflate=Deflate(DeflateParameters(), is_server=True), budget=budget
    )
    head, more, _ = compressed_fragments(b"a" * (40 * KIB), b"b" * (40 * KIB), b"")
    conn.receive_data(client_frame(Opcode.BINARY, head, fin=False, rsv1=True))
    assert budget.used == 40 * KIB
    conn.receive_data(client_frame(Opcode.CONT, more, fin=False))
    assert_failed(conn, CloseCode.MESSAGE_TOO_BIG)
    assert budget.used == 0

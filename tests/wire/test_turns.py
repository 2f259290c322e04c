"""
Sends outside a connection's own read are written once per reactor turn
(L{txpulse.wire.turns}): the first at once, the rest at the end of the
turn or when the batch fills, in order, with the write limit unchanged.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from wsproto.frame_protocol import Opcode as WOpcode

from txpulse.core.connection import Connection, Side
from txpulse.wire import WebSocketWire, WireOptions
from txpulse.wire.turns import MAX_BATCH, TurnFlusher, flusherFor

from ..support.apps import RecordingApp
from ..support.frames import client_frame, server_frames
from ..support.tcppair import TCPPair
from ..support.transports import CountingTransport


def make_wires(count: int, clock: Clock) -> list[tuple[WebSocketWire, CountingTransport]]:
    wires = []
    for _ in range(count):
        transport = CountingTransport()
        wire = WebSocketWire(
            RecordingApp(echo=True),
            Connection(Side.SERVER, max_message_size=1 << 20),
            clock=clock,
            options=WireOptions(pingInterval=None),
        )
        wire.makeConnection(transport)
        wires.append((wire, transport))
    return wires


def texts(transport: CountingTransport) -> list[str]:
    return [frame.payload for frame in server_frames(transport.value()) if frame.opcode is WOpcode.TEXT]


def test_first_message_of_a_turn_leaves_at_once_the_rest_at_its_end() -> None:
    clock = Clock()
    [(wire, transport)] = make_wires(1, clock)
    wire.sendTextMessage("m0")
    assert texts(transport) == ["m0"], "the first message of a quiet connection waits for nothing"
    for i in range(1, 100):
        wire.sendTextMessage(f"m{i}")
    assert texts(transport) == ["m0"], "the rest of the turn is queued"
    writes = transport.writeCalls
    clock.advance(0)
    assert texts(transport) == [f"m{i}" for i in range(100)]
    assert transport.writeCalls == writes + 1, "the turn's batch is one write"
    wire.sendBytesMessage(b"next turn")
    assert server_frames(transport.value())[-1].payload == b"next turn", "a new turn starts quiet again"


def test_a_loop_over_many_connections_makes_two_writes_per_connection() -> None:
    """
    What a plain broadcast loop does (Twisted's API: one send per message
    per connection): 50 messages to 200 connections is 400 writes, not
    10,000, and every connection gets every message in order.
    """
    clock = Clock()
    wires = make_wires(200, clock)
    for i in range(50):
        for wire, _transport in wires:
            wire.sendTextMessage(f"n{i}")
    clock.advance(0)
    for _wire, transport in wires:
        assert texts(transport) == [f"n{i}" for i in range(50)]
    assert sum(t.writeCalls for _w, t in wires) == 400


def test_a_full_batch_is_written_without_waiting_for_the_turn() -> None:
    clock = Clock()
    [(wire, transport)] = make_wires(1, clock)
    chunk = b"x" * 4096
    wire.sendBytesMessage(chunk)  # the first: written at once
    for _ in range(MAX_BATCH // len(chunk)):
        wire.sendBytesMessage(chunk)
    # The first at once; the rest queued until they reach MAX_BATCH, which
    # the last one does: all written before the turn ends.
    assert len(server_frames(transport.value())) == 1 + MAX_BATCH // len(chunk)
    writes = transport.writeCalls
    clock.advance(0)
    assert transport.writeCalls == writes, "nothing was left for the end of the turn"


def test_a_ping_or_a_close_writes_the_queue_first() -> None:
    clock = Clock()
    [(wire, transport)] = make_wires(1, clock)
    wire.sendTextMessage("a")
    wire.sendTextMessage("b")
    wire.ping(b"p")
    wire.sendTextMessage("c")
    wire.loseConnection(1001, "going away")
    clock.advance(0)
    frames = [(f.opcode, f.payload) for f in server_frames(transport.value())]
    assert frames[:4] == [(WOpcode.TEXT, "a"), (WOpcode.TEXT, "b"), (WOpcode.PING, b"p"), (WOpcode.TEXT, "c")]
    assert frames[4][0] is WOpcode.CLOSE


def test_a_read_in_between_writes_the_queue_before_its_replies() -> None:
    clock = Clock()
    [(wire, transport)] = make_wires(1, clock)
    wire.sendTextMessage("one")
    wire.sendTextMessage("two")
    wire.dataReceived(client_frame(WOpcode.TEXT, b"echo"))
    assert texts(transport) == ["one", "two", "echo"]
    clock.advance(0)
    assert texts(transport) == ["one", "two", "echo"], "nothing is written twice"


def test_a_connection_lost_with_a_batch_open_is_harmless() -> None:
    clock = Clock()
    [(wire, transport)] = make_wires(1, clock)
    wire.sendTextMessage("a")
    wire.sendTextMessage("b")
    wire.connectionLost()
    clock.advance(0)
    assert texts(transport) == ["a"]


def test_one_flusher_and_one_delayed_call_per_clock() -> None:
    clock = Clock()
    assert flusherFor(clock) is flusherFor(clock)
    assert isinstance(flusherFor(clock), TurnFlusher)
    wires = make_wires(30, clock)
    for wire, _t in wires:
        wire.sendTextMessage("x")
        wire.sendTextMessage("y")
    assert len(clock.getDelayedCalls()) == 1


def test_on_a_real_socket_the_rest_of_the_turn_arrives_at_its_end() -> None:
    pair = TCPPair()
    try:
        for i in range(100):
            pair.wire.sendTextMessage(f"{i:03}")
        first = pair.drain()
        assert [f.payload for f in server_frames(first)] == ["000"]
        pair.clock.advance(0)
        rest = pair.drain()
        assert [f.payload for f in server_frames(first + rest)] == [f"{i:03}" for i in range(100)]
    finally:
        pair.close()

"""
Tests for L{txpulse.chat}: rooms on the hub, join/leave notices, messages
with sender and time, and refusals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.chat import ChatFactory
from txpulse.core.connection import Connection, Side
from txpulse.core.frames import Opcode
from txpulse.hub import Hub
from txpulse.wire import WebSocketWire, WireOptions

from .helpers import CountingTransport, client_frame, server_frames


def join(
    factory: ChatFactory, room: str | None, name: str | None, identity: object = None
) -> tuple[WebSocketWire, CountingTransport]:
    transport = CountingTransport()
    wire = WebSocketWire(
        factory.buildProtocol(None),
        Connection(Side.SERVER),
        clock=factory.hub.clock,
        options=WireOptions(pingInterval=None),
        identity=identity,
    )
    wire.makeConnection(transport)
    if room is not None:
        send(wire, {"action": "join", "room": room, "name": name})
    return wire, transport


def send(wire: WebSocketWire, message: Any) -> None:
    """
    One message from the client, in a reactor turn of its own.
    """
    wire.dataReceived(
        client_frame(Opcode.TEXT, (message if isinstance(message, str) else json.dumps(message)).encode())
    )
    wire._clock.advance(0)  # the turn ends: the hub flushes what it batched


def received(transport: CountingTransport) -> list[Any]:
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def events(transport: CountingTransport) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for message in received(transport):
        data = message.get("data", {})
        out.append(
            (data.get("type"), data.get("name"), data.get("text", ""))
            if "data" in message
            else ("error", message["error"])
        )
    return out


def test_join_say_and_leave_in_a_room() -> None:
    """
    Everyone in the room sees joins, messages (with sender and time) and
    leaves, as hub envelopes on topic C{chat/ROOM}.
    """
    factory = ChatFactory(Hub(clock=Clock()), now=lambda: 1234.5)
    alice, alices = join(factory, "lobby", "alice")
    bob, bobs = join(factory, "lobby", "bob")
    send(alice, {"action": "say", "text": "<b>hi</b> bob"})
    bob.connectionLost(Failure(ConnectionDone()))
    assert events(alices) == [
        ("join", "alice", ""),
        ("join", "bob", ""),
        ("message", "alice", "<b>hi</b> bob"),
        ("leave", "bob", ""),
    ]
    assert received(alices)[2] == {
        "topic": "chat/lobby",
        "data": {"type": "message", "name": "alice", "time": 1234.5, "text": "<b>hi</b> bob"},
    }
    assert events(bobs) == [("join", "bob", ""), ("message", "alice", "<b>hi</b> bob")]


def test_rooms_are_separate() -> None:
    """
    A message in one room does not reach another.
    """
    factory = ChatFactory(Hub(clock=Clock()))
    alice, alices = join(factory, "lobby", "alice")
    carol, carols = join(factory, "kitchen", "carol")
    send(alice, {"action": "say", "text": "secret"})
    assert ("message", "alice", "secret") not in events(carols)


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"action": "say", "text": "hi"}], "join a room first"),
        ([{"action": "join", "room": "r", "name": ""}], "name must be"),
        ([{"action": "join", "room": "r", "name": "x" * 33}], "name must be"),
        ([{"action": "join", "room": "", "name": "a"}], "room must be"),
        (
            [{"action": "join", "room": "r", "name": "a"}, {"action": "join", "room": "r", "name": "a"}],
            "already joined",
        ),
        ([{"action": "join", "room": "r", "name": "a"}, {"action": "say", "text": ""}], "non-empty"),
        ([{"action": "join", "room": "r", "name": "a"}, {"action": "say", "text": "x" * 2001}], "longer than"),
        (["not json"], "JSON object"),
        ([{"action": "shout"}], "action must be"),
    ],
)
def test_refusals_are_error_replies(messages: list[Any], error: str) -> None:
    """
    Bad requests get C{{"error": ...}} and the connection stays open.
    """
    wire, transport = join(ChatFactory(Hub(clock=Clock())), None, None)
    for message in messages:
        send(wire, message)
    assert any(kind == "error" and error in detail for kind, *rest in events(transport) for detail in rest[:1])
    assert wire.isOpen()


def test_joining_a_room_goes_through_the_hub_authorization() -> None:
    """
    The hub's per-topic hook decides who may join which room.
    """
    hub = Hub(authorize=lambda identity, action, topic: topic == "chat/public" or identity == "admin", clock=Clock())
    factory = ChatFactory(hub)
    _, guests = join(factory, "staff", "guest", identity="guest")
    assert events(guests) == [("error", "not allowed to join 'staff'")]
    _, admins = join(factory, "staff", "root", identity="admin")
    assert events(admins) == [("join", "root", "")]

"""
The chat's resume (L{txpulse.demos.chat}, C{"since"} on a join): what
C{chat.js} relies on to show no lost and no doubled message across a
reconnection, in memory.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.frames import Opcode
from txpulse.demos.chat import ChatFactory
from txpulse.pubsub import Hub
from txpulse.wire.protocol import WebSocketWire

from ..support.frames import client_frame, server_frames
from ..support.hub import connect
from ..support.transports import CountingTransport


def send(wire: WebSocketWire, clock: Clock, message: Any) -> None:
    """
    One message from the client, in a reactor turn of its own.
    """
    wire.dataReceived(client_frame(Opcode.TEXT, json.dumps(message).encode()))
    clock.advance(0)  # the turn ends: the hub flushes what it batched


def received(transport: CountingTransport) -> list[Any]:
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def chat() -> tuple[ChatFactory, Clock]:
    clock = Clock()
    return ChatFactory(Hub(clock=clock), now=lambda: 1.0), clock


def test_a_join_without_since_gets_no_answer() -> None:
    """
    A client of the first version (no C{"since"}) gets the events only,
    as before (with their positions, which it may ignore).
    """
    factory, clock = chat()
    wire, transport = connect(factory)
    send(wire, clock, {"action": "join", "room": "lobby", "name": "alice"})
    (event,) = received(transport)
    assert event["data"]["type"] == "join" and "subscribed" not in event


def test_a_first_join_with_since_null_is_answered_with_the_rooms_position() -> None:
    """
    C{"since": null} asks for the room's position: the answer comes before
    the client's own join event, which is the next offset.
    """
    factory, clock = chat()
    other, _ = connect(factory)
    send(other, clock, {"action": "join", "room": "lobby", "name": "bob"})
    wire, transport = connect(factory)
    send(wire, clock, {"action": "join", "room": "lobby", "name": "alice", "since": None})
    answer, event = received(transport)
    assert answer == {"subscribed": "lobby", "offset": 1, "epoch": answer["epoch"]}
    assert (event["data"]["name"], event["offset"], event["epoch"]) == ("alice", 2, answer["epoch"])


def test_a_rejoin_from_a_position_replays_what_was_missed() -> None:
    """
    A client that lost its connection and joins again from the last
    position it showed gets C{"recovered": true}, then every event it
    missed (its own leave included), then its new join: nothing lost,
    nothing twice.
    """
    factory, clock = chat()
    alice, alices = connect(factory)
    send(alice, clock, {"action": "join", "room": "lobby", "name": "alice", "since": None})
    bob, _ = connect(factory)
    send(bob, clock, {"action": "join", "room": "lobby", "name": "bob"})
    last = received(alices)[-1]
    alice.connectionLost(Failure(ConnectionDone()))
    send(bob, clock, {"action": "say", "text": "are you there?"})
    again, agains = connect(factory)
    since = {"offset": last["offset"], "epoch": last["epoch"]}
    send(again, clock, {"action": "join", "room": "lobby", "name": "alice", "since": since})
    answer, *events = received(agains)
    assert answer == {"subscribed": "lobby", "recovered": True, "offset": 4, "epoch": last["epoch"]}
    assert [(e["offset"], e["data"]["type"], e["data"]["name"]) for e in events] == [
        (3, "leave", "alice"),
        (4, "message", "bob"),
        (5, "join", "alice"),
    ]


def test_a_rejoin_from_another_epoch_is_not_recovered() -> None:
    """
    From a position of another epoch (a restarted server), the answer is
    C{"recovered": false} with the room's position; only the live events
    follow.
    """
    factory, clock = chat()
    wire, transport = connect(factory)
    since = {"offset": 7, "epoch": "gone-1"}
    send(wire, clock, {"action": "join", "room": "lobby", "name": "alice", "since": since})
    answer, event = received(transport)
    assert answer == {"subscribed": "lobby", "recovered": False, "offset": 0, "epoch": answer["epoch"]}
    assert event["offset"] == 1 and event["data"]["type"] == "join"


def test_a_bad_since_refuses_the_join() -> None:
    """
    A C{"since"} that is not C{null} or a position refuses the join with
    an error (the connection stays open and may join properly).
    """
    factory, clock = chat()
    wire, transport = connect(factory)
    send(wire, clock, {"action": "join", "room": "lobby", "name": "alice", "since": {"offset": -1}})
    assert list(received(transport)[0]) == ["error"]
    send(wire, clock, {"action": "join", "room": "lobby", "name": "alice", "since": None})
    assert received(transport)[1]["subscribed"] == "lobby"

"""
Tests for L{txpulse.demos.chat}: rooms on the hub, join/leave notices, messages
with sender and time, and refusals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.frames import Opcode
from txpulse.demos.chat import ChatFactory
from txpulse.pubsub import Hub, PubSubFactory
from txpulse.wire.protocol import WebSocketWire

from ..support.frames import client_frame, server_frames
from ..support.hub import FakeSubscriber, connect
from ..support.transports import CountingTransport


def join(
    factory: ChatFactory | PubSubFactory, room: str | None, name: str | None, identity: object = None
) -> tuple[WebSocketWire, CountingTransport]:
    wire, transport = connect(factory, identity)  # type: ignore[arg-type]
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
            if "error" in message
            else ("notice", message["name"], message["notice"])
        )
    return out


def test_join_say_and_leave_in_a_room() -> None:
    """
    Everyone in the room sees joins, messages (with sender and time) and
    leaves, as hub envelopes whose topic is the room.
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
    said = received(alices)[2]
    assert said == {
        "topic": "lobby",
        "data": {"type": "message", "name": "alice", "time": 1234.5, "text": "<b>hi</b> bob"},
        "offset": 3,  # the room's third event (alice joined, bob joined, she said)
        "epoch": said["epoch"],
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
        (['{"action": "join", "room": "r", "name": NaN}'], "JSON object"),
        (["[" * 100_000], "JSON object"),
        ([{"action": "join", "room": "r\x1fx", "name": "a"}], "control characters"),
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
    hub = Hub(authorize=lambda identity, action, topic: topic == "public" or identity == "admin", clock=Clock())
    factory = ChatFactory(hub)
    _, guests = join(factory, "staff", "guest", identity="guest")
    assert events(guests) == [("error", "not allowed to join 'staff'")]
    _, admins = join(factory, "staff", "admin", identity="admin")
    assert events(admins) == [("join", "admin", "")]


def test_a_hub_hook_tells_chat_rooms_from_pubsub_topics() -> None:
    """
    A hook set on the hub, with no hook of the chat's own, sees chat room R
    as C{chat/R} (the name rooms had when they were root topics) and a
    C{/pubsub} topic as it is: a deny-list written for C{chat/staff} keeps
    bob out of the room, and does not mistake the C{/pubsub} topic
    C{"staff"} for it (or the room for it).
    """
    seen: list[tuple[object, str, str]] = []

    def authorize(identity: object, action: str, topic: str) -> bool:
        seen.append((identity, action, topic))
        return not (topic == "chat/staff" and identity == "bob")

    hub = Hub(authorize=authorize, clock=Clock())
    chat, pubsub = ChatFactory(hub), PubSubFactory(hub)
    _, bobInChat = join(chat, "staff", None, identity="bob")
    _, aliceInChat = join(chat, "staff", None, identity="alice")
    bobInPubSub, bobsPubSub = join(pubsub, None, None, identity="bob")
    send(bobInPubSub, {"action": "subscribe", "topic": "staff"})
    assert events(bobInChat) == [("error", "not allowed to join 'staff'")]
    assert events(aliceInChat) == [("join", "alice", "")]
    # /pubsub's "staff" is another topic than the room: nothing of the room.
    (answer,) = received(bobsPubSub)
    assert answer == {"subscribed": "staff", "offset": 0, "epoch": answer["epoch"]}
    assert pubsub.topics.subscribers("staff") == {bobInPubSub}
    assert seen == [
        ("bob", "subscribe", "chat/staff"),
        ("alice", "subscribe", "chat/staff"),
        ("alice", "publish", "chat/staff"),
        ("bob", "subscribe", "staff"),
    ]
    assert chat.topics.authorize is not None and not chat.topics.authorize("bob", "publish", "staff")
    assert pubsub.topics.authorize is authorize


def test_the_name_is_the_authenticated_identity() -> None:
    """
    On a connection with an identity, the name is the identity: asking for
    another name is overridden, and the client is told so (a C{notice}
    reply) before its join; leaving the name out is fine.
    """
    factory = ChatFactory(Hub(clock=Clock()))
    bob, bobs = join(factory, "lobby", "alice", identity="bob")
    send(bob, {"action": "say", "text": "I am alice"})
    assert events(bobs) == [
        ("notice", "bob", "signed in as 'bob': you speak under that name"),
        ("join", "bob", ""),
        ("message", "bob", "I am alice"),
    ]
    carol, carols = join(factory, None, None, identity="carol")
    send(carol, {"action": "join", "room": "lobby"})
    assert events(carols) == [("join", "carol", "")]


def test_speaking_needs_permission_to_publish() -> None:
    """
    Joining a room takes C{subscribe}, saying something C{publish}: a
    member without it reads the room, and its C{say} is an error reply.
    """

    def authorize(identity: object, action: str, topic: str) -> bool:
        return action == "subscribe" or identity == "alice"

    factory = ChatFactory(Hub(clock=Clock()), authorize=authorize)
    alice, alices = join(factory, "lobby", None, identity="alice")
    reader, readers = join(factory, "lobby", None, identity="reader")
    send(reader, {"action": "say", "text": "hello"})
    send(alice, {"action": "say", "text": "hi"})
    assert events(readers) == [
        ("join", "reader", ""),
        ("error", "not allowed to speak in 'lobby'"),
        ("message", "alice", "hi"),
    ]
    assert ("message", "reader", "hello") not in events(alices)


def test_rooms_live_in_the_chat_namespace_only() -> None:
    """
    A room is a topic of the hub namespace C{"chat"}: a subscriber of the
    root namespace's topic of the same name (or of C{chat/ROOM}, the old
    spelling) sees nothing, and what the root publishes there does not
    reach the room.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    alice, alices = join(ChatFactory(hub), "lobby", "alice")
    spy = FakeSubscriber()
    hub.subscribe(spy, "lobby")
    hub.subscribe(spy, "chat/lobby")
    send(alice, {"action": "say", "text": "secret"})
    hub.publish("lobby", {"type": "message", "name": "bob", "text": "forged", "time": 0})
    hub.publish("chat/lobby", {"type": "message", "name": "bob", "text": "forged", "time": 0})
    clock.advance(0)
    assert [m["data"] for m in spy.messages()] == [{"type": "message", "name": "bob", "text": "forged", "time": 0}] * 2
    assert ("message", "bob", "forged") not in events(alices)

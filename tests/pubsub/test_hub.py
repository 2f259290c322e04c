"""
Tests for L{txpulse.pubsub.hub}: subscriptions, fan-out (encoded once, in order),
cleanup, limits, slow subscribers, the JSON protocol and per-topic auth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.exceptions import ConnectionClosed
from txpulse.core.frames import Opcode
from txpulse.pubsub.hub import Hub, HubError, checkEnvelope
from txpulse.pubsub.protocol import PubSubFactory
from txpulse.wire.protocol import WebSocketWire

from ..support.frames import client_frame, server_frames
from ..support.hub import FakeSubscriber, connect, withoutPosition
from ..support.logs import captured_logs
from ..support.tcppair import TCPPair
from ..support.transports import CountingTransport


def test_publish_reaches_every_subscriber_once_encoded_once() -> None:
    """
    Every subscriber of the topic gets C{{"topic": T, "data": D}}, as the
    very same frame object (encoded once); others get nothing.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    a, b, other = FakeSubscriber(), FakeSubscriber(), FakeSubscriber()
    hub.subscribe(a, "news")
    hub.subscribe(b, "news")
    hub.subscribe(other, "sport")
    hub.publish("news", {"headline": "hi", "n": [1, 2]})
    assert a.envelopes() == b.envelopes() == [{"topic": "news", "data": {"headline": "hi", "n": [1, 2]}}]
    assert a.frames[0] is b.frames[0]
    assert other.frames == []


def test_order_is_preserved() -> None:
    """
    Messages arrive in the order they were published.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    sub = FakeSubscriber()
    hub.subscribe(sub, "t")
    for i in range(100):
        hub.publish("t", i)
        if i % 7 == 0:
            clock.advance(0)  # some in their own reactor turn, some batched
    clock.advance(0)
    assert [m["data"] for m in sub.messages()] == list(range(100))


def test_a_burst_goes_out_at_once_then_in_one_batch() -> None:
    """
    In one reactor turn, the first message is written to every subscriber
    at once; the rest are queued and written at the turn's end, one flush
    per subscriber for the whole batch, in order.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(a, "t")
    hub.subscribe(b, "t")
    for i in range(10):
        hub.publish("t", i)
    assert [m["data"] for m in a.messages()] == [m["data"] for m in b.messages()] == [0]
    flushesBefore = a.flushes
    clock.advance(0)
    assert [m["data"] for m in a.messages()] == [m["data"] for m in b.messages()] == list(range(10))
    assert a.flushes == flushesBefore + 1
    hub.publish("t", 10)  # a new turn: at once again
    assert [m["data"] for m in a.messages()][-1] == 10


def test_unsubscribe_and_cleanup() -> None:
    """
    Unsubscribing stops delivery; unsubscribeAll drops every topic and
    leaves no empty topic behind.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    sub = FakeSubscriber()
    hub.subscribe(sub, "a")
    hub.subscribe(sub, "b")
    hub.unsubscribe(sub, "a")
    hub.publish("a", 1)
    assert sub.frames == []
    hub.unsubscribeAll(sub)
    assert hub.topicsOf(sub) == frozenset() and hub.subscribers("b") == frozenset()
    assert hub._topics == {} and hub._subscriptions == {}


def test_broker_is_told_about_first_and_last_subscriber_only() -> None:
    """
    The broker hears C{subscribe} for a topic's first local subscriber and
    C{unsubscribe} after its last (so Redis channels follow local demand).
    """
    calls: list[tuple[str, str]] = []

    class Recording:
        def start(self, deliver: Any) -> None:
            self.deliver = deliver

        def subscribe(self, topic: str) -> None:
            calls.append(("subscribe", topic))

        def unsubscribe(self, topic: str) -> None:
            calls.append(("unsubscribe", topic))

        def publish(self, topic: str, payload: str) -> None:
            self.deliver(topic, payload)

        def stop(self) -> None:
            pass

    hub = Hub(Recording(), clock=Clock())
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(a, "t")
    hub.subscribe(b, "t")
    hub.subscribe(a, "t")
    hub.unsubscribe(a, "t")
    hub.unsubscribeAll(b)
    assert calls == [("subscribe", "t"), ("unsubscribe", "t")]


def test_limits_are_refused_with_hub_errors() -> None:
    """
    Too many topics, empty or too long names are refused.
    """
    hub = Hub(maxTopicsPerConnection=2, maxTopicLength=5, clock=Clock())
    sub = FakeSubscriber()
    hub.subscribe(sub, "a")
    hub.subscribe(sub, "b")
    hub.subscribe(sub, "b")  # idempotent: not a third
    with pytest.raises(HubError):
        hub.subscribe(sub, "c")
    for bad in ("", "toolong", 3):
        with pytest.raises(HubError):
            hub.subscribe(FakeSubscriber(), bad)  # type: ignore[arg-type]


def test_slow_subscriber_is_dropped_others_keep_receiving() -> None:
    """
    A subscriber past the backlog limit is closed with 1008 and a log line;
    the others receive every message in order.
    """
    clock = Clock()
    hub = Hub(maxBacklog=1000, clock=clock)
    fast, slow = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(fast, "t")
    hub.subscribe(slow, "t")
    hub.publish("t", 1)
    clock.advance(0)
    slow.writeBacklog = 5000
    with captured_logs() as logs:
        hub.publish("t", 2)
    clock.advance(0)
    hub.publish("t", 3)
    clock.advance(0)
    assert slow.closed == (1008, "subscriber too slow")
    assert [m["data"] for m in slow.messages()] == [1]
    assert [m["data"] for m in fast.messages()] == [1, 2, 3]
    assert hub.topicsOf(slow) == frozenset()
    assert any("too slow" in line for line in logs)


def test_slow_subscriber_is_checked_when_its_batch_is_written() -> None:
    """
    A subscriber that falls behind while a batch is being queued is dropped
    at the end of the turn; the others get the batch.
    """
    clock = Clock()
    hub = Hub(maxBacklog=1000, clock=clock)
    fast, slow = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(fast, "t")
    hub.subscribe(slow, "t")
    hub.publish("t", 1)
    hub.publish("t", 2)
    slow.writeBacklog = 5000
    with captured_logs() as logs:
        clock.advance(0)
    assert slow.closed == (1008, "subscriber too slow")
    assert [m["data"] for m in fast.messages()] == [1, 2]
    assert any("too slow" in line for line in logs)


def test_a_failing_subscriber_does_not_stop_the_fan_out() -> None:
    """
    An exception from one subscriber is logged; the rest still receive.
    """

    class Broken(FakeSubscriber):
        def sendFrame(self, frame: bytes) -> None:
            raise RuntimeError("broken pipe")

    clock = Clock()
    hub = Hub(clock=clock)
    broken, good = Broken(), FakeSubscriber()
    hub.subscribe(broken, "t")
    hub.subscribe(good, "t")
    with captured_logs() as logs:
        hub.publish("t", "x")
    assert good.envelopes() == [{"topic": "t", "data": "x"}]
    assert any("broken pipe" in line for line in logs)


def test_closed_subscribers_are_skipped() -> None:
    """
    Fan-out skips subscribers whose connection is no longer open.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    gone = FakeSubscriber()
    hub.subscribe(gone, "t")
    gone.closed = (1000, "")
    hub.publish("t", 1)
    assert gone.frames == []


# -- the JSON protocol over a real wire ----------------------------------------


def send(wire: WebSocketWire, message: Any) -> None:
    """
    One message from the client, in a reactor turn of its own.
    """
    text = message if isinstance(message, str) else json.dumps(message)
    wire.dataReceived(client_frame(Opcode.TEXT, text.encode()))
    wire._clock.advance(0)  # the turn ends: the hub flushes what it batched


def replies(transport: CountingTransport) -> list[Any]:
    """
    Every text message the client received, parsed as JSON.
    """
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def received(transport: CountingTransport) -> list[Any]:
    """
    What a client of the first version of the protocol looks at: the
    messages it received, without the answers to its subscriptions and
    without positions.
    """
    return [withoutPosition(m) for m in replies(transport) if "subscribed" not in m]


def test_protocol_subscribe_publish_and_receive() -> None:
    """
    Over the wire: subscribers of T (the publisher too, if subscribed) get
    C{{"topic": T, "data": D}}.
    """
    factory = PubSubFactory(Hub(clock=Clock()))
    alice, alicesWire = connect(factory)
    bob, bobsWire = connect(factory)
    send(alice, {"action": "subscribe", "topic": "room"})
    send(bob, {"action": "subscribe", "topic": "room"})
    send(bob, {"action": "publish", "topic": "room", "data": {"text": "hi"}})
    assert received(alicesWire) == received(bobsWire) == [{"topic": "room", "data": {"text": "hi"}}]
    send(alice, {"action": "unsubscribe", "topic": "room"})
    send(bob, {"action": "publish", "topic": "room", "data": 2})
    assert received(alicesWire) == [{"topic": "room", "data": {"text": "hi"}}]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"action": "dance", "topic": "t"}, "action must be"),
        ({"action": "subscribe"}, "topic must be"),
        ({"action": "subscribe", "topic": ""}, "topic must be"),
        ({"action": "subscribe", "topic": "x" * 300}, "longer than"),
        ({"action": "publish", "topic": "t"}, "needs 'data'"),
        ({"action": "publish", "topic": "t", "data": "x" * 70_000}, "larger than"),
    ],
)
def test_bad_messages_get_an_error_and_the_connection_stays(message: Any, error: str) -> None:
    """
    A bad request gets C{{"error": ...}} back and the connection stays
    open and usable.
    """
    wire, transport = connect(PubSubFactory(Hub(clock=Clock())))
    send(wire, message)
    (reply,) = received(transport)
    assert error in reply["error"]
    assert wire.isOpen()
    send(wire, {"action": "subscribe", "topic": "ok"})
    send(wire, {"action": "publish", "topic": "ok", "data": 1})
    assert received(transport)[-1] == {"topic": "ok", "data": 1}


def test_binary_messages_get_an_error() -> None:
    """
    The protocol is JSON text; binary gets an error, not a close.
    """
    wire, transport = connect(PubSubFactory(Hub(clock=Clock())))
    wire.dataReceived(client_frame(Opcode.BINARY, b"\x00"))
    assert "binary" in received(transport)[0]["error"]


def test_too_many_topics_is_an_error_reply() -> None:
    """
    The per-connection topic limit is an error reply.
    """
    wire, transport = connect(PubSubFactory(Hub(maxTopicsPerConnection=1, clock=Clock())))
    send(wire, {"action": "subscribe", "topic": "a"})
    send(wire, {"action": "subscribe", "topic": "b"})
    assert "too many topics" in received(transport)[0]["error"]


def test_connection_close_cleans_up_subscriptions() -> None:
    """
    When a connection closes, all its subscriptions go.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    send(wire, {"action": "subscribe", "topic": "a"})
    send(wire, {"action": "subscribe", "topic": "b"})
    wire.connectionLost(Failure(ConnectionClosed(1006)))
    assert hub._topics == {} and hub._subscriptions == {}


def test_per_topic_authorization_sees_the_identity() -> None:
    """
    The authorize hook gets the connection's identity, the action and the
    topic; a refusal is an error reply.
    """
    seen: list[tuple[object, str, str]] = []

    def authorize(identity: object, action: str, topic: str) -> bool:
        seen.append((identity, action, topic))
        return topic.startswith(f"{identity}/") or (action == "subscribe" and topic == "public")

    factory = PubSubFactory(Hub(authorize=authorize, clock=Clock()))
    wire, transport = connect(factory, identity="alice")
    send(wire, {"action": "subscribe", "topic": "alice/inbox"})
    send(wire, {"action": "subscribe", "topic": "bob/inbox"})
    send(wire, {"action": "subscribe", "topic": "public"})
    send(wire, {"action": "publish", "topic": "public", "data": 1})
    errors = [m["error"] for m in received(transport) if "error" in m]
    assert errors == ["not allowed to subscribe to 'bob/inbox'", "not allowed to publish to 'public'"]
    assert seen[0] == ("alice", "subscribe", "alice/inbox")


def test_server_code_can_publish() -> None:
    """
    C{hub.publish(topic, data)} from server code reaches WebSocket clients.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    send(wire, {"action": "subscribe", "topic": "alerts"})
    hub.publish("alerts", {"level": "high"})
    assert received(transport) == [{"topic": "alerts", "data": {"level": "high"}}]


def test_slow_websocket_subscriber_is_closed_with_1008() -> None:
    """
    Over a real wire: a subscriber whose transport stays full past the
    backlog limit gets close 1008.
    """
    clock = Clock()
    hub = Hub(maxBacklog=2000, clock=clock)
    slowWire, slowTransport = connect(PubSubFactory(hub))
    fastWire, fastTransport = connect(PubSubFactory(hub))
    for wire in (slowWire, fastWire):
        send(wire, {"action": "subscribe", "topic": "t"})
    slowWire.pauseProducing()  # its transport buffer is full
    with captured_logs():
        for _ in range(50):
            hub.publish("t", "x" * 100)
            clock.advance(0)
    frames = server_frames(slowTransport.value())
    assert frames[-1].payload == (1008, "subscriber too slow")
    assert len(received(fastTransport)) == 50


def test_a_turn_of_large_publishes_cannot_pile_up_on_a_reader_that_stopped() -> None:
    """
    Server code publishing 3,000 messages of 8 KiB (24 MiB) in one turn to
    a subscriber on real TCP that reads nothing: the subscriber is closed
    with 1008 and a log line once it is C{maxBacklog} behind, and what it
    holds in user space never grows past its transport's buffer, the limit
    and one batch, instead of the whole turn.
    """
    clock = Clock()
    hub = Hub(maxBacklog=256 << 10, clock=clock)
    pair = TCPPair(sendBuffer=16 << 10)
    try:
        hub.subscribe(pair.wire, "t")
        held = []
        with captured_logs() as logs:
            for _ in range(3000):
                hub.publish("t", "x" * 8192)
                held.append(pair.held())
        clock.advance(0)
        assert not pair.wire.isOpen()
        assert hub.topicsOf(pair.wire) == frozenset()
        assert any("too slow" in line for line in logs)
        bound = pair.transport.bufferSize + hub.maxBacklog + 2 * hub.maxBatch + 2 * 8300
        assert max(held) < bound, (max(held), bound)
        pair.peer.setblocking(True)
        received = bytearray()
        while True:
            chunk = pair.readAll()
            received += chunk
            if not pair.queued():
                break
            pair.transport.doWrite()
        frames = server_frames(bytes(received))
        assert frames[-1].payload == (1008, "subscriber too slow")
    finally:
        pair.close()


def test_a_subscriber_reading_between_turns_gets_every_large_batch() -> None:
    """
    Turns of 30 messages of 8 KiB (under the backlog limit each), with the
    subscriber reading between turns: batches written mid-turn do not count
    as falling behind; everything arrives, in order.
    """
    clock = Clock()
    hub = Hub(maxBacklog=1 << 20, clock=clock)
    pair = TCPPair(sendBuffer=64 << 10)
    try:
        hub.subscribe(pair.wire, "t")
        received = bytearray()
        for turn in range(20):
            for i in range(30):
                hub.publish("t", f"{turn:02}{i:02}" + "x" * 8192)
            clock.advance(0)
            received += pair.drain()
        assert pair.wire.isOpen()
        texts = [json.loads(str(f.payload))["data"][:4] for f in server_frames(bytes(received))]
        assert texts == [f"{turn:02}{i:02}" for turn in range(20) for i in range(30)]
    finally:
        pair.close()


def test_a_hub_built_before_the_reactor_uses_the_one_installed_later() -> None:
    """
    Building a hub does not import the global reactor (an application may
    install another reactor after building it); the first delivery does.
    """
    code = (
        "import sys\n"
        "from txpulse.pubsub.hub import Hub\n"
        "hub = Hub()\n"
        "assert 'twisted.internet.reactor' not in sys.modules, 'reactor imported by Hub()'\n"
        "from twisted.internet import asyncioreactor\n"
        "asyncioreactor.install()\n"
        "from twisted.internet import reactor\n"
        "assert hub.clock is reactor\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_large_message_in_a_batch_does_not_count_against_other_subscribers() -> None:
    """
    A 1.1 MiB message queued after small ones in the same turn (over the
    1 MiB backlog limit on its own) is written to its subscriber, which
    keeps up; a subscriber of another topic with a small frame in the same
    batch is not charged for it. Both stay open and receive everything.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    big, other = TCPPair(), TCPPair()
    try:
        hub.subscribe(big.wire, "t")
        hub.subscribe(other.wire, "other")
        hub.publish("t", "small")
        hub.publish("other", "small")
        hub.publish("t", "x" * (1100 << 10))
        clock.advance(0)
        assert big.wire.isOpen() and other.wire.isOpen()
        received = big.drain()
        sizes = [len(json.loads(str(f.payload))["data"]) for f in server_frames(received)]
        assert sizes == [5, 1100 << 10]
        assert [json.loads(str(f.payload))["data"] for f in server_frames(other.readAll())] == ["small"]
    finally:
        big.close()
        other.close()


def test_a_backlog_limit_below_one_batch_does_not_drop_a_reader_that_keeps_up() -> None:
    """
    With C{maxBacklog} (32 KiB) smaller than a batch, a turn of 80 kB to a
    subscriber whose socket takes it all leaves it open: only what it has
    not taken counts.
    """
    clock = Clock()
    hub = Hub(maxBacklog=32 << 10, clock=clock)
    pair = TCPPair()
    try:
        hub.subscribe(pair.wire, "t")
        for _ in range(10):
            hub.publish("t", "x" * 8000)
        clock.advance(0)
        assert pair.wire.isOpen()
        assert len(server_frames(pair.readAll())) == 10
    finally:
        pair.close()


def test_the_clock_can_be_replaced_after_construction() -> None:
    """
    C{hub.clock} stays assignable: a test may swap in a L{Clock} later.
    """
    hub = Hub()
    clock = Clock()
    hub.clock = clock
    sub = FakeSubscriber()
    hub.subscribe(sub, "t")
    hub.publish("t", 1)
    hub.publish("t", 2)
    assert [m["data"] for m in sub.messages()] == [1]
    clock.advance(0)
    assert [m["data"] for m in sub.messages()] == [1, 2]


def test_namespaces_keep_topics_apart() -> None:
    """
    The same topic name in two namespaces is two topics: a subscriber of
    one does not see what is published in the other, and each delivery
    names the topic as its namespace's clients see it. The root namespace's
    broker channel is the bare topic; another's cannot be named from the
    root, since topics may not contain control characters.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    chat = hub.namespace("chat")
    root, inChat = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(root, "lobby")
    chat.subscribe(inChat, "lobby")
    hub.publish("lobby", "root")
    chat.publish("lobby", "chat")
    clock.advance(0)
    assert root.envelopes() == [{"topic": "lobby", "data": "root"}]
    assert inChat.envelopes() == [{"topic": "lobby", "data": "chat"}]
    assert hub.topicsOf(root) == frozenset({"lobby"}) and chat.topicsOf(inChat) == frozenset({"lobby"})
    assert hub.topicsOf(inChat) == frozenset() and chat.topicsOf(root) == frozenset()
    assert sorted(hub._topics) == ["chat\x1flobby", "lobby"]
    with pytest.raises(HubError, match="control characters"):
        hub.subscribe(root, chat.channel("lobby"))
    with pytest.raises(ValueError):
        hub.namespace("a\x1fb")
    hub.unsubscribeAll(inChat)
    assert chat.subscribers("lobby") == frozenset()


def test_a_namespace_has_its_own_authorization() -> None:
    """
    A factory's C{authorize} applies to its namespace only; without one,
    the hub's applies.
    """
    hub = Hub(authorize=lambda identity, action, topic: topic == "open", clock=Clock())
    strict = PubSubFactory(hub, namespace="strict", authorize=lambda identity, action, topic: identity == "ops")
    wire, transport = connect(strict, identity="guest")
    send(wire, {"action": "subscribe", "topic": "open"})
    wire2, transport2 = connect(PubSubFactory(hub), identity="guest")
    send(wire2, {"action": "subscribe", "topic": "open"})
    send(wire2, {"action": "subscribe", "topic": "other"})
    assert received(transport) == [{"error": "not allowed to subscribe to 'open'"}]
    assert received(transport2) == [{"error": "not allowed to subscribe to 'other'"}]


def test_refusals_are_logged_naming_the_peer_a_few_times_per_connection() -> None:
    """
    A refused request is logged with the peer, identity and topic; a client
    looping on refused topics logs three lines, not one per request.
    """
    hub = Hub(authorize=lambda identity, action, topic: False, clock=Clock())
    wire, transport = connect(PubSubFactory(hub), identity="mallory")
    with captured_logs() as logs:
        for _ in range(10):
            send(wire, {"action": "publish", "topic": "t", "data": 1})
    refusals = [line for line in logs if "Refused publish" in line]
    assert len(refusals) == 3 and "'mallory'" in refusals[0] and "'t'" in refusals[0]
    assert len(received(transport)) == 10


@pytest.mark.parametrize(
    "message",
    [
        '{"action": "publish", "topic": "t", "data": NaN}',
        '{"action": "publish", "topic": "t", "data": Infinity}',
        '{"action": "publish", "topic": "t", "data": [-Infinity]}',
        "[" * 100_000,
        '{"action": "publish", "topic": "t", "data": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"action": "publish", "topic": "t", "data": "\\ud800"}',
    ],
)
def test_json_is_strict_and_the_connection_stays(message: str) -> None:
    """
    C{NaN}, C{Infinity}, nesting deeper than the parser goes and lone
    surrogates get an C{{"error"}} reply, with no traceback in the log: a
    subscriber receives nothing, and the connection stays open and usable.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub, maxPublishSize=1 << 20))
    subscriber = FakeSubscriber()
    hub.subscribe(subscriber, "t")
    with captured_logs() as logs:
        send(wire, message)
    assert "error" in received(transport)[0]
    assert not [line for line in logs if "Traceback" in line or "Error" in line]
    assert subscriber.frames == [] and wire.isOpen()
    send(wire, {"action": "publish", "topic": "t", "data": 1})
    assert subscriber.envelopes() == [{"topic": "t", "data": 1}]


def test_server_code_publishing_nan_gets_a_clear_error() -> None:
    """
    C{hub.publish} with a value JSON cannot carry raises L{ValueError}
    saying why, and nothing is sent.
    """
    hub = Hub(clock=Clock())
    subscriber = FakeSubscriber()
    hub.subscribe(subscriber, "t")
    with pytest.raises(ValueError, match="not JSON compliant"):
        hub.publish("t", {"x": float("nan")})
    with pytest.raises(ValueError, match="nested too deeply"):
        nested: list[Any] = []
        for _ in range(100_000):
            nested = [nested]
        hub.publish("t", nested)
    assert subscriber.frames == []


@pytest.mark.parametrize(
    ("channel", "payload", "refused"),
    [
        ("news", '{"topic":"news","data":1}', None),
        ("chat\x1flobby", '{"topic":"lobby","data":{"type":"join"}}', None),
        ("news", '{"topic":"other","data":1}', "does not match"),
        ("chat\x1flobby", '{"topic":"chat/lobby","data":1}', "does not match"),
        ("news", '{"topic":"news","data":NaN}', "not valid JSON"),
        ("news", '{"topic":"news","data":1,"error":"x"}', "envelope"),
        ("news", '["news", 1]', "envelope"),
        ("news", "[" * 100_000, "not valid JSON"),
    ],
)
def test_envelopes_from_outside_are_checked(channel: str, payload: str, refused: str | None) -> None:
    """
    L{checkEnvelope} accepts strict JSON C{{"topic", "data"}} whose topic
    is its channel's (as the namespace's clients see it), and says why
    anything else is refused.
    """
    result = checkEnvelope(channel, payload)
    assert result is None if refused is None else refused in str(result)

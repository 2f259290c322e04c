"""
L{txpulse.pubsub.PubSubClient}: a pub/sub client that resumes by itself.

First in memory (L{txpulse.testing.InMemoryServer}: the client's real
stack, the server's real stack, a L{MemoryReactorClock} for both and for
the retry delays): against a scripted server, to pin each resume rule down
message by message (de-duplication at the seam, gaps, epochs, old
servers); then against a real L{Hub}, whose connections the test drops
while it publishes. Then on loopback, with a real reactor: the hub behind a
real port, its connections aborted mid-stream, and a restart (a new hub,
so a new epoch).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Cooperator, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from txpulse import WebSocketClientEndpoint, WebSocketResource
from txpulse.pubsub import Hub, NotConnected, Position, PubSubClient, PubSubFactory
from txpulse.testing import InMemoryServer

from ..support.logs import captured_events
from ..support.servers import LoopbackServer, TrackingSite
from ..support.waits import within

RETRY = 1.0


class Seen:
    """
    What the application of a L{PubSubClient} was told: C{deliveries}
    (C{(topic, data, position)}, in order) and C{resets} (C{(topic,
    position)} of each failed recovery), interleaved in C{events}.
    """

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on(self, topic: str) -> Any:
        def delivered(data: Any, position: Position | None) -> None:
            self.events.append(("data", topic, data, position))

        return delivered

    def reset(self, topic: str, position: Position | None) -> None:
        self.events.append(("reset", topic, position))

    @property
    def data(self) -> list[Any]:
        return [event[2] for event in self.events if event[0] == "data"]

    @property
    def resets(self) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == "reset"]


def inMemory(
    factory: Any, reactor: MemoryReactorClock, seen: Seen, **options: Any
) -> tuple[InMemoryServer, PubSubClient]:
    """
    A pub/sub server of C{factory} at C{/pubsub} (no keepalive) on an
    in-memory network, and a L{PubSubClient} of it (with C{options}) that
    retries after L{RETRY} seconds and reports failed recoveries to
    C{seen}; both on C{reactor}.
    """
    server = InMemoryServer(
        WebSocketResource(factory, clock=reactor, pingInterval=None), path="/pubsub", reactor=reactor
    )
    client = PubSubClient(
        server.endpoint("/pubsub", pingInterval=None),
        retryPolicy=lambda n: RETRY,
        clock=reactor,
        onRecoveryFailed=seen.reset,
        **options,
    )
    return server, client


# -- a scripted server, in memory --------------------------------------------------


class ScriptedConnection:
    """
    The server side of one connection, played by the test: records the
    requests, sends what the test says.
    """

    def __init__(self) -> None:
        self.transport: Any = None
        self.requests: list[Any] = []
        self.lost = False

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, text: str) -> None:
        self.requests.append(json.loads(text))

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.lost = True

    def send(self, *messages: Any) -> None:
        for message in messages:
            self.transport.sendTextMessage(json.dumps(message))


class Scripted:
    """
    A L{PubSubClient} connected to a scripted server (C{self.server}
    flushes the network; C{self.connection} is the current server side).
    """

    def __init__(self, **options: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.connections: list[ScriptedConnection] = []
        self.seen = Seen()
        self.server, self.client = inMemory(self, self.reactor, self.seen, **options)

    def buildProtocol(self, request: object) -> ScriptedConnection:
        connection = ScriptedConnection()
        self.connections.append(connection)
        return connection

    @property
    def connection(self) -> ScriptedConnection:
        return self.connections[-1]

    def start(self, *topics: str) -> ScriptedConnection:
        for topic in topics:
            self.client.subscribe(topic, self.seen.on(topic))
        self.client.startService()
        self.server.flush()
        assert self.client.connected
        return self.connection

    def send(self, *messages: Any) -> None:
        self.connection.send(*messages)
        self.server.flush()

    def drop(self) -> None:
        """
        The server aborts the connection; the client reconnects after
        C{RETRY} seconds.
        """
        self.connection.transport.abortConnection()
        self.server.flush()
        assert not self.client.connected
        self.server.advance(RETRY)
        assert self.client.connected


def delivery(topic: str, data: Any, offset: int | None = None, epoch: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"topic": topic, "data": data}
    if offset is not None:
        message.update(offset=offset, epoch=epoch)
    return message


def test_subscribes_when_connected_and_delivers_with_positions() -> None:
    """
    A subscription made before the service starts is sent once the
    connection opens, without C{since}; the publications after the
    answer's position are delivered with their L{Position}.
    """
    s = Scripted()
    connection = s.start("news")
    assert connection.requests == [{"action": "subscribe", "topic": "news"}]
    s.send(
        {"subscribed": "news", "offset": 7, "epoch": "e1"},
        delivery("news", "a", 8, "e1"),
        delivery("news", "b", 9, "e1"),
    )
    assert s.seen.events == [
        ("data", "news", "a", Position(8, "e1")),
        ("data", "news", "b", Position(9, "e1")),
    ]
    assert s.client.position("news") == Position(9, "e1")


def test_resubscribes_with_since_and_drops_duplicates_at_the_seam() -> None:
    """
    After a reconnection the client subscribes from the last position it
    delivered; publications at or below it (the seam between what it had
    and the replay) are dropped, the rest delivered once, in order, and
    the application is not told of any reset.
    """
    s = Scripted()
    s.start("news")
    s.send(
        {"subscribed": "news", "offset": 0, "epoch": "e1"}, delivery("news", 1, 1, "e1"), delivery("news", 2, 2, "e1")
    )
    s.drop()
    assert s.connection.requests == [{"action": "subscribe", "topic": "news", "since": {"offset": 2, "epoch": "e1"}}]
    s.send(
        {"subscribed": "news", "recovered": True, "offset": 4, "epoch": "e1"},
        delivery("news", 2, 2, "e1"),  # already seen
        delivery("news", 3, 3, "e1"),
        delivery("news", 4, 4, "e1"),
        delivery("news", 4, 4, "e1"),  # the same again (replay and live overlap)
        delivery("news", 5, 5, "e1"),
    )
    assert s.seen.data == [1, 2, 3, 4, 5]
    assert s.seen.resets == []


def test_recovered_false_tells_the_application_once_and_continues_from_the_answer() -> None:
    """
    C{"recovered": false} (e.g. a restarted server: new epoch) calls
    C{onRecoveryFailed(topic, position)} once, before any delivery, with
    the answer's position; delivery continues from there, offsets of the
    new epoch starting over.
    """
    s = Scripted()
    s.start("news")
    s.send({"subscribed": "news", "offset": 0, "epoch": "e1"}, delivery("news", "old", 1, "e1"))
    s.drop()
    s.send({"subscribed": "news", "recovered": False, "offset": 0, "epoch": "e2"}, delivery("news", "new", 1, "e2"))
    assert s.seen.events[1:] == [
        ("reset", "news", Position(0, "e2")),
        ("data", "news", "new", Position(1, "e2")),
    ]
    s.drop()
    assert s.connection.requests[0]["since"] == {"offset": 1, "epoch": "e2"}
    s.send({"subscribed": "news", "recovered": True, "offset": 1, "epoch": "e2"})
    assert len(s.seen.resets) == 1


def test_a_new_epoch_on_a_live_subscription_is_a_reset() -> None:
    """
    A publication of another epoch on a live subscription (the topic's
    history was lost while connected) is delivered after one
    C{onRecoveryFailed}; the next ones of that epoch are not resets.
    """
    s = Scripted()
    s.start("news")
    s.send(
        {"subscribed": "news", "offset": 3, "epoch": "e1"},
        delivery("news", "a", 4, "e1"),
        delivery("news", "b", 1, "e2"),
        delivery("news", "c", 2, "e2"),
    )
    assert s.seen.events == [
        ("data", "news", "a", Position(4, "e1")),
        ("reset", "news", Position(0, "e2")),
        ("data", "news", "b", Position(1, "e2")),
        ("data", "news", "c", Position(2, "e2")),
    ]


def test_a_gap_is_healed_by_subscribing_again_from_the_last_position() -> None:
    """
    A publication past the next offset (a gap) is not delivered: the
    client subscribes again from its last position and drops what arrives
    before the answer; the replay then fills the gap, in order.
    """
    s = Scripted()
    s.start("news")
    s.send({"subscribed": "news", "offset": 0, "epoch": "e1"}, delivery("news", 1, 1, "e1"))
    s.send(delivery("news", 3, 3, "e1"), delivery("news", 4, 4, "e1"))
    assert s.connection.requests[-1] == {"action": "subscribe", "topic": "news", "since": {"offset": 1, "epoch": "e1"}}
    s.send(
        {"subscribed": "news", "recovered": True, "offset": 4, "epoch": "e1"},
        delivery("news", 2, 2, "e1"),
        delivery("news", 3, 3, "e1"),
        delivery("news", 4, 4, "e1"),
    )
    assert s.seen.data == [1, 2, 3, 4]
    assert s.seen.resets == []


def test_deliveries_before_the_answer_of_a_resubscription_are_dropped() -> None:
    """
    Unsubscribing and subscribing again on the same connection: what the
    server still delivers for the old subscription before answering the
    new one is not delivered (the new subscription starts at its answer).
    """
    s = Scripted()
    s.start("news")
    s.send({"subscribed": "news", "offset": 0, "epoch": "e1"}, delivery("news", 1, 1, "e1"))
    s.client.unsubscribe("news")
    s.client.subscribe("news", s.seen.on("news"))
    s.server.flush()
    assert s.connection.requests[-2:] == [
        {"action": "unsubscribe", "topic": "news"},
        {"action": "subscribe", "topic": "news"},
    ]
    s.send(
        delivery("news", 2, 2, "e1"), {"subscribed": "news", "offset": 2, "epoch": "e1"}, delivery("news", 3, 3, "e1")
    )
    assert s.seen.data == [1, 3]


def test_a_server_without_positions_works_as_before() -> None:
    """
    A server of the first protocol version (no answer, no positions):
    every delivery is passed on, with position C{None}; after a
    reconnection the client subscribes again without C{since}, and no
    reset is reported (there is nothing to compare).
    """
    s = Scripted()
    s.start("news")
    s.send(delivery("news", "a"), delivery("news", "a"))
    s.drop()
    assert s.connection.requests == [{"action": "subscribe", "topic": "news"}]
    s.send(delivery("news", "b"))
    assert s.seen.events == [
        ("data", "news", "a", None),
        ("data", "news", "a", None),
        ("data", "news", "b", None),
    ]


def test_since_given_at_subscribe_resumes_from_a_stored_position() -> None:
    """
    C{subscribe(topic, callback, since=position)} asks for the replay
    after C{position} on the first connection already; a per-subscription
    C{onRecoveryFailed} takes precedence over the client's.
    """
    s = Scripted()
    mine: list[tuple[str, Position | None]] = []
    s.client.subscribe("a", s.seen.on("a"), since=Position(5, "e1"))
    s.client.subscribe("b", s.seen.on("b"), since=Position(5, "e1"), onRecoveryFailed=lambda t, p: mine.append((t, p)))
    connection = s.start()
    assert connection.requests == [
        {"action": "subscribe", "topic": "a", "since": {"offset": 5, "epoch": "e1"}},
        {"action": "subscribe", "topic": "b", "since": {"offset": 5, "epoch": "e1"}},
    ]
    s.send(
        {"subscribed": "a", "recovered": True, "offset": 6, "epoch": "e1"},
        delivery("a", 6, 6, "e1"),
        {"subscribed": "b", "recovered": False, "offset": 9, "epoch": "e1"},
        delivery("b", 10, 10, "e1"),
    )
    assert s.seen.data == [6, 10]
    assert s.seen.resets == []
    assert mine == [("b", Position(9, "e1"))]


def test_publish_while_disconnected_raises_not_connected() -> None:
    """
    C{publish} sends at once while connected, and raises L{NotConnected}
    (sending nothing, queueing nothing) while not.
    """
    s = Scripted()
    with pytest.raises(NotConnected):
        s.client.publish("news", 1)
    s.start()
    s.client.publish("news", {"n": 1})
    s.server.flush()
    assert s.connection.requests == [{"action": "publish", "topic": "news", "data": {"n": 1}}]
    s.connection.transport.abortConnection()
    s.server.flush()
    with pytest.raises(NotConnected):
        s.client.publish("news", 2)
    s.server.advance(RETRY)
    assert s.connection.requests == []


def test_errors_and_failing_callbacks_do_not_disturb_the_client() -> None:
    """
    An C{{"error"}} reply goes to C{onError}; a callback that raises is
    logged, and the next publication is still delivered.
    """
    errors: list[str] = []
    s = Scripted(onError=errors.append)
    calls: list[Any] = []

    def fragile(data: Any, position: Position | None) -> None:
        calls.append(data)
        if data == "boom":
            raise RuntimeError("boom")

    s.client.subscribe("news", fragile)
    s.start()
    with captured_events() as events:
        s.send(
            {"subscribed": "news", "offset": 0, "epoch": "e1"},
            {"error": "not allowed"},
            delivery("news", "boom", 1, "e1"),
            delivery("news", "fine", 2, "e1"),
        )
    assert errors == ["not allowed"]
    assert calls == ["boom", "fine"]
    assert any(event.get("log_failure") is not None for event in events)


def test_subscribing_twice_to_a_topic_is_refused() -> None:
    """
    One subscription per topic: a second C{subscribe} raises
    L{ValueError}; after C{unsubscribe} the topic can be subscribed again.
    """
    s = Scripted()
    s.client.subscribe("news", s.seen.on("news"))
    with pytest.raises(ValueError):
        s.client.subscribe("news", s.seen.on("news"))
    s.client.unsubscribe("news")
    s.client.unsubscribe("news")  # no error
    s.client.subscribe("news", s.seen.on("news"))
    assert s.client.topics == {"news"}


def test_stop_closes_with_1000_and_keeps_the_positions() -> None:
    """
    Stopping the service closes the connection cleanly and stops
    reconnecting; the positions are kept, so starting again resumes.
    """
    s = Scripted()
    s.start("news")
    s.send({"subscribed": "news", "offset": 0, "epoch": "e1"}, delivery("news", 1, 1, "e1"))
    stopped = s.client.stopService()
    s.server.flush()
    assert stopped.called
    assert s.connection.lost and not s.client.connected
    s.server.advance(10 * RETRY)
    assert len(s.connections) == 1
    s.client.startService()
    s.server.flush()
    assert s.connection.requests == [{"action": "subscribe", "topic": "news", "since": {"offset": 1, "epoch": "e1"}}]


# -- a real hub, in memory --------------------------------------------------------


class SwitchableFactory:
    """
    A pub/sub factory whose hub the test can replace (a restarted server).
    """

    def __init__(self, hub: Hub) -> None:
        self.current = PubSubFactory(hub)

    def buildProtocol(self, request: object) -> Any:
        return self.current.buildProtocol(request)


class RealHub:
    """
    A L{PubSubClient} on an in-memory network to a real L{Hub}.
    """

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.hub = Hub(clock=self.reactor)
        self.factory = SwitchableFactory(self.hub)
        self.seen = Seen()
        self.server, self.client = inMemory(self.factory, self.reactor, self.seen)

    def publish(self, topic: str, *values: Any) -> None:
        for value in values:
            self.hub.publish(topic, value)
        self.server.advance(0)  # the turn ends: the hub writes its batch

    def dropAll(self) -> None:
        """
        The server aborts every connection of its hub.
        """
        for topic in self.client.topics:
            for subscriber in self.hub.subscribers(topic):
                subscriber.abortConnection()
        self.server.flush()
        assert not self.client.connected


def test_round_trip_with_a_real_hub() -> None:
    """
    Subscribed through a real hub, the client receives what it publishes
    itself, with positions, in order.
    """
    h = RealHub()
    h.client.subscribe("news", h.seen.on("news"))
    h.client.startService()
    h.server.flush()
    for n in range(3):
        h.client.publish("news", n)
    h.server.advance(0)
    assert h.seen.data == [0, 1, 2]
    assert [event[3].offset for event in h.seen.events] == [1, 2, 3]


def test_drop_while_publishing_resumes_with_nothing_lost_or_doubled() -> None:
    """
    The connection drops in the middle of a stream; the hub goes on
    publishing while the client is away; after the reconnection the
    client resumes: every publication exactly once, in order, no reset.
    """
    h = RealHub()
    h.client.subscribe("news", h.seen.on("news"))
    h.client.startService()
    h.server.flush()
    h.publish("news", *range(0, 10))
    h.dropAll()
    h.publish("news", *range(10, 20))
    h.server.advance(RETRY)
    assert h.client.connected
    h.publish("news", *range(20, 25))
    assert h.seen.data == list(range(25))
    assert h.seen.resets == []


def test_a_restarted_hub_is_a_reset_then_live() -> None:
    """
    A new hub (a restarted server: its topics in a new epoch) answers the
    resubscription with C{recovered: false}: the application is told once,
    then receives the new hub's publications.
    """
    h = RealHub()
    h.client.subscribe("news", h.seen.on("news"))
    h.client.startService()
    h.server.flush()
    h.publish("news", "a", "b")
    old = h.client.position("news")
    h.factory.current = PubSubFactory(Hub(clock=h.reactor))
    h.dropAll()  # the old hub's connections go with its process
    h.hub = h.factory.current.hub
    h.server.advance(RETRY)
    assert h.client.connected
    h.publish("news", "c")
    assert h.seen.data == ["a", "b", "c"]
    (reset,) = h.seen.resets
    new = h.client.position("news")
    assert old is not None and new is not None
    assert reset == ("reset", "news", Position(0, new.epoch))
    assert new.epoch != old.epoch and new.offset == 1


# -- on loopback --------------------------------------------------------------------


def serve_hub(hub: Hub, port: int = 0) -> LoopbackServer:
    """
    C{hub} at C{/pubsub} on 127.0.0.1 (C{port} 0: a free one).
    """
    root = Resource()
    root.putChild(b"pubsub", WebSocketResource(PubSubFactory(hub), pingInterval=None))
    return LoopbackServer.listen(TrackingSite(root), None, port)


async def until(condition: Any, what: str, seconds: float = 5.0) -> None:
    """
    Wait (polling every 10 ms, at most C{seconds}) until C{condition()}.
    """
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest_twisted.ensureDeferred
async def test_loopback_resume_across_dropped_connections_and_a_restart() -> None:
    """
    A real hub on 127.0.0.1; a client subscribed to two topics while the
    server publishes 300 numbered messages on each, one pair per
    millisecond. The server aborts every connection twice mid-stream
    (publishing goes on): the client's application sees each message
    exactly once, in order, and no reset. Then the server is replaced by a
    new one on the same port (a new hub, so a new epoch): one reset per
    topic, then live delivery from the new hub.
    """
    hub = Hub()
    servers = [serve_hub(hub)]
    seen = Seen()
    client = PubSubClient(
        WebSocketClientEndpoint.new(reactor, servers[0].url("/pubsub")),
        retryPolicy=lambda n: 0.02,
        onRecoveryFailed=seen.reset,
    )
    for topic in ("a", "b"):
        client.subscribe(topic, seen.on(topic))

    def got(topic: str) -> list[Any]:
        return [event[2] for event in seen.events if event[0] == "data" and event[1] == topic]

    client.startService()
    try:
        await within(client.whenConnected())
        await until(lambda: client.position("a") is not None and client.position("b") is not None, "the answers")

        def publisher() -> Any:
            for n in range(300):
                hub.publish("a", n)
                hub.publish("b", n)
                yield deferLater(reactor, 0.001)

        running = Cooperator().coiterate(publisher())
        for drops in (1, 2):
            await until(lambda: len(got("b")) > 50 * drops, "deliveries before the drop")  # noqa: B023
            await servers[0].site.drop_connections()
        await within(running)
        await until(lambda: got("a")[-1:] == [299] and got("b")[-1:] == [299], "the last publications")
        assert len(servers[0].site.channels) >= 3, "no reconnection happened"
        assert got("a") == list(range(300))
        assert got("b") == list(range(300))
        assert seen.resets == []

        await servers[0].stop()
        newHub = Hub()
        servers.append(serve_hub(newHub, servers[0].port))
        await until(lambda: len(seen.resets) == 2, "a reset per topic")
        assert sorted(reset[1] for reset in seen.resets) == ["a", "b"]
        newHub.publish("a", "after")
        await until(lambda: got("a")[-1:] == ["after"], "a publication of the new hub")
        position = client.position("a")
        assert position is not None and position.offset == 1
        assert seen.events[-1] == ("data", "a", "after", position)
        assert got("a").count("after") == 1 and len(got("a")) == 301
    finally:
        await within(client.stopService())
        for server in servers:
            await server.stop()

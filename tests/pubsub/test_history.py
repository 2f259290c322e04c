"""
Tests for positions, history and recovery (issue #15, one process):
L{txpulse.pubsub.history}, the in-process broker's history, the hub's
subscription answers and its seam between replay and live, and the
C{/pubsub} protocol's C{"since"}.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.exceptions import ConnectionClosed
from txpulse.core.frames import Opcode
from txpulse.plugin.tap import Options
from txpulse.pubsub.broker.memory import MemoryBroker
from txpulse.pubsub.history import History, Position, Ring, positioned
from txpulse.pubsub.hub import Hub, channelFor
from txpulse.pubsub.protocol import PubSubFactory
from txpulse.wire.protocol import WebSocketWire

from ..support.frames import client_frame, server_frames
from ..support.hub import FakeSubscriber, connect
from ..support.logs import captured_logs
from ..support.transports import CountingTransport


def send(wire: WebSocketWire, message: Any) -> None:
    """
    One message from the client, in a reactor turn of its own.
    """
    text = message if isinstance(message, str) else json.dumps(message)
    wire.dataReceived(client_frame(Opcode.TEXT, text.encode()))
    wire._clock.advance(0)


def replies(transport: CountingTransport) -> list[Any]:
    """
    Every text message the client received, parsed as JSON, in order.
    """
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def subscribe(wire: WebSocketWire, topic: str, since: Any = None) -> None:
    request: dict[str, Any] = {"action": "subscribe", "topic": topic}
    if since is not None:
        request["since"] = since
    send(wire, request)


class DelayedBroker(MemoryBroker):
    """
    An in-process broker whose C{history} answers later, when the test
    says, as a broker across processes would: either as of the call
    (C{answerNow}) or as of the moment it answers (C{answerLater}, so the
    answer also holds what was published meanwhile).
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.asked: list[tuple[str, Position | None, History, Deferred[History]]] = []

    def history(self, channel: str, since: Position | None) -> Deferred[History]:  # type: ignore[override]
        answer: Deferred[History] = Deferred()
        self.asked.append((channel, since, super().history(channel, since), answer))
        return answer

    def answerNow(self) -> None:
        _channel, _since, history, answer = self.asked.pop(0)
        answer.callback(history)

    def answerLater(self) -> None:
        channel, since, _history, answer = self.asked.pop(0)
        answer.callback(super().history(channel, since))


# -- positions -------------------------------------------------------------------


def test_offsets_count_each_topic_from_1_without_gaps() -> None:
    """
    Each publication gets the next offset of its topic (1, 2, 3...), in
    its deliveries and as C{publish}'s return value; topics count
    separately and share nothing.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(a, "a")
    hub.subscribe(b, "b")
    positions = [hub.publish("a" if i % 3 else "b", i) for i in range(30)]
    clock.advance(0)
    assert [m["offset"] for m in a.messages()] == list(range(1, 21))
    assert [m["offset"] for m in b.messages()] == list(range(1, 11))
    assert [p.offset for p in positions if isinstance(p, Position)][:4] == [1, 1, 2, 2]
    assert {m["epoch"] for m in a.messages()} == {positions[1].epoch}  # type: ignore[union-attr]


def test_publications_without_subscribers_still_take_an_offset() -> None:
    """
    With history on, a topic's offsets keep counting while nobody listens
    (so that a client that comes back can tell what it missed).
    """
    hub = Hub(clock=Clock())
    hub.publish("t", 1)
    hub.publish("t", 2)
    sub = FakeSubscriber()
    hub.subscribe(sub, "t", answer=True)
    assert sub.messages()[0]["offset"] == 2


def test_a_new_hub_has_a_new_epoch() -> None:
    """
    A new in-process hub (a restarted process) gives its topics a new
    random epoch, which is a string; epochs are safe to embed in JSON.
    """
    epochs = set()
    for _ in range(3):
        hub = Hub(clock=Clock())
        position = hub.publish("t", 1)
        assert isinstance(position, Position) and position.offset == 1
        epochs.add(position.epoch)
    assert len(epochs) == 3
    assert all(isinstance(epoch, str) for epoch in epochs)


def test_the_position_is_in_the_one_encoded_frame() -> None:
    """
    Deliveries carry C{"offset"} and C{"epoch"} after C{"topic"} and
    C{"data"}, in the same frame object for every subscriber.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(a, "t")
    hub.subscribe(b, "t")
    position = hub.publish("t", {"x": [1]})
    assert isinstance(position, Position)
    assert a.frames[0] is b.frames[0]
    assert a.texts() == [f'{{"topic":"t","data":{{"x":[1]}},"offset":1,"epoch":"{position.epoch}"}}']


# -- the ring --------------------------------------------------------------------


def test_a_ring_keeps_the_last_size_publications() -> None:
    """
    A ring of size 3 keeps the last three; recovery from before them fails,
    from within them replays the rest in order.
    """
    ring = Ring("e", 3, 60.0)
    for i in range(1, 6):
        assert ring.append(f'{{"n":{i}}}', 0.0) == i
    assert len(ring) == 3
    assert ring.since(Position(1, "e"), 0.0) == History(5, "e", False, ())
    assert ring.since(Position(2, "e"), 0.0) == History(5, "e", True, [(3, '{"n":3}'), (4, '{"n":4}'), (5, '{"n":5}')])
    assert ring.since(Position(4, "e"), 0.0) == History(5, "e", True, [(5, '{"n":5}')])
    assert ring.since(Position(5, "e"), 0.0) == History(5, "e", True, ())
    assert ring.since(Position(6, "e"), 0.0).recovered is False
    assert ring.since(Position(4, "other"), 0.0).recovered is False
    assert ring.since(None, 0.0) == History(5, "e", False, ())


def test_a_ring_forgets_publications_older_than_its_ttl() -> None:
    """
    Publications older than C{ttl} seconds are dropped (when a new one
    arrives, or at a recovery); a recovery needing one of them fails.
    """
    ring = Ring("e", 100, 10.0)
    ring.append('{"n":1}', 0.0)
    ring.append('{"n":2}', 5.0)
    assert ring.since(Position(0, "e"), 9.0).recovered is True
    assert ring.since(Position(0, "e"), 10.0).recovered is False
    assert ring.since(Position(1, "e"), 10.0) == History(2, "e", True, [(2, '{"n":2}')])
    ring.append('{"n":3}', 15.0)
    assert len(ring) == 1


def test_a_ring_without_history_only_counts() -> None:
    """
    Size 0 or ttl 0: offsets still count; nothing is kept; only a client
    that missed nothing recovers.
    """
    for size, ttl in ((0, 60.0), (10, 0.0)):
        ring = Ring("e", size, ttl)
        assert [ring.append("{}", 0.0) for _ in range(3)] == [1, 2, 3]
        assert len(ring) == 0 and ring.size == 0
        assert ring.since(Position(2, "e"), 0.0).recovered is False
        assert ring.since(Position(3, "e"), 0.0).recovered is True


def test_positioned_adds_the_position_to_an_envelope() -> None:
    """
    L{positioned} makes the delivery text of an envelope.
    """
    text = positioned('{"topic":"t","data":[1]}', 7, "ab-1")
    assert json.loads(text) == {"topic": "t", "data": [1], "offset": 7, "epoch": "ab-1"}


# -- the /pubsub protocol --------------------------------------------------------


def test_subscribe_is_answered_with_the_position_before_any_delivery() -> None:
    """
    A subscription is answered C{{"subscribed": T, "offset": TOP, "epoch":
    E}}, first; the deliveries after it continue from TOP + 1.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    for i in range(3):
        hub.publish("t", i)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t")
    hub.publish("t", "live")
    clock.advance(0)
    answer, delivery = replies(transport)
    assert answer == {"subscribed": "t", "offset": 3, "epoch": answer["epoch"]}
    assert delivery == {"topic": "t", "data": "live", "offset": 4, "epoch": answer["epoch"]}


def test_subscribing_to_a_new_topic_answers_offset_0() -> None:
    """
    Nothing published yet: offset 0, with the epoch its publications will
    have.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "fresh")
    hub.publish("fresh", 1)
    clock.advance(0)
    answer, delivery = replies(transport)
    assert answer["offset"] == 0 and delivery["offset"] == 1 and delivery["epoch"] == answer["epoch"]


def test_recovery_replays_exactly_what_was_missed_then_live() -> None:
    """
    A client that saw offsets 1..2 and comes back after 3..5 were
    published gets C{"recovered": true}, then 3, 4, 5, then live ones: no
    gap, no duplicate.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    first, firstTransport = connect(PubSubFactory(hub))
    subscribe(first, "t")
    hub.publish("t", 1)
    hub.publish("t", 2)
    clock.advance(0)
    last = replies(firstTransport)[-1]
    first.connectionLost(Failure(ConnectionClosed(1006)))
    for i in range(3, 6):
        hub.publish("t", i)
    again, transport = connect(PubSubFactory(hub))
    subscribe(again, "t", {"offset": last["offset"], "epoch": last["epoch"]})
    hub.publish("t", 6)
    clock.advance(0)
    answer, *rest = replies(transport)
    assert answer == {"subscribed": "t", "recovered": True, "offset": 5, "epoch": last["epoch"]}
    assert [(m["offset"], m["data"]) for m in rest] == [(3, 3), (4, 4), (5, 5), (6, 6)]
    assert all(m["topic"] == "t" and m["epoch"] == last["epoch"] for m in rest)


def test_recovery_with_nothing_missed_is_recovered() -> None:
    """
    A client that missed nothing recovers, with nothing replayed.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    position = hub.publish("t", 1)
    assert isinstance(position, Position)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t", position._asdict())
    assert replies(transport) == [{"subscribed": "t", "recovered": True, "offset": 1, "epoch": position.epoch}]


def _recover(hub: Hub, clock: Clock, since: dict[str, Any]) -> list[Any]:
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t", since)
    hub.publish("t", "live")
    clock.advance(0)
    return replies(transport)


def test_recovery_fails_for_another_epoch() -> None:
    """
    An epoch from another hub (a restarted process): C{"recovered": false}
    with the current position, then live ones only.
    """
    clock = Clock()
    old = Hub(clock=clock).publish("t", 1)
    hub = Hub(clock=clock)
    hub.publish("t", "new")
    assert isinstance(old, Position)
    answer, live = _recover(hub, clock, {"offset": 1, "epoch": old.epoch})
    assert answer["recovered"] is False and answer["offset"] == 1 and answer["epoch"] != old.epoch
    assert (live["offset"], live["data"], live["epoch"]) == (2, "live", answer["epoch"])


def test_recovery_fails_when_the_next_publication_was_evicted() -> None:
    """
    With a history of 3, a client 5 behind cannot recover (too far behind:
    N+1 is gone); one 3 behind can.
    """
    clock = Clock()
    hub = Hub(clock=clock, historySize=3)
    positions = [hub.publish("t", i) for i in range(1, 8)]
    epoch = positions[0].epoch  # type: ignore[union-attr]
    answer, live = _recover(hub, clock, {"offset": 2, "epoch": epoch})
    assert answer == {"subscribed": "t", "recovered": False, "offset": 7, "epoch": epoch}
    assert live["offset"] == 8
    answer, *rest = _recover(hub, clock, {"offset": 5, "epoch": epoch})
    assert answer["recovered"] is True and answer["offset"] == 8
    assert [m["offset"] for m in rest] == [6, 7, 8, 9]


def test_recovery_fails_after_the_ttl() -> None:
    """
    Publications older than the ttl are no longer replayed.
    """
    clock = Clock()
    hub = Hub(clock=clock, historyTtl=60)
    position = hub.publish("t", 1)
    hub.publish("t", 2)
    assert isinstance(position, Position)
    clock.advance(59)
    answer, *_ = _recover(hub, clock, {"offset": 1, "epoch": position.epoch})
    assert answer["recovered"] is True
    clock.advance(2)
    answer, live = _recover(hub, clock, {"offset": 1, "epoch": position.epoch})
    assert answer["recovered"] is False and answer["offset"] == 3 and live["offset"] == 4


def test_recovery_fails_from_a_position_ahead_of_the_topic() -> None:
    """
    An offset ahead of the topic's latest (in its epoch) cannot be trusted:
    C{"recovered": false}.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    position = hub.publish("t", 1)
    assert isinstance(position, Position)
    answer, live = _recover(hub, clock, {"offset": 5, "epoch": position.epoch})
    assert answer["recovered"] is False and answer["offset"] == 1 and live["offset"] == 2


def test_history_off_gives_positions_but_recovers_nothing_missed() -> None:
    """
    C{historySize=0} (or C{historyTtl=0}): positions as usual, but a client
    that missed anything gets C{"recovered": false}.
    """
    clock = Clock()
    for hub in (Hub(clock=clock, historySize=0), Hub(clock=clock, historyTtl=0)):
        sub = FakeSubscriber()
        hub.subscribe(sub, "t")  # a subscriber keeps the topic's position
        first = hub.publish("t", 1)
        hub.publish("t", 2)
        assert isinstance(first, Position)
        answer, live = _recover(hub, clock, {"offset": 1, "epoch": first.epoch})
        assert answer["recovered"] is False and answer["offset"] == 2 and live["offset"] == 3


@pytest.mark.parametrize(
    ("since", "error"),
    [
        (5, "since must be"),
        ("1:abc", "since must be"),
        ([1, "abc"], "since must be"),
        ({"offset": 1}, "since must be"),
        ({"offset": 1, "epoch": "abc", "more": 1}, "since must be"),
        ({"offset": -1, "epoch": "abc"}, "since.offset"),
        ({"offset": 1.5, "epoch": "abc"}, "since.offset"),
        ({"offset": "1", "epoch": "abc"}, "since.offset"),
        ({"offset": True, "epoch": "abc"}, "since.offset"),
        ({"offset": 1, "epoch": 5}, "since.epoch"),
        ({"offset": 1, "epoch": ""}, "since.epoch"),
        ({"offset": 1, "epoch": 'a"b'}, "since.epoch"),
        ({"offset": 1, "epoch": "x" * 65}, "since.epoch"),
    ],
)
def test_bad_since_values_are_an_error_and_the_connection_stays(since: Any, error: str) -> None:
    """
    A C{since} that is not C{{"offset": N, "epoch": E}} is an C{{"error"}}
    reply, the topic is not subscribed, and the connection stays usable.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t", since)
    (reply,) = replies(transport)
    assert error in reply["error"]
    assert hub.subscribers("t") == frozenset() and wire.isOpen()
    subscribe(wire, "t")
    assert replies(transport)[-1]["subscribed"] == "t"


def test_since_null_is_a_plain_subscription() -> None:
    """
    C{"since": null}: as if there were no C{since}.
    """
    wire, transport = connect(PubSubFactory(Hub(clock=Clock())))
    send(wire, {"action": "subscribe", "topic": "t", "since": None})
    (answer,) = replies(transport)
    assert set(answer) == {"subscribed", "offset", "epoch"}


def test_recovery_is_refused_on_a_topic_the_client_may_not_subscribe_to() -> None:
    """
    The authorization hook decides a subscription from a position as any
    other: refused, the client gets an error and nothing of the history.
    """
    clock = Clock()
    hub = Hub(clock=clock, authorize=lambda identity, action, topic: topic != "secret" or identity == "ops")
    position = hub.publish("secret", {"password": "hunter2"})
    assert isinstance(position, Position)
    wire, transport = connect(PubSubFactory(hub), identity="guest")
    subscribe(wire, "secret", {"offset": 0, "epoch": position.epoch})
    assert replies(transport) == [{"error": "not allowed to subscribe to 'secret'"}]
    ops, opsTransport = connect(PubSubFactory(hub), identity="ops")
    subscribe(ops, "secret", {"offset": 0, "epoch": position.epoch})
    assert replies(opsTransport)[1]["data"] == {"password": "hunter2"}


def test_namespaces_have_their_own_offsets_and_histories() -> None:
    """
    The same topic in two namespaces counts separately, and a recovery in
    one replays nothing of the other.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    chat = hub.namespace("chat")
    hub.publish("lobby", "root 1")
    hub.publish("lobby", "root 2")
    inChat = chat.publish("lobby", "chat 1")
    assert isinstance(inChat, Position) and inChat.offset == 1
    wire, transport = connect(PubSubFactory(hub, namespace="chat"))
    subscribe(wire, "lobby", {"offset": 0, "epoch": inChat.epoch})
    answer, replayed = replies(transport)
    assert answer == {"subscribed": "lobby", "recovered": True, "offset": 1, "epoch": inChat.epoch}
    assert replayed == {"topic": "lobby", "data": "chat 1", "offset": 1, "epoch": inChat.epoch}


def test_old_clients_see_only_additions() -> None:
    """
    A client of the first protocol (it subscribes without C{since} and
    reads C{"topic"} and C{"data"}) gets what it got before; the new
    answer has neither key, so it is not mistaken for a delivery or an
    error.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t")
    send(wire, {"action": "publish", "topic": "t", "data": {"x": 1}})
    answer, delivery = replies(transport)
    assert not {"topic", "data", "error"} & set(answer)
    assert (delivery["topic"], delivery["data"]) == ("t", {"x": 1})


def test_subscribing_again_starts_over_from_the_given_position() -> None:
    """
    A client subscribed already that subscribes again gets an answer
    again, and from C{since} the replay after it (what it asked for).
    """
    clock = Clock()
    hub = Hub(clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t")
    first = hub.publish("t", 1)
    hub.publish("t", 2)
    clock.advance(0)
    assert isinstance(first, Position)
    subscribe(wire, "t", first._asdict())
    assert [m.get("offset") for m in replies(transport)] == [0, 1, 2, 2, 2]
    assert replies(transport)[3] == {"subscribed": "t", "recovered": True, "offset": 2, "epoch": first.epoch}
    assert hub.topicsOf(wire) == frozenset({"t"}) and len(hub.subscribers("t")) == 1


# -- the seam: a history that answers later ---------------------------------------


def resumingAfterTwo() -> tuple[Clock, DelayedBroker, Hub, CountingTransport, str]:
    """
    A hub on a L{DelayedBroker} with publications 1 to 5 on topic C{"t"},
    and a client that subscribed to it from offset 2, its history not
    answered yet: the clock, the broker, the hub, the client's transport
    and the topic's epoch.
    """
    clock = Clock()
    broker = DelayedBroker(clock)
    hub = Hub(broker, clock=clock)
    epoch = [hub.publish("t", i) for i in range(1, 6)][0].epoch  # type: ignore[union-attr]
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t", {"offset": 2, "epoch": epoch})
    return clock, broker, hub, transport, epoch


def test_the_seam_has_no_gap_when_the_history_answers_as_of_the_request() -> None:
    """
    Publications made while the history is being read are kept aside and
    written after the replay, in order, none twice, none missing.
    """
    clock, broker, hub, transport, epoch = resumingAfterTwo()
    assert replies(transport) == [] and hub.subscribers("t") == frozenset()
    for i in range(6, 9):
        hub.publish("t", i)
    clock.advance(0)
    broker.answerNow()  # as of offset 5
    hub.publish("t", 9)
    clock.advance(0)
    answer, *rest = replies(transport)
    assert answer == {"subscribed": "t", "recovered": True, "offset": 5, "epoch": epoch}
    assert [m["data"] for m in rest] == [3, 4, 5, 6, 7, 8, 9]


def test_the_seam_has_no_duplicate_when_the_history_answers_later() -> None:
    """
    A history that already holds what was published meanwhile: the kept
    aside copies of those are dropped by offset.
    """
    clock, broker, hub, transport, epoch = resumingAfterTwo()
    for i in range(6, 9):
        hub.publish("t", i)
    broker.answerLater()  # as of offset 8
    hub.publish("t", 9)
    clock.advance(0)
    answer, *rest = replies(transport)
    assert answer["recovered"] is True and answer["offset"] == 8
    assert [m["offset"] for m in rest] == [3, 4, 5, 6, 7, 8, 9]


def test_the_seam_without_recovery_delivers_only_what_follows_the_answer() -> None:
    """
    Not recovered (or no C{since}): the deliveries kept aside that the
    answer's position already covers are dropped; the later ones follow.
    """
    clock = Clock()
    broker = DelayedBroker(clock)
    hub = Hub(broker, clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t")
    hub.publish("t", 1)
    hub.publish("t", 2)
    broker.answerLater()  # as of offset 2
    hub.publish("t", 3)
    clock.advance(0)
    other, otherTransport = connect(PubSubFactory(hub))
    subscribe(other, "t", {"offset": 1, "epoch": "elsewhere"})
    hub.publish("t", 4)
    broker.answerNow()  # as of offset 3
    clock.advance(0)
    assert [m.get("offset") for m in replies(transport)] == [2, 3, 4]
    answer, live = replies(otherTransport)
    assert answer["recovered"] is False and answer["offset"] == 3 and live["offset"] == 4


def test_closing_while_the_history_is_read_writes_nothing_later() -> None:
    """
    A subscriber that leaves before its history arrives: nothing is written
    to it, nothing kept for it, and the broker is told the topic is no
    longer wanted.
    """
    clock = Clock()
    broker = DelayedBroker(clock)
    hub = Hub(broker, clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t")
    hub.publish("t", 1)
    assert broker._wanted == {"t"}
    wire.connectionLost(Failure(ConnectionClosed(1006)))
    before = transport.value()
    broker.answerNow()
    assert transport.value() == before
    assert hub._recovering == {} and hub._topics == {} and broker._wanted == set()


def test_a_failed_history_read_goes_live_unrecovered() -> None:
    """
    A history read that fails is logged; the client is told
    C{"recovered": false} (no position: none is known) and gets the live
    ones, including those kept aside meanwhile.
    """
    clock = Clock()
    broker = DelayedBroker(clock)
    hub = Hub(broker, clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "t", {"offset": 0, "epoch": "e"})
    hub.publish("t", 1)
    _channel, _since, _history, answer = broker.asked.pop()
    with captured_logs() as logs:
        answer.errback(RuntimeError("redis is gone"))
    hub.publish("t", 2)
    clock.advance(0)
    first, *rest = replies(transport)
    assert first == {"subscribed": "t", "recovered": False}
    assert [m["data"] for m in rest] == [1, 2]
    assert any("redis is gone" in line for line in logs)


# -- brokers without positions ---------------------------------------------------


class Unpositioned:
    """
    A broker of the first version of the protocol (as the Redis pub/sub
    broker is for now): C{start(deliver)}, deliveries of two arguments,
    no C{history}.
    """

    def start(self, deliver: Any) -> None:
        self.deliver = deliver

    def subscribe(self, channel: str) -> None:
        pass

    def unsubscribe(self, channel: str) -> None:
        pass

    def publish(self, channel: str, payload: str) -> None:
        self.deliver(channel, payload)

    def stop(self) -> None:
        pass


def test_a_broker_without_positions_still_works() -> None:
    """
    Without positions: answers C{{"subscribed": T}} (and C{"recovered":
    false} to a C{since}), deliveries of C{{"topic", "data"}} only.
    """
    clock = Clock()
    hub = Hub(Unpositioned(), clock=clock)  # type: ignore[arg-type]
    assert hub.positions is False
    wire, transport = connect(PubSubFactory(hub))
    subscribe(wire, "a")
    subscribe(wire, "b", {"offset": 3, "epoch": "e"})
    assert hub.publish("a", 1) is None
    clock.advance(0)
    assert replies(transport) == [
        {"subscribed": "a"},
        {"subscribed": "b", "recovered": False},
        {"topic": "a", "data": 1},
    ]


# -- settings ------------------------------------------------------------------------


def test_history_limits_come_from_the_hub_and_its_per_topic_hook() -> None:
    """
    C{historyFor} overrides the sizes of some topics (seen as C{N/T} in a
    namespace), C{None} keeps the defaults; 0 in either turns history off.
    """
    asked: list[str] = []

    def historyFor(topic: str) -> tuple[int, float] | None:
        asked.append(topic)
        return {"big": (1000, 3600.0), "chat/lobby": (2, 5.0), "off": (0, 60.0)}.get(topic)

    hub = Hub(clock=Clock(), historySize=10, historyTtl=30, historyFor=historyFor)
    assert hub.historyLimits("big") == (1000, 3600.0)
    assert hub.historyLimits(channelFor("chat", "lobby")) == (2, 5.0)
    assert hub.historyLimits("off") == (0, 0.0)
    assert hub.historyLimits("other") == (10, 30.0)
    assert asked == ["big", "chat/lobby", "off", "other"]
    assert Hub(clock=Clock(), historyTtl=0).historyLimits("x") == (0, 0.0)
    with pytest.raises(ValueError):
        Hub(clock=Clock(), historySize=-1)


def test_the_hook_is_asked_once_per_topic() -> None:
    """
    The broker caches a topic's limits: one call of the hook per topic, not
    per publication.
    """
    asked: list[str] = []
    hub = Hub(clock=Clock(), historyFor=lambda topic: asked.append(topic))  # type: ignore[func-returns-value]
    for i in range(5):
        hub.publish("t", i)
    assert asked == ["t"]


def test_quiet_topics_are_forgotten_after_their_ttl() -> None:
    """
    Memory stays bounded: once a topic's publications expired and nobody
    here subscribes to it, the sweep forgets it; its next publication
    starts a new epoch at offset 1 (so an old position fails to recover).
    """
    clock = Clock()
    broker = MemoryBroker(clock=clock)
    hub = Hub(broker, clock=clock, historyTtl=30)
    kept = FakeSubscriber()
    hub.subscribe(kept, "kept")
    old = hub.publish("quiet", 1)
    hub.publish("kept", 1)
    assert isinstance(old, Position)
    clock.advance(45)
    assert set(broker._rings) == {"kept"}
    assert len(broker._rings["kept"]) == 0
    new = hub.publish("quiet", 2)
    assert isinstance(new, Position) and new.offset == 1 and new.epoch != old.epoch
    hub.unsubscribe(kept, "kept")
    clock.advance(45)
    assert broker._rings == {} and not clock.getDelayedCalls()


def test_without_history_nobody_s_topics_take_no_memory() -> None:
    """
    History off: publications to topics nobody here subscribes to keep
    nothing; a subscribed topic keeps only its position.
    """
    clock = Clock()
    broker = MemoryBroker(clock=clock)
    hub = Hub(broker, clock=clock, historySize=0)
    for i in range(100):
        hub.publish(f"t{i}", i)
    assert broker._rings == {}
    sub = FakeSubscriber()
    hub.subscribe(sub, "s")
    hub.publish("s", 1)
    assert list(broker._rings) == ["s"]
    hub.unsubscribeAll(sub)
    assert broker._rings == {}


def test_the_plugin_flags_reach_the_hub() -> None:
    """
    C{--history-size} and C{--history-ttl} set the hub's defaults (1,000
    publications and 120 s without them); negative values are usage
    errors.
    """
    from twisted.python.usage import UsageError

    options = Options()
    options.parseOptions(["--history-size", "7", "--history-ttl", "12.5"])
    assert (options["history-size"], options["history-ttl"]) == (7, 12.5)
    defaults = Options()
    defaults.parseOptions([])
    assert (defaults["history-size"], defaults["history-ttl"]) == (1000, 120.0)
    hub = Hub(clock=Clock(), historySize=options["history-size"], historyTtl=options["history-ttl"])
    assert hub.historyLimits("t") == (7, 12.5)
    for bad in (["--history-size", "-1"], ["--history-ttl", "-5"], ["--history-size", "x"]):
        with pytest.raises(UsageError, match="--history-"):
            Options().parseOptions(bad)

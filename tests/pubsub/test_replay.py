"""
Tests for the bounds on recovery (L{txpulse.pubsub.hub}: paced replays,
one replay at a time per connection; L{txpulse.pubsub.broker.memory}: the
history's memory and topic budget, random epochs): what the README's
"Delivery guarantees" and "Limits and security" promise when clients ask
for more replay, or publish more history, than the server should hold.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.exceptions import ConnectionClosed
from txpulse.core.frames import Opcode
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.tap import Options, buildRoot
from txpulse.pubsub.broker.memory import MemoryBroker
from txpulse.pubsub.history import EPOCH, Position, keptBytes
from txpulse.pubsub.hub import Hub
from txpulse.pubsub.protocol import PubSubFactory

from ..support.frames import client_frame, server_frames
from ..support.hub import FakeSubscriber, connect
from ..support.logs import captured_logs
from ..support.transports import CountingTransport


class TurnClock(Clock):
    """
    A L{Clock} whose L{turn} runs what a reactor iteration would: the calls
    due when it starts, not those they schedule (L{Clock.advance} runs a
    C{callLater(0)} made by a call it runs in the same advance).
    """

    def turn(self) -> None:
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call in self.calls:
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


def since(topic: str, position: Position) -> bytes:
    """
    A client's masked subscribe-since request frame.
    """
    request = {"action": "subscribe", "topic": topic, "since": {"offset": position.offset, "epoch": position.epoch}}
    return client_frame(Opcode.TEXT, json.dumps(request).encode())


def replies(transport: CountingTransport) -> list[Any]:
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def filled(hub: Hub, topic: str = "t", count: int = 1000, data: str = "d" * 100) -> Position:
    """
    Publish C{count} messages to C{topic}; the position before the first.
    """
    first = hub.publish(topic, data)
    assert isinstance(first, Position)
    for _ in range(count - 1):
        hub.publish(topic, data)
    return Position(0, first.epoch)


# -- F1: replays within the write limits ------------------------------------------


def test_pipelined_replays_of_a_non_reader_hold_one_slice_not_every_replay() -> None:
    """
    A client that does not read and pipelines a thousand requests to
    replay a 1,000-message topic (re-subscribing starts the replay over,
    so the topic limit does not bound it) gets one replay at a time: the
    rest of its requests wait unread, and what is written for it stays
    within its buffer plus one slice (C{maxBatch}), not 1,000 replays
    (150 MB).
    """
    clock = Clock()
    hub = Hub(clock=clock)
    start = filled(hub)
    wire, transport = connect(PubSubFactory(hub))
    wire.pauseProducing()  # its transport's buffer is full: it does not read
    wire.dataReceived(since("t", start) * 1000)
    for _ in range(100):
        clock.advance(0.05)
    assert wire.messagesIn == 1
    assert len(transport.value()) < 2 * hub.maxBatch
    assert transport.producerState == "paused"  # the rest waits in TCP


def test_each_request_of_a_reader_is_served_in_order_after_its_replay() -> None:
    """
    The same pipelined requests from a client that reads: each replay is
    written whole, no gap and no duplicate, then the next request is read.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    start = filled(hub, count=700)
    wire, transport = connect(PubSubFactory(hub))
    wire.dataReceived(since("t", start) * 3 + client_frame(Opcode.TEXT, b'{"action":"publish","topic":"t","data":1}'))
    for _ in range(20):
        clock.advance(0)
    got = replies(transport)
    answers = [i for i, m in enumerate(got) if "subscribed" in m]
    assert len(answers) == 3 and wire.messagesIn == 4
    for i in answers:
        assert [m["offset"] for m in got[i + 1 : i + 701]] == list(range(1, 701))
    assert got[-1]["data"] == 1 and got[-1]["offset"] == 701


def test_replays_are_spread_over_turns_in_bounded_slices() -> None:
    """
    Many clients resuming at once (F6: 1,000 clients of a 1,000-message
    topic froze the reactor for a second): no turn writes more than
    C{replayPerTurn} bytes of replay (plus one message), and every client
    still gets its whole replay, then the live messages published while it
    was being replayed, in order, with no gap and no duplicate at the seam.
    """
    clock = TurnClock()
    hub = Hub(clock=clock, replayPerTurn=20_000, maxBatch=8_000)
    start = filled(hub, count=300)
    clients = [connect(PubSubFactory(hub)) for _ in range(20)]
    written = 0
    for wire, _transport in clients:
        wire.dataReceived(since("t", start))
    perTurn = [sum(len(t.value()) for _w, t in clients) - written]
    turns = 0
    while hub._replays or hub._replayCall is not None:
        before = sum(len(t.value()) for _w, t in clients)
        if turns == 3:
            hub.publish("t", "live")
        clock.turn()
        perTurn.append(sum(len(t.value()) for _w, t in clients) - before)
        turns += 1
    assert turns > 10
    assert max(perTurn) < 20_000 + 2_000  # the budget, frame headers, one message
    for _wire, transport in clients:
        got = replies(transport)
        assert "subscribed" in got[0] and got[0]["recovered"] is True
        assert [m["offset"] for m in got[1:]] == list(range(1, 302))
        assert got[-1]["data"] == "live"


def test_a_stalled_replay_keeps_live_deliveries_aside_within_the_backlog() -> None:
    """
    A subscriber behind on its writes gets no further slices of its
    replay; what the topic delivers meanwhile is kept aside for it, and
    counts against C{maxBacklog}: past it, the subscriber is disconnected
    as too slow (1008), the others are not disturbed.
    """
    clock = Clock()
    hub = Hub(clock=clock, maxBacklog=50_000, maxBatch=4_000)
    start = filled(hub, count=200)
    slow, other = FakeSubscriber(), FakeSubscriber()
    hub.subscribe(other, "t")
    done = hub.subscribe(slow, "t", start)
    assert done is not None
    slow.writeBacklog = 1
    clock.advance(0)
    sent = len(slow.frames)
    with captured_logs() as logs:
        for _ in range(600):
            hub.publish("t", "x" * 100)
            clock.advance(0.001)
    assert len(slow.frames) == sent  # nothing more than before it fell behind
    assert slow.closed == (1008, "subscriber too slow")
    assert any("too slow" in line for line in logs)
    assert other.closed is None and len(other.frames) >= 600
    assert hub._recovering == {}
    assert done.called


def test_a_replay_abandoned_by_the_connection_closing_is_dropped() -> None:
    """
    A client that disconnects during its replay: nothing more is written,
    and nothing of it is kept.
    """
    clock = Clock()
    hub = Hub(clock=clock, replayPerTurn=4_000)
    start = filled(hub, count=500)
    wire, transport = connect(PubSubFactory(hub))
    wire.dataReceived(since("t", start))
    clock.advance(0)
    wire.connectionLost(Failure(ConnectionClosed(1006)))
    for _ in range(10):
        clock.advance(0.05)
    assert hub._recovering == {} and not hub._replays and hub._replayCall is None


# -- F2: the history's budget -------------------------------------------------------


def test_history_memory_is_bounded_oldest_first() -> None:
    """
    Past C{historyMaxBytes} (counted as each payload's real size), the
    oldest publications go, those of the least recently published topic
    first; a client resuming from them gets C{"recovered": false}, a
    client resuming from what is left recovers.
    """
    clock = Clock()
    hub = Hub(clock=clock, historyMaxBytes=400_000)
    broker = hub.broker
    assert isinstance(broker, MemoryBroker)
    old = filled(hub, "old", count=10, data="o" * 20_000)
    for _ in range(30):
        hub.publish("new", "n" * 20_000)
    assert broker.keptBytes <= 400_000
    assert broker.keptBytes == sum(keptBytes(p) for ring in broker._rings.values() for p in ring._payloads)
    assert "old" not in broker._rings  # nothing kept, nobody subscribed: forgotten
    assert broker.history("old", old).recovered is False
    kept = len(broker._rings["new"])
    assert 15 <= kept < 30
    assert broker.history("new", Position(30 - kept, broker._rings["new"].epoch)).recovered is True
    assert broker.history("new", Position(29 - kept, broker._rings["new"].epoch)).recovered is False


def test_large_text_counts_its_real_size() -> None:
    """
    Non-ASCII text costs CPython two or four bytes per character: the
    budget counts that, not the number of characters.
    """
    broker = MemoryBroker(clock=Clock(), maxBytes=0)
    broker.start(lambda *a: None, lambda channel: (10, 60.0))
    broker.publish("t", '{"topic":"t","data":"' + "\U0001f600" * 1000 + '"}')
    assert broker.keptBytes > 4000


def test_a_publication_larger_than_the_budget_is_not_kept_but_positioned() -> None:
    """
    One publication over the whole budget is delivered, with its position,
    but not kept; a subscribed topic keeps its position.
    """
    broker = MemoryBroker(clock=Clock(), maxBytes=10_000)
    delivered: list[tuple[Any, ...]] = []
    broker.start(lambda *a: delivered.append(a), lambda channel: (10, 60.0))
    broker.subscribe("t")
    broker.publish("t", "x" * 20_000)
    second = broker.publish("t", "y")
    assert second.offset == 2 and [d[2] for d in delivered] == [1, 2]
    assert broker.keptBytes == keptBytes("y")


def test_history_keeps_at_most_max_topics() -> None:
    """
    One client publishing to 100,000 topics: only the C{historyMaxTopics}
    most recently published keep a history; the others are forgotten (new
    epoch next time), so memory does not grow with the number of topics.
    """
    clock = Clock()
    hub = Hub(clock=clock, historyMaxTopics=100)
    broker = hub.broker
    assert isinstance(broker, MemoryBroker)
    first = hub.publish("topic-0", 1)
    for i in range(1, 5000):
        hub.publish(f"topic-{i}", 1)
    assert broker.keptTopics == 100 and len(broker._rings) == 100
    assert set(broker._rings) == {f"topic-{i}" for i in range(4900, 5000)}
    assert isinstance(first, Position)
    assert broker.history("topic-0", Position(0, first.epoch)).recovered is False


def test_a_subscribed_topic_past_the_topic_cap_keeps_its_position() -> None:
    """
    A topic with a local subscriber whose history is dropped for the cap
    keeps its offsets and epoch (its subscribers see no reset), and gets a
    history again when it is next published to.
    """
    broker = MemoryBroker(clock=Clock(), maxTopics=2)
    broker.start(lambda *a: None, lambda channel: (10, 60.0))
    broker.subscribe("a")
    one = broker.publish("a", "1")
    broker.publish("b", "1")
    broker.publish("c", "1")
    assert broker.keptTopics == 2 and "a" in broker._rings and not broker._rings["a"]
    two = broker.publish("a", "2")
    assert (two.offset, two.epoch) == (2, one.epoch)
    assert broker.history("a", Position(1, one.epoch)).recovered is True


def test_the_plugin_history_bounds_reach_the_broker() -> None:
    """
    C{--history-max-bytes} and C{--history-max-topics} set the in-process
    broker's bounds; the defaults are the documented ones.
    """
    options = Options()
    options.parseOptions([])
    assert options["history-max-bytes"] == 64 << 20 and options["history-max-topics"] == 10_000
    options = Options()
    options.parseOptions(["--history-max-bytes", "1000", "--history-max-topics", "7"])
    hub = Hub(
        MemoryBroker(), historyMaxBytes=options["history-max-bytes"], historyMaxTopics=options["history-max-topics"]
    )
    assert isinstance(hub.broker, MemoryBroker)
    assert (hub.broker.maxBytes, hub.broker.maxTopics) == (1000, 7)
    buildRoot(options, ConnectionRegistry(), clock=Clock())


# -- F8: epochs --------------------------------------------------------------------


def test_epochs_are_random_and_independent_per_topic() -> None:
    """
    An epoch tells nothing about other topics: creating topics elsewhere
    (another namespace's rooms, which a client may not see) does not show
    in the epochs a client gets; they are valid epoch strings, and not
    guessable from one another.
    """
    clock = Clock()
    hub = Hub(clock=clock)
    epochs = []
    for i in range(20):
        hub.namespace("chat").publish(f"room{i}", 1)
        position = hub.publish(f"t{i}", 1)
        assert isinstance(position, Position)
        epochs.append(position.epoch)
    assert all(EPOCH.fullmatch(epoch) for epoch in epochs)
    assert len(set(epochs)) == 20
    assert len({epoch[:8] for epoch in epochs}) == 20  # no shared prefix
    assert all(len(epoch) >= 16 for epoch in epochs)

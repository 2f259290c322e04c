"""
Positions, history and recovery across processes on the Redis broker
(L{txpulse.pubsub.broker.redis}, L{txpulse.pubsub.broker.streams}), against
a real C{redis-server}: offsets assigned atomically by two brokers (as two
processes would have), recovery read from the stream, gaps in pub/sub
healed from it, Redis restarted with and without its data, an outage.
"""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.python.failure import Failure

from txpulse.pubsub import Hub, Position
from txpulse.pubsub.broker.redis import RedisBroker
from txpulse.pubsub.broker.streams import PUBLISH

from ..support.hub import FakeSubscriber
from ..support.waits import until
from .conftest import RedisServer, broker_lines, broker_of


def positions(subscriber: FakeSubscriber) -> list[tuple[Any, int | None, str | None]]:
    """
    C{(data, offset, epoch)} of every delivery a subscriber got (its
    subscription answers left out).
    """
    return [(m["data"], m.get("offset"), m.get("epoch")) for m in subscriber.messages() if "topic" in m]


def answers(subscriber: FakeSubscriber) -> list[dict[str, Any]]:
    """
    The subscription answers a subscriber got.
    """
    return [m for m in subscriber.messages() if "subscribed" in m]


def epochOf(redis_server: RedisServer, channel: str) -> str:
    """
    The epoch Redis keeps for C{channel}.
    """
    epoch = redis_server.command("HGET", f"txpulse:position:{channel}", "epoch")
    assert isinstance(epoch, str)
    return epoch


def lose(redis_server: RedisServer, channel: str, payload: str, size: int = 100) -> None:
    """
    Publish C{payload} to C{channel} as the broker's script does, except
    that the pub/sub message goes to a channel nobody listens to: the
    offset is taken and the entry kept, but no subscriber receives it (a
    pub/sub message lost on its way).
    """
    redis_server.command(
        "EVAL",
        PUBLISH,
        "3",
        f"txpulse:position:{channel}",
        f"txpulse:history:{channel}",
        "txpulse:origin:tests",
        "nobody-listens",
        payload,
        f"{size} 60000 86400000 lostepoch 1",
    )


@pytest_twisted.ensureDeferred
async def test_offsets_are_atomic_across_two_brokers(make_hub: Any, redis_server: RedisServer) -> None:
    """
    Two brokers publishing to one topic at the same time get offsets 1 to
    400 between them, each once; the subscribers of both processes receive
    all 400 in offset order, the same publications at the same offsets.
    """
    a, b = await make_hub(), await make_hub()
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "race")
    b.subscribe(onB, "race")
    await until(lambda: broker_of(a).confirmed("race") and broker_of(b).confirmed("race"), "both subscriptions")
    published = []
    for i in range(200):
        published.append(a.publish("race", f"a{i}"))
        published.append(b.publish("race", f"b{i}"))
    got = await gatherResults(published)
    epoch = epochOf(redis_server, "race")
    assert sorted(position.offset for position in got) == list(range(1, 401))
    assert {position.epoch for position in got} == {epoch}
    await until(lambda: len(onA.frames) == 400 and len(onB.frames) == 400, "400 deliveries on each side")
    assert [offset for _, offset, _ in positions(onA)] == list(range(1, 401))
    assert positions(onA) == positions(onB)
    byOffset = {position.offset: f"{'ab'[i % 2]}{i // 2}" for i, position in enumerate(got)}
    assert [data for data, _, _ in positions(onA)] == [byOffset[n] for n in range(1, 401)]
    # Publications of one process keep their order.
    assert [d for d, _, _ in positions(onA) if d.startswith("a")] == [f"a{i}" for i in range(200)]


@pytest_twisted.ensureDeferred
async def test_recovery_reads_the_stream(make_hub: Any, redis_server: RedisServer) -> None:
    """
    A subscriber of one process resumes from a position another process
    published past: answered C{"recovered": true} with the top, then the
    publications after its position, in order, then live ones. From
    another epoch, or ahead of the top, it is answered C{"recovered":
    false} and gets only live ones.
    """
    a, b = await make_hub(), await make_hub()
    for i in range(1, 11):
        await b.publish("feed", i)
    epoch = epochOf(redis_server, "feed")
    resumed, stranger, ahead = FakeSubscriber(), FakeSubscriber(), FakeSubscriber()
    a.subscribe(resumed, "feed", Position(3, epoch))
    a.subscribe(stranger, "feed", Position(3, "another"))
    a.subscribe(ahead, "feed", Position(11, epoch))
    await until(lambda: answers(resumed) and answers(stranger) and answers(ahead), "the answers")
    assert answers(resumed) == [{"subscribed": "feed", "recovered": True, "offset": 10, "epoch": epoch}]
    assert positions(resumed) == [(i, i, epoch) for i in range(4, 11)]
    for other in (stranger, ahead):
        assert answers(other) == [{"subscribed": "feed", "recovered": False, "offset": 10, "epoch": epoch}]
    await until(lambda: broker_of(a).confirmed("feed"), "A's subscription")
    await b.publish("feed", 11)
    await until(lambda: len(positions(stranger)) == 1, "the live one")
    assert positions(resumed) == [(i, i, epoch) for i in range(4, 12)]
    assert positions(stranger) == positions(ahead) == [(11, 11, epoch)]


@pytest_twisted.ensureDeferred
async def test_recovery_fails_past_the_history_size_or_age(make_hub: Any, redis_server: RedisServer) -> None:
    """
    The stream is trimmed to about C{historySize} entries (C{MAXLEN ~}:
    at least that many), and entries older than C{historyTtl} do not
    count: resuming from before them is C{"recovered": false}, from
    within them C{true}.
    """
    a = await make_hub({"historySize": 5, "historyTtl": 0.5})
    for i in range(1, 301):
        a.publish("busy", i)
    await a.publish("young", "old")
    await a.publish("busy", 301)
    epoch = epochOf(redis_server, "busy")
    assert 5 <= redis_server.command("XLEN", "txpulse:history:busy") < 300
    early, late = FakeSubscriber(), FakeSubscriber()
    a.subscribe(early, "busy", Position(1, epoch))
    a.subscribe(late, "busy", Position(297, epoch))
    await until(lambda: answers(early) and answers(late), "the answers")
    assert answers(early)[0]["recovered"] is False and positions(early) == []
    assert answers(late)[0]["recovered"] is True
    assert [offset for _, offset, _ in positions(late)] == [298, 299, 300, 301]

    youngEpoch = epochOf(redis_server, "young")
    await deferLater(reactor, 0.6)
    aged = FakeSubscriber()
    a.subscribe(aged, "young", Position(0, youngEpoch))
    await until(lambda: answers(aged), "the answer")
    assert answers(aged) == [{"subscribed": "young", "recovered": False, "offset": 1, "epoch": youngEpoch}]
    # Expired along with its history, by Redis, after the ttl without
    # publications.
    assert redis_server.command("EXISTS", "txpulse:history:young") == 0


@pytest_twisted.ensureDeferred
async def test_resuming_while_another_process_publishes_has_no_gap_and_no_duplicate(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    Subscribers of one process resume (from a position, and from nothing)
    while another process publishes a stream of messages: each receives
    every publication after its answer's position exactly once, in order,
    whatever arrived while the stream was read.
    """
    a, b = await make_hub(), await make_hub()
    await b.publish("live", 0)
    epoch = epochOf(redis_server, "live")
    subscribers: list[tuple[FakeSubscriber, int | None]] = []

    for turn in range(40):
        for i in range(5):
            b.publish("live", turn * 5 + i + 1)
        if turn % 8 == 3:
            resumed, fresh = FakeSubscriber(), FakeSubscriber()
            a.subscribe(resumed, "live", Position(turn, epoch))
            a.subscribe(fresh, "live", answer=True)
            subscribers += [(resumed, turn), (fresh, None)]
        await deferLater(reactor, 0.002)
    await b.publish("live", 201)
    # Offset 1 was "0": data N has offset N + 1, up to 202.
    await until(lambda: all(positions(s) and positions(s)[-1][0] == 201 for s, _ in subscribers), "everything")
    for subscriber, since in subscribers:
        (answer,) = answers(subscriber)
        start = since if since is not None else answer["offset"]
        assert answer.get("recovered", True) is True
        assert [offset for _, offset, _ in positions(subscriber)] == list(range(start + 1, 203)), (since, answer)


@pytest_twisted.ensureDeferred
async def test_a_gap_in_pub_sub_is_healed_from_the_stream(make_hub: Any, redis_server: RedisServer) -> None:
    """
    A publication whose pub/sub message never reaches a process (here:
    sent to a channel nobody listens to) is read from the stream when the
    next one arrives, and delivered before it, in order, once.
    """
    a = await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    await a.publish("t", 1)
    epoch = epochOf(redis_server, "t")
    lose(redis_server, "t", '{"topic":"t","data":2}')
    lose(redis_server, "t", '{"topic":"t","data":3}')
    await a.publish("t", 4)
    await until(lambda: len(onA.frames) == 4, "four deliveries")
    assert positions(onA) == [(i, i, epoch) for i in range(1, 5)]
    assert broker_of(a).healed >= 2  # and 4, if the read found it before pub/sub brought it


@pytest_twisted.ensureDeferred
async def test_a_gap_without_history_is_delivered_as_a_gap(make_hub: Any, redis_server: RedisServer) -> None:
    """
    With history off there is nothing to heal a gap from: the next
    publication is delivered anyway, and the subscriber sees the gap by
    its offset.
    """
    a = await make_hub({"historySize": 0})
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    await a.publish("t", 1)
    lose(redis_server, "t", '{"topic":"t","data":2}', size=0)
    await a.publish("t", 3)
    await until(lambda: len(onA.frames) == 2, "two deliveries")
    assert [(data, offset) for data, offset, _ in positions(onA)] == [(1, 1), (3, 3)]
    assert redis_server.command("EXISTS", "txpulse:history:t") == 0


@pytest_twisted.ensureDeferred
async def test_a_process_cut_off_from_pub_sub_heals_what_it_missed(make_hub: Any, redis_server: RedisServer) -> None:
    """
    A process whose subscribed connection drops (killed by Redis) while
    another publishes: once it has subscribed again, it reads what it
    missed from the stream and delivers it, in order, before the live
    ones; nothing twice.
    """
    slow = 0.3
    a = await make_hub(retryPolicy=lambda attempt: slow)
    b = await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    await b.publish("t", 1)
    await until(lambda: len(onA.frames) == 1, "the first delivery")
    kill(redis_server, broker_of(a), "sub")
    await until(lambda: not broker_of(a).confirmed("t"), "A to notice")
    for i in range(2, 7):
        await b.publish("t", i)
    assert len(onA.frames) == 1
    await until(lambda: broker_of(a).confirmed("t"), "A to subscribe again")
    await b.publish("t", 7)
    await until(lambda: len(onA.frames) == 7, "all seven")
    epoch = epochOf(redis_server, "t")
    assert positions(onA) == [(i, i, epoch) for i in range(1, 8)]
    assert broker_of(a).healed == 5


@pytest_twisted.ensureDeferred
async def test_a_process_cut_off_from_redis_reports_and_heals(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    A process cut off from Redis (both its connections dropped) for longer
    than its C{outageBuffer} while another keeps publishing: its own
    publication meanwhile waits, then reaches its own subscriber only,
    without a position, and is counted and reported (its Deferred fails);
    once back, it heals from the stream everything the other published
    meanwhile, in order, then goes on live.
    """
    a = await make_hub(retryPolicy=lambda attempt: 0.5, outageBuffer=0.1)
    b = await make_hub()
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "t")
    b.subscribe(onB, "t")
    await until(lambda: broker_of(a).confirmed("t") and broker_of(b).confirmed("t"), "the subscriptions")
    await b.publish("t", 1)
    await until(lambda: len(onA.frames) == 1, "the first delivery")
    kill(redis_server, broker_of(a), "pub")
    kill(redis_server, broker_of(a), "sub")
    await until(lambda: not broker_of(a).connected, "A to notice")
    waiting = a.publish("t", "only here")
    assert isinstance(waiting, Deferred)
    failures: list[Failure] = []
    waiting.addErrback(failures.append)
    await until(lambda: failures, "the broker to give up waiting")
    assert broker_of(a).localOnly == 1
    assert a.publish("t", "at once") is None
    for i in range(2, 6):
        await b.publish("t", i)
    await until(lambda: broker_of(a).connected and broker_of(a).confirmed("t"), "A to be back")
    await b.publish("t", 6)
    await until(lambda: len(positions(onA)) == 8, "everything at A")
    epoch = epochOf(redis_server, "t")
    assert positions(onA) == [(1, 1, epoch), ("only here", None, None), ("at once", None, None)] + [
        (i, i, epoch) for i in range(2, 7)
    ]
    assert positions(onB) == [(i, i, epoch) for i in range(1, 7)]
    lines = [text for _, text in broker_lines(log_events)]
    assert len([text for text in lines if "1 publication(s) that waited for it" in text]) == 1, lines
    back = [text for text in lines if "is back after" in text]
    assert len(back) == 1 and "2 message(s) published meanwhile reached this process only" in back[0], back


def kill(redis_server: RedisServer, broker: RedisBroker, role: str) -> None:
    """
    Have Redis drop C{broker}'s C{"pub"} or C{"sub"} connection.
    """
    (client,) = [c for c in redis_server.clients() if c.get("name") == f"txpulse-{role}-{broker.origin}"]
    redis_server.command("CLIENT", "KILL", "ID", client["id"])


def publishHeld(redis_server: RedisServer, hub: Hub, values: tuple[int, ...]) -> list[Deferred[Any]]:
    """
    Publish each of C{values} to topic C{"t"} while Redis holds writes
    (C{CLIENT PAUSE WRITE}): the scripts wait in Redis, unanswered, until
    L{dropHeld}.
    """
    redis_server.command("CLIENT", "PAUSE", "2000", "WRITE")
    sent: list[Deferred[Any]] = []
    for value in values:
        d = hub.publish("t", value)
        assert isinstance(d, Deferred)
        sent.append(d)
    return sent


async def dropHeld(redis_server: RedisServer, broker: RedisBroker) -> None:
    """
    After L{publishHeld}: Redis drops C{broker}'s publishing connection with
    the scripts held in it, then takes writes again.
    """
    await deferLater(reactor, 0.05)
    kill(redis_server, broker, "pub")
    redis_server.command("CLIENT", "UNPAUSE")


def runAfterAll(redis_server: RedisServer, broker: RedisBroker, data: int) -> None:
    """
    Redis runs C{broker}'s publish script of C{data} to topic C{"t"} (its
    C{data}-th publication) after all, as it would have if it had been
    frozen with it in its input buffer: as the broker sent it (its origin,
    its limits), with a fresh epoch should the topic have none.
    """
    limits = broker._scriptArgs("t")[1]
    redis_server.command(
        "EVAL",
        PUBLISH,
        "3",
        "txpulse:position:t",
        "txpulse:history:t",
        f"txpulse:origin:{broker.origin}",
        "txpulse:t",
        json.dumps({"topic": "t", "data": data}, separators=(",", ":")),
        f"{limits} freshepoch{data} {data}",
    )


@pytest_twisted.ensureDeferred
async def test_own_publications_without_a_confirmed_subscription_are_delivered_in_order(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    A process that subscribes and publishes at once (before Redis
    confirmed the subscription) still delivers its own publications to its
    subscriber, in order, once, with their positions.
    """
    a = await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    assert not broker_of(a).confirmed("t")
    published = [a.publish("t", i) for i in range(1, 21)]
    await gatherResults(published)
    await until(lambda: len(onA.frames) == 20, "twenty deliveries")
    assert [(data, offset) for data, offset, _ in positions(onA)] == [(i, i) for i in range(1, 21)]


@pytest_twisted.ensureDeferred
async def test_redis_restart_with_aof_keeps_positions_and_history(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    Redis with an append-only file, killed and started again: the epoch
    and offsets go on where they were, a subscriber resumes from before the
    restart with C{"recovered": true}, the subscribers that stayed receive
    the later publications in the same epoch, nothing lost or twice. A
    publication made while Redis was down waits for it (C{outageBuffer})
    and is published, with the next offset, once it is back: nothing
    reached one process only.
    """
    redis_server.kill()
    redis_server.persist()
    redis_server.start()
    a, b = await make_hub(), await make_hub()
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "t")
    b.subscribe(onB, "t")
    await until(lambda: broker_of(a).confirmed("t") and broker_of(b).confirmed("t"), "the subscriptions")
    for i in range(1, 6):
        await b.publish("t", i)
    epoch = epochOf(redis_server, "t")
    await until(lambda: len(onA.frames) == 5, "five deliveries")

    redis_server.kill()
    await until(lambda: not broker_of(a).connected and not broker_of(b).connected, "both brokers to notice")
    waiting = b.publish("t", 6)
    assert isinstance(waiting, Deferred) and not waiting.called
    assert len(onB.frames) == 5  # waits for Redis (outageBuffer)
    redis_server.start()
    assert await waiting == (6, epoch)
    await until(lambda: broker_of(a).confirmed("t") and broker_of(b).confirmed("t"), "the subscriptions again")
    assert await b.publish("t", 7) == (7, epoch)
    await until(lambda: len(onA.frames) == 7 and len(onB.frames) == 7, "the sixth and seventh")
    assert positions(onA) == positions(onB) == [(i, i, epoch) for i in range(1, 8)]
    resumed = FakeSubscriber()
    a.subscribe(resumed, "t", Position(2, epoch))
    await until(lambda: len(positions(resumed)) == 5, "the replay")
    assert answers(resumed) == [{"subscribed": "t", "recovered": True, "offset": 7, "epoch": epoch}]
    assert positions(resumed) == [(i, i, epoch) for i in range(3, 8)]
    assert broker_of(b).localOnly == broker_of(b).unconfirmed == 0
    back = [text for _, text in broker_lines(log_events) if "is back after" in text]
    assert len(back) == 2 and all("0 message(s) published meanwhile" in text for text in back), back


@pytest_twisted.ensureDeferred
async def test_redis_restart_without_data_starts_a_new_epoch(make_hub: Any, redis_server: RedisServer) -> None:
    """
    Redis killed and started again without its data: the next publication
    is offset 1 of a new epoch; the subscriber that stayed receives it
    with the new epoch (one change of epoch, nothing twice), and one that
    resumes from the old epoch is answered C{"recovered": false} with the
    new position.
    """
    a, b = await make_hub(), await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    for i in range(1, 4):
        await b.publish("t", i)
    old = epochOf(redis_server, "t")
    await until(lambda: len(onA.frames) == 3, "three deliveries")
    redis_server.kill()
    await until(lambda: not broker_of(a).connected and not broker_of(b).connected, "both brokers to notice")
    redis_server.start()
    await until(lambda: broker_of(a).confirmed("t") and broker_of(b).connected, "both brokers back")
    position = await b.publish("t", "new")
    assert position.offset == 1 and position.epoch != old
    assert epochOf(redis_server, "t") == position.epoch
    await until(lambda: len(onA.frames) == 4, "the fourth")
    assert positions(onA) == [(1, 1, old), (2, 2, old), (3, 3, old), ("new", 1, position.epoch)]
    resumed = FakeSubscriber()
    a.subscribe(resumed, "t", Position(3, old))
    await until(lambda: answers(resumed), "the answer")
    assert answers(resumed) == [{"subscribed": "t", "recovered": False, "offset": 1, "epoch": position.epoch}]
    assert positions(resumed) == []


@pytest_twisted.ensureDeferred
async def test_history_without_redis_fails_and_the_hub_answers_without_a_position(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    Subscribing while Redis is down: the broker cannot read the position,
    the hub answers C{"recovered": false} without one, and local
    publications are still delivered (without positions).
    """
    a = await make_hub(outageBuffer=0)
    redis_server.kill()
    await until(lambda: not broker_of(a).connected, "the broker to notice")
    onA = FakeSubscriber()
    a.subscribe(onA, "t", Position(1, "whatever"))
    a.publish("t", "local")
    assert onA.messages() == [{"subscribed": "t", "recovered": False}, {"topic": "t", "data": "local"}]


def test_broker_messages_carry_the_position_first() -> None:
    """
    The pub/sub message format: C{"<offset> <epoch> <envelope>"}; anything
    else is not a publication of the script.
    """
    from txpulse.pubsub.broker.streams import parseMessage

    assert parseMessage('12 ab-3 {"topic":"t","data":1}') == (12, "ab-3", '{"topic":"t","data":1}')
    for bad in ('x ab {"a":1}', '1 a"b {"a":1}', "1 ab [1]", "1", "١ ab {}", '-1 ab {"a":1}'):
        assert parseMessage(bad) is None, bad


@pytest_twisted.ensureDeferred
async def test_history_without_since_gives_the_position(make_hub: Any, redis_server: RedisServer) -> None:
    """
    C{history(channel, None)} creates the channel's epoch (SET NX-like:
    once) and answers offset 0, not recovered, with no publications.
    """
    a = await make_hub()
    broker = broker_of(a)
    broker.subscribe("fresh")
    first = await broker.history("fresh", None)
    second = await broker.history("fresh", None)
    assert first.offset == 0 and not first.recovered and list(first.publications) == []
    assert first.epoch == second.epoch == epochOf(redis_server, "fresh")
    assert json.loads(json.dumps(first)) == [0, first.epoch, False, []]


@pytest_twisted.ensureDeferred
async def test_stopped_broker_delivers_nothing(make_hub: Any, redis_server: RedisServer) -> None:
    """
    After C{stop()}, nothing more is delivered (the Redis connections are
    closed): a subscription that was live (a publication reached it) is
    gone from Redis, and what is published to its channel afterwards
    reaches no subscriber.
    """
    broker = RedisBroker.fromURL(redis_server.url, reactor=reactor, retryPolicy=lambda attempt: 0.05)
    hub = Hub(broker)
    await until(lambda: broker.connected, "the broker to connect")
    onHub = FakeSubscriber()
    hub.subscribe(onHub, "t")
    await until(lambda: broker.confirmed("t") and redis_server.channels() == {"txpulse:t"}, "the subscription")
    redis_server.command("PUBLISH", "txpulse:t", '{"topic":"t","data":"before"}')
    await until(lambda: len(onHub.frames) == 1, "the delivery before the stop")
    await broker.stop()
    await until(lambda: redis_server.channels() == set(), "the subscription to go")
    redis_server.command("PUBLISH", "txpulse:t", '{"topic":"t","data":"after"}')
    await deferLater(reactor, 0.1)
    assert [m["data"] for m in onHub.messages()] == ["before"]


@pytest_twisted.ensureDeferred
async def test_publications_lost_in_flight_are_published_again_unless_redis_ran_them(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    Publications in flight when the publishing connection is lost: once it
    is back, Redis' origin key says which it ran (the last number); those
    it did not run are published again, in order, and their Deferreds fire
    with their positions; one it ran is left to the streams (its Deferred
    fails: its position is not known here). Nothing is delivered twice,
    nothing reaches this process only.
    """
    a = await make_hub(retryPolicy=lambda attempt: 0.3)
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    broker = broker_of(a)
    # Writes held by Redis: the three scripts wait in it, then go with the
    # connection.
    results: list[Any] = []
    for d in publishHeld(redis_server, a, (1, 2, 3)):
        d.addBoth(results.append)
    await dropHeld(redis_server, broker)
    await until(lambda: broker._publisher.protocol is None, "the loss to be noticed")
    # As if Redis had run the first one before the connection went.
    redis_server.command("SET", f"txpulse:origin:{broker.origin}", "1")
    await until(lambda: len(results) == 3, "the three answers")
    assert isinstance(results[0], Failure)
    epoch = epochOf(redis_server, "t")
    assert results[1:] == [(1, epoch), (2, epoch)]
    await until(lambda: len(onA.frames) == 2, "two deliveries")
    assert positions(onA) == [(2, 1, epoch), (3, 2, epoch)]
    assert broker.localOnly == broker.unconfirmed == 0


@pytest_twisted.ensureDeferred
async def test_publications_given_up_on_are_delivered_here_once_even_if_redis_ran_them(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    Publications in flight when the publishing connection is lost, given
    up on (C{outageBuffer}) before it is back: delivered here at once,
    without positions, and never again here. The ones Redis ran after all
    (as a frozen Redis does when it wakes up) reach the other process with
    their positions, and their copies are not delivered here; the one it
    did not run is not published again. The next publication goes on from
    the offsets Redis gave.
    """
    a = await make_hub(retryPolicy=lambda attempt: 1.0, outageBuffer=0.2)
    b = await make_hub()
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "t")
    b.subscribe(onB, "t")
    await until(lambda: broker_of(a).confirmed("t") and broker_of(b).confirmed("t"), "the subscriptions")
    broker = broker_of(a)
    failures: list[Failure] = []
    for d in publishHeld(redis_server, a, (1, 2, 3)):
        d.addErrback(failures.append)
    await dropHeld(redis_server, broker)
    await until(lambda: len(failures) == 3, "the broker to give up")
    assert positions(onA) == [(1, None, None), (2, None, None), (3, None, None)]
    # Redis runs the first two after all, as it would have if it had been
    # frozen with them in its input buffer.
    for i in (1, 2):
        runAfterAll(redis_server, broker, i)
    await until(lambda: len(onB.frames) == 2, "the copies at B")
    await until(lambda: broker.connected and broker.confirmed("t"), "A to be back")
    await a.publish("t", 4)
    await until(lambda: len(onB.frames) == 3 and len(onA.frames) == 4, "the next publication")
    epoch = epochOf(redis_server, "t")
    assert positions(onA) == [(1, None, None), (2, None, None), (3, None, None), (4, 3, epoch)]
    assert positions(onB) == [(1, 1, epoch), (2, 2, epoch), (4, 3, epoch)]
    assert broker._deliveredHere == {} and broker._givenUp == []


@pytest_twisted.ensureDeferred
async def test_foreign_publishers_get_positions_with_the_script_and_none_with_a_bare_publish(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    Another program that runs the publish script (L{PUBLISH}, as the README
    shows with C{redis-cli --eval}) publishes with a position: delivered
    live with its offset, and replayed to a client that resumes. A bare
    C{PUBLISH} of an envelope is delivered live, without a position, and
    is not replayed (it is kept nowhere): the documented live-only way.
    """
    a = await make_hub()
    live = FakeSubscriber()
    a.subscribe(live, "news", answer=True)
    await until(lambda: broker_of(a).confirmed("news") and answers(live), "the subscription")
    epoch = answers(live)[0]["epoch"]

    def script(data: str, seq: int) -> None:
        redis_server.command(
            "EVAL",
            PUBLISH,
            "3",
            "txpulse:position:news",
            "txpulse:history:news",
            "txpulse:origin:cli",
            "txpulse:news",
            json.dumps({"topic": "news", "data": data}),
            f"1000 120000 120000 {seq:012x} {seq}",
        )

    script("one", 1)
    redis_server.command("PUBLISH", "txpulse:news", '{"topic":"news","data":"bare"}')
    script("two", 2)
    await until(lambda: len(positions(live)) == 3, "the live deliveries")
    assert positions(live) == [("one", 1, epoch), ("bare", None, None), ("two", 2, epoch)]
    resumed = FakeSubscriber()
    a.subscribe(resumed, "news", Position(0, epoch))
    await until(lambda: len(positions(resumed)) == 2, "the replay")
    assert answers(resumed) == [{"subscribed": "news", "recovered": True, "offset": 2, "epoch": epoch}]
    assert positions(resumed) == [("one", 1, epoch), ("two", 2, epoch)]


@pytest_twisted.ensureDeferred
async def test_a_copy_of_a_lost_publication_that_comes_before_the_give_up_is_delivered_once(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    A publication lost in flight whose copy Redis publishes (it ran it)
    before the broker gives up on the connection: delivered here once,
    with its position, and not again without one at the give-up (its
    Deferred fails: the reply was lost).
    """
    a = await make_hub(retryPolicy=lambda attempt: 3.0, outageBuffer=0.5)
    onA = FakeSubscriber()
    a.subscribe(onA, "t")
    await until(lambda: broker_of(a).confirmed("t"), "the subscription")
    broker = broker_of(a)
    (sent,) = publishHeld(redis_server, a, (1,))
    failures: list[Failure] = []
    sent.addErrback(failures.append)
    await dropHeld(redis_server, broker)
    await until(lambda: broker._publisher.protocol is None, "the loss to be noticed")
    runAfterAll(redis_server, broker, 1)
    await until(lambda: failures, "the broker to give up")
    await deferLater(reactor, 0.1)
    assert positions(onA) == [(1, 1, epochOf(redis_server, "t"))]
    assert broker.unconfirmed == broker.localOnly == 0

"""
Tests for L{txpulse.pubsub.broker.redis}, against a real C{redis-server}: two hubs,
each with its own L{RedisBroker} (as two server processes would have), see
each other's messages; channels are subscribed only while wanted, on one
connection per process; Redis going away and coming back (killed, or
silently stopped) leaves local delivery intact, is logged once each way,
and delivery across processes resumes by itself.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent
from twisted.web.resource import Resource
from twisted.web.server import Site

from txpulse.pubsub import Hub, PubSubFactory
from txpulse.pubsub.broker.redis import RedisBroker
from txpulse.server.resource import WebSocketResource

from ..support.hub import FakeSubscriber
from ..support.waits import WAIT, until
from .conftest import RedisServer, broker_lines, broker_of


async def subscribed(redis_server: RedisServer, *channels: str) -> None:
    """
    Wait until Redis has every one of C{channels} subscribed (a message
    published before that is, by design, not delivered).
    """
    await until(lambda: set(channels) <= redis_server.channels(), f"Redis to have {channels} subscribed")


# -- across processes ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_publish_on_one_hub_reaches_the_other_and_local_publish_arrives_once(
    make_hub: Any, redis_server: RedisServer
) -> None:
    """
    A message published on hub B reaches hub A's subscriber as the JSON
    envelope with its position (offset 1 of the topic's epoch, which
    Redis keeps); a message published on A reaches A's own subscriber
    once, through Redis, with the next offset, in the same order as at B.
    """
    a, b = await make_hub(), await make_hub()
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "news")
    b.subscribe(onB, "news")
    await subscribed(redis_server, "txpulse:news")
    assert redis_server.command("PUBSUB", "NUMSUB", "txpulse:news") == ["txpulse:news", 2]

    position = await b.publish("news", {"headline": "héllo", "n": [1, 2]})
    epoch = redis_server.command("HGET", "txpulse:position:news", "epoch")
    assert position == (1, epoch)
    await until(lambda: onA.texts(), "A's subscriber to receive B's message")
    expected = '{"topic":"news","data":{"headline":"héllo","n":[1,2]},"offset":1,"epoch":"' + epoch + '"}'
    assert onA.texts() == [expected]

    assert await a.publish("news", "mine") == (2, epoch)
    await until(lambda: len(onA.texts()) == 2 and len(onB.texts()) == 2, "both to receive A's message")
    b.publish("news", "marker")
    await until(lambda: len(onA.texts()) == 3 and len(onB.texts()) == 3, "both to receive the marker")
    for subscriber in (onA, onB):
        assert [(m["data"], m["offset"], m["epoch"]) for m in subscriber.messages()] == [
            ({"headline": "héllo", "n": [1, 2]}, 1, epoch),
            ("mine", 2, epoch),
            ("marker", 3, epoch),
        ]


@pytest_twisted.ensureDeferred
async def test_messages_from_one_process_arrive_in_order(make_hub: Any, redis_server: RedisServer) -> None:
    """
    100 messages published in a burst on hub B arrive at hub A's subscriber
    in the order they were published.
    """
    a, b = await make_hub(), await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "seq")
    await subscribed(redis_server, "txpulse:seq")
    for i in range(100):
        b.publish("seq", i)
    await until(lambda: len(onA.frames) >= 100, "100 messages at A")
    assert [m["data"] for m in onA.messages()] == list(range(100))


@pytest_twisted.ensureDeferred
async def test_other_programs_may_publish_bare_envelopes(make_hub: Any, redis_server: RedisServer) -> None:
    """
    A bare JSON envelope published on C{txpulse:T} by another Redis client
    reaches the subscribers of T as it is; a message that is neither that
    nor a txpulse message is dropped with a warning.
    """
    a = await make_hub()
    onA = FakeSubscriber()
    a.subscribe(onA, "feed")
    await subscribed(redis_server, "txpulse:feed")
    assert redis_server.command("PUBLISH", "txpulse:feed", "not json") == 1
    assert redis_server.command("PUBLISH", "txpulse:feed", '{"topic":"feed","data":42}') == 1
    await until(lambda: onA.frames, "the bare envelope at A")
    assert onA.texts() == ['{"topic":"feed","data":42}']


@pytest_twisted.ensureDeferred
async def test_spoofed_or_malformed_messages_from_redis_are_dropped(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    A foreign Redis publisher cannot pass a message off as another topic's
    (the envelope's topic must be its channel's), nor relay C{NaN}, extra
    fields or deep nesting, even behind a txpulse origin tag: each is
    dropped, with a warning naming the channel (rate-limited: one line for
    the burst). A good envelope on the chat namespace's channel reaches the
    room with the room's topic, as chat clients see it.
    """
    a = await make_hub()
    onA, inRoom = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "feed")
    a.namespace("chat").subscribe(inRoom, "lobby")
    await subscribed(redis_server, "txpulse:feed", "txpulse:chat\x1flobby")
    for bad in (
        '{"topic":"other","data":1}',
        '{"topic":"feed","data":NaN}',
        '{"topic":"feed","data":1,"error":"x"}',
        "0123456789abcdef " + '{"topic":"other","data":2}',
        "[" * 100_000,
    ):
        assert redis_server.command("PUBLISH", "txpulse:feed", bad) == 1
    assert redis_server.command("PUBLISH", "txpulse:chat\x1flobby", '{"topic":"chat/lobby","data":3}') == 1
    assert redis_server.command("PUBLISH", "txpulse:chat\x1flobby", '{"topic":"lobby","data":4}') == 1
    assert redis_server.command("PUBLISH", "txpulse:feed", '{"topic":"feed","data":5}') == 1
    await until(lambda: onA.frames and inRoom.frames, "the good envelopes")
    assert onA.texts() == ['{"topic":"feed","data":5}']
    assert inRoom.texts() == ['{"topic":"lobby","data":4}']
    dropped = [text for level, text in broker_lines(log_events) if "Dropped" in text]
    assert len(dropped) == 1 and "'txpulse:feed'" in dropped[0] and "does not match" in dropped[0]


# -- subscriptions and connections --------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_channels_are_subscribed_only_while_wanted(make_hub: Any, redis_server: RedisServer) -> None:
    """
    The broker subscribes to C{txpulse:T} when the first local subscriber
    of T arrives and unsubscribes when the last one leaves (or closes).
    """
    hub = await make_hub()
    first, second = FakeSubscriber(), FakeSubscriber()
    assert redis_server.channels() == set()

    hub.subscribe(first, "a")
    await subscribed(redis_server, "txpulse:a")
    hub.subscribe(second, "a")
    hub.subscribe(first, "b")
    await subscribed(redis_server, "txpulse:a", "txpulse:b")
    assert redis_server.channels() == {"txpulse:a", "txpulse:b"}
    assert broker_of(hub).channels == {"txpulse:a", "txpulse:b"}

    hub.unsubscribe(first, "a")  # "second" still wants it
    hub.unsubscribe(first, "b")
    await until(lambda: redis_server.channels() == {"txpulse:a"}, "txpulse:b to be unsubscribed")
    hub.unsubscribeAll(second)  # as when its connection closes
    await until(lambda: redis_server.channels() == set(), "no channel left")
    assert broker_of(hub).channels == frozenset()


@pytest_twisted.ensureDeferred
async def test_one_subscription_connection_per_process(make_hub: Any, redis_server: RedisServer) -> None:
    """
    However many subscribers and topics, each broker holds exactly one
    subscribed connection (carrying every channel) and one for publishing,
    named after its origin in C{CLIENT LIST}.
    """
    a, b = await make_hub(), await make_hub()
    subscribers = [FakeSubscriber() for _ in range(10)]
    topics = [f"t{i}" for i in range(5)]
    for subscriber in subscribers:
        for topic in topics:
            a.subscribe(subscriber, topic)
    await subscribed(redis_server, *(f"txpulse:{topic}" for topic in topics))

    def named(broker: RedisBroker) -> dict[str, list[dict[str, str]]]:
        clients = redis_server.clients()
        return {
            role: [c for c in clients if c.get("name") == f"txpulse-{role}-{broker.origin}"] for role in ("sub", "pub")
        }

    for hub, channels in ((a, "5"), (b, "0")):
        connections = named(broker_of(hub))
        assert len(connections["sub"]) == 1
        assert connections["sub"][0]["sub"] == channels
        assert len(connections["pub"]) == 1
        assert connections["pub"][0]["sub"] == "0"
    assert len([c for c in redis_server.clients() if c.get("name", "").startswith("txpulse-")]) == 4


# -- Redis going away ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_redis_restart_keeps_local_delivery_and_resumes_by_itself(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    Redis killed: local publishing still reaches local subscribers, nothing
    crashes, each broker logs the loss once. Redis restarted on the same
    port: both brokers reconnect and resubscribe by themselves, delivery
    across processes works again, and each logs once how long Redis was
    gone and how many messages reached only this process.
    """
    # Publications made while Redis is down are delivered locally at once
    # (outageBuffer=0; by default they wait up to 2 s for Redis).
    a, b = await make_hub(outageBuffer=0), await make_hub(outageBuffer=0)
    onA, onB = FakeSubscriber(), FakeSubscriber()
    a.subscribe(onA, "news")
    b.subscribe(onB, "other")
    await subscribed(redis_server, "txpulse:news", "txpulse:other")
    b.publish("news", "before")
    await until(lambda: onA.frames, "delivery before the restart")

    redis_server.kill()
    await until(lambda: not broker_of(a).connected and not broker_of(b).connected, "both brokers to notice")
    a.publish("news", "local while down")
    assert [m["data"] for m in onA.messages()] == ["before", "local while down"]
    b.publish("news", "lost while down")  # at-most-once: A never sees it
    a.subscribe(onA, "late")  # wanted while down: subscribed on reconnection

    redis_server.start()
    await until(lambda: broker_of(a).connected and broker_of(b).connected, "both brokers to reconnect")
    await subscribed(redis_server, "txpulse:news", "txpulse:other", "txpulse:late")
    b.publish("news", "after")
    b.publish("late", "late too")
    await until(lambda: len(onA.frames) == 4, "delivery after the restart")
    assert [m["data"] for m in onA.messages()] == ["before", "local while down", "after", "late too"]

    lines = broker_lines(log_events)
    lost = [text for level, text in lines if level is LogLevel.warn and text.startswith("Lost Redis")]
    back = [text for level, text in lines if level is LogLevel.info and "is back after" in text]
    assert len(lost) == 2, lines  # one per broker, however many reconnection attempts
    assert all(redis_server.url.split("/")[2] in text for text in lost)
    assert len(back) == 2, lines
    assert any("1 message(s) published meanwhile" in text for text in back), back  # B's "lost while down"
    connected = [text for _, text in lines if text.startswith("Connected to Redis")]
    assert len(connected) == 2 and len(lines) == 6, lines
    assert [e for e in log_events if "log_failure" in e or e["log_level"] >= LogLevel.error] == []
    assert [
        e for e in log_events if e["log_level"] >= LogLevel.info and "Scheduling retry" in e.get("log_format", "")
    ] == []


@pytest_twisted.ensureDeferred
async def test_silent_redis_is_noticed_by_ping(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    A Redis that stops answering without closing its connections (SIGSTOP,
    like a network partition) is noticed by the keepalive C{PING}: the loss
    is logged once, local delivery goes on, and once Redis answers again
    (SIGCONT) delivery across processes resumes. A TCP connection to the
    stopped server does not count as being back.
    """
    options = {"pingInterval": 0.1, "pingTimeout": 0.2, "outageBuffer": 0}
    a, b = await make_hub(**options), await make_hub(**options)
    onA = FakeSubscriber()
    a.subscribe(onA, "news")
    await subscribed(redis_server, "txpulse:news")

    redis_server.pause()
    try:
        await until(lambda: not broker_of(a).connected and not broker_of(b).connected, "the pings to time out")
        a.publish("news", "local")
        assert [m["data"] for m in onA.messages()] == ["local"]
        await deferLater(reactor, 0.5)
        assert not broker_of(a).connected and not broker_of(b).connected
    finally:
        redis_server.resume()
    await until(lambda: broker_of(a).connected and broker_of(b).connected, "both brokers to reconnect")
    await until(lambda: redis_server.command("PUBSUB", "NUMSUB", "txpulse:news")[1] == 1, "one subscription again")
    b.publish("news", "after")
    await until(lambda: len(onA.frames) == 2, "delivery after the pause")
    assert [m["data"] for m in onA.messages()] == ["local", "after"]

    lines = broker_lines(log_events)
    assert len([text for _, text in lines if text.startswith("Lost Redis")]) == 2, lines
    assert len([text for _, text in lines if "is back after" in text]) == 2, lines
    assert [e for e in log_events if "log_failure" in e] == []


@pytest_twisted.ensureDeferred
async def test_broker_starts_without_redis_and_connects_later(
    redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    A broker whose Redis is not reachable yet delivers locally, logs one
    warning (not one per attempt), and connects and subscribes once Redis
    is up.
    """
    redis_server.kill()
    broker = RedisBroker.fromURL(redis_server.url, reactor=reactor, retryPolicy=lambda attempt: 0.05, outageBuffer=0)
    hub = Hub(broker)
    try:
        subscriber = FakeSubscriber()
        hub.subscribe(subscriber, "t")
        hub.publish("t", 1)
        assert [m["data"] for m in subscriber.messages()] == [1]
        await deferLater(reactor, 0.3)
        assert not broker.connected
        redis_server.start()
        await until(lambda: broker.connected, "the broker to connect")
        await subscribed(redis_server, "txpulse:t")
    finally:
        await broker.stop()
    lines = broker_lines(log_events)
    assert len(lines) == 2, lines
    assert lines[0][0] is LogLevel.warn
    assert lines[0][1].startswith("Cannot reach Redis") and "Connection was refused" in lines[0][1]
    assert "is back after" in lines[1][1]


# -- construction ------------------------------------------------------------------------


def test_importing_needs_no_txredisapi() -> None:
    """
    C{txpulse}, its hub and this module import without txredisapi (and
    without installing the global reactor, which importing txredisapi
    does); building a broker then says what is missing.
    """
    script = """
import sys
sys.modules["txredisapi"] = None  # as if not installed
import txpulse, txpulse.pubsub.hub, txpulse.pubsub.broker.redis
assert "twisted.internet.reactor" not in sys.modules
try:
    txpulse.pubsub.broker.redis.RedisBroker()
except ImportError as e:
    print(e)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "txpulse: the Redis broker needs `pip install txpulse[redis]`"


# -- fromURL -------------------------------------------------------------------------------


def test_from_url_reads_host_port_db_and_password() -> None:
    """
    C{redis://[user]:password@host:port/db} is understood (percent-escapes
    in the password included); the password never appears in the address
    used by log lines; other schemes and bad databases are refused.
    """
    broker = RedisBroker.fromURL("redis://:s%40cret@127.0.0.1:6390/3", reactor=reactor, prefix="app1:")
    assert broker.address == "127.0.0.1:6390"
    assert broker.prefix == "app1:"
    assert broker._publisher._options["password"] == "s@cret"
    assert broker._publisher._options["dbid"] == 3
    assert broker._publisher._options["username"] is None
    user = RedisBroker.fromURL("redis://alice:pw@[::1]/", reactor=reactor)
    assert user.address == "[::1]:6379"
    assert user._subscriber._options["username"] == "alice"
    assert user._subscriber._options["dbid"] is None
    with pytest.raises(ValueError):
        RedisBroker.fromURL("http://127.0.0.1:6379/0")
    with pytest.raises(ValueError):
        RedisBroker.fromURL("redis://127.0.0.1:6379/zero")


@pytest_twisted.ensureDeferred
async def test_password_protected_redis(
    make_hub: Any, redis_server: RedisServer, log_events: EventLoggingObserver
) -> None:
    """
    With C{requirepass} set, a broker given the password in its URL
    connects; one with a wrong password logs the refusal once, backs off
    further after each refusal, and keeps delivering locally.
    """
    redis_server.command("CONFIG", "SET", "requirepass", "s3cret")
    url = redis_server.url.replace("redis://", "redis://:s3cret@")
    good = RedisBroker.fromURL(url, reactor=reactor, retryPolicy=lambda attempt: 0.05)
    attempts: list[int] = []

    def retryPolicy(attempt: int) -> float:
        attempts.append(attempt)
        return 0.05

    bad = RedisBroker.fromURL(url.replace("s3cret", "wrong"), reactor=reactor, retryPolicy=retryPolicy, outageBuffer=0)
    hubs = [Hub(good), Hub(bad)]
    try:
        await until(lambda: good.connected, "the broker with the password to connect")
        subscriber = FakeSubscriber()
        hubs[1].subscribe(subscriber, "t")
        hubs[1].publish("t", "local")
        assert [m["data"] for m in subscriber.messages()] == ["local"]
        await deferLater(reactor, 0.3)
        assert not bad.connected
    finally:
        await good.stop()
        await bad.stop()
    refusals = [text for level, text in broker_lines(log_events) if level is LogLevel.warn]
    assert len(refusals) == 1 and "could not auth" in refusals[0], refusals
    # Each refused connection counts as a failed attempt, so the backoff
    # grows (for both of the bad broker's connections).
    assert sorted(attempts[:6]) == [1, 1, 2, 2, 3, 3], attempts
    assert "s3cret" not in " ".join(formatEvent(e) for e in log_events)


# -- end to end over WebSockets ---------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def serve_pubsub() -> Any:
    """
    C{serve_pubsub(hub)}: a L{Site} with C{WebSocketResource(PubSubFactory(hub))}
    at C{/pubsub} on 127.0.0.1, port 0; returns the C{ws://} URL. Stopped at
    teardown.
    """
    ports: list[Any] = []

    def serve(hub: Hub) -> str:
        root = Resource()
        root.putChild(b"pubsub", WebSocketResource(PubSubFactory(hub), pingInterval=None))
        port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        ports.append(port)
        return f"ws://127.0.0.1:{port.getHost().port}/pubsub"

    yield serve
    for port in ports:
        await port.stopListening()


def ws_connect(url: str) -> Any:
    """
    A C{websockets} synchronous client (used from worker threads).
    """
    from websockets.sync.client import connect

    options: dict[str, Any] = {"proxy": None, "ping_interval": None, "open_timeout": WAIT, "close_timeout": WAIT}
    if "legacy" in inspect.signature(connect).parameters:
        options["legacy"] = True  # websockets >= 16: a plain connection, not a context manager
    return connect(url, **options)


@pytest_twisted.ensureDeferred
async def test_websocket_clients_on_two_servers_see_each_other(
    make_hub: Any, redis_server: RedisServer, serve_pubsub: Any
) -> None:
    """
    Two txpulse servers (separate hubs and brokers, as two processes would
    have), a C{websockets} client on each: the client of server 1
    subscribes, the client of server 2 publishes, and client 1 receives the
    envelope.
    """
    url1, url2 = serve_pubsub(await make_hub()), serve_pubsub(await make_hub())
    client1 = await deferToThread(ws_connect, url1)
    try:
        client2 = await deferToThread(ws_connect, url2)
        try:
            await deferToThread(client1.send, json.dumps({"action": "subscribe", "topic": "room"}))
            await subscribed(redis_server, "txpulse:room")
            await deferToThread(
                client2.send, json.dumps({"action": "publish", "topic": "room", "data": {"text": "hi"}})
            )
            answer = json.loads(await deferToThread(client1.recv, WAIT))
            assert answer == {"subscribed": "room", "offset": 0, "epoch": answer["epoch"]}
            received = await deferToThread(client1.recv, WAIT)
            assert json.loads(received) == {
                "topic": "room",
                "data": {"text": "hi"},
                "offset": 1,
                "epoch": answer["epoch"],
            }
        finally:
            await deferToThread(client2.close)
    finally:
        await deferToThread(client1.close)
    await until(lambda: redis_server.channels() == set(), "the closed subscriber's channel to go")

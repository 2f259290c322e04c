"""
Tests for what the hub and the C{/pubsub} protocol do when the broker
fails (L{txpulse.pubsub.hub.Hub.noteBrokerFailure}): failed publications
and history reads are counted and logged in aggregate, without tracebacks
and without "Unhandled error in Deferred"; and the per-connection cap on
the topics a client publishes to.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from txpulse.core.frames import Opcode
from txpulse.demos.chat import ChatFactory
from txpulse.pubsub.history import History, Position
from txpulse.pubsub.hub import FAILURE_LOG_INTERVAL, HISTORY_FAILED, PUBLISH_FAILED, Hub
from txpulse.pubsub.protocol import PubSubFactory
from txpulse.wire.protocol import WebSocketWire

from ..support.frames import client_frame, server_frames
from ..support.hub import FakeSubscriber, connect, withoutPosition
from ..support.logs import captured_logs
from ..support.transports import CountingTransport


def send(wire: WebSocketWire, message: Any) -> None:
    """
    One message from the client, in a reactor turn of its own.
    """
    wire.dataReceived(client_frame(Opcode.TEXT, json.dumps(message).encode()))
    wire._clock.advance(0)


def replies(transport: CountingTransport) -> list[Any]:
    """
    Every text message the client received, parsed as JSON.
    """
    return [json.loads(f.payload) for f in server_frames(transport.value()) if isinstance(f.payload, str)]


def received(transport: CountingTransport) -> list[Any]:
    """
    The messages the client received, without subscription answers and
    positions.
    """
    return [withoutPosition(m) for m in replies(transport) if "subscribed" not in m]


class Outage(Exception):
    """
    What the failing broker fails with (as the Redis broker fails with
    txredisapi's C{ConnectionError}).
    """


class FailingBroker:
    """
    A broker with positions whose Redis is gone: every publication and
    every history read fails (asynchronously, as the Redis broker's do).
    """

    def __init__(self) -> None:
        self.published: list[Deferred[Position]] = []

    def start(self, deliver: Callable[..., None], limits: Any = None) -> None:
        pass

    def subscribe(self, channel: str) -> None:
        pass

    def unsubscribe(self, channel: str) -> None:
        pass

    def publish(self, channel: str, payload: str) -> Deferred[Position]:
        published: Deferred[Position] = Deferred()
        self.published.append(published)
        return published

    def history(self, channel: str, since: Position | None) -> Deferred[History]:
        return fail(Outage("Redis at localhost:6379 is unreachable"))

    def stop(self) -> None:
        pass


def test_a_failed_publication_is_counted_and_logged_once() -> None:
    """
    A client's publication whose broker L{Deferred} fails (Redis given up
    on): the failure is consumed (no "Unhandled error in Deferred" when it
    is collected), counted, logged once in one line, then summed up once
    per interval.
    """
    clock = Clock()
    broker = FailingBroker()
    hub = Hub(broker, clock=clock)
    wire, transport = connect(PubSubFactory(hub))
    with captured_logs() as lines:
        for i in range(5):
            send(wire, {"action": "publish", "topic": "t", "data": i})
        for published in broker.published:
            published.errback(Outage("Redis at localhost:6379 is unreachable: delivered locally only"))
        assert all(published.result is None for published in broker.published)
        broker.published.clear()
        gc.collect()
        clock.advance(FAILURE_LOG_INTERVAL)
    assert hub.brokerFailures[PUBLISH_FAILED] == 5
    assert not [line for line in lines if "Unhandled" in line or "Traceback" in line]
    assert [line for line in lines if "Publishing" in line] == [
        "Publishing of 't' failed: Redis at localhost:6379 is unreachable: delivered locally only "
        "(further failures are summed up every 10s)",
        "Publishing failed 4 more time(s) in the last 10s; most on 't' (4)",
    ]
    assert received(transport) == []  # a publication has no answer, failed or not


def test_history_failures_in_an_outage_log_one_line_not_one_traceback_per_subscriber() -> None:
    """
    A hundred subscriptions whose history read fails (Redis unreachable):
    each is answered C{"recovered": false} without a position, and the log
    has one warning line, then one summary line per interval, with no
    traceback.
    """
    clock = Clock()
    hub = Hub(FailingBroker(), clock=clock)
    subscribers = [FakeSubscriber() for _ in range(100)]
    with captured_logs() as lines:
        for subscriber in subscribers:
            hub.subscribe(subscriber, "news", Position(3, "e"))
        clock.advance(FAILURE_LOG_INTERVAL)
        clock.advance(FAILURE_LOG_INTERVAL)
    assert all(s.messages() == [{"subscribed": "news", "recovered": False}] for s in subscribers)
    assert hub.brokerFailures[HISTORY_FAILED] == 100
    assert not [line for line in lines if "Traceback" in line]
    assert [line for line in lines if "history" in line] == [
        "Reading the history of 'news' failed: Redis at localhost:6379 is unreachable "
        "(further failures are summed up every 10s)",
        "Reading the history failed 99 more time(s) in the last 10s; most on 'news' (99)",
    ]


def test_a_connection_publishes_to_at_most_max_topics_topics() -> None:
    """
    A C{/pubsub} connection may publish to at most C{maxTopicsPerConnection}
    distinct topics (each costs the broker a position and a history, in
    Redis keys); publishing again to one of them, or to a topic the
    connection is subscribed to, is not counted; one topic too many gets
    an error reply, and the connection stays.
    """
    hub = Hub(maxTopicsPerConnection=2, clock=Clock())
    wire, transport = connect(PubSubFactory(hub))
    send(wire, {"action": "subscribe", "topic": "mine"})
    for topic in ("mine", "a", "b", "a", "mine", "c", "b"):
        send(wire, {"action": "publish", "topic": topic, "data": topic})
    assert received(transport) == [
        {"topic": "mine", "data": "mine"},
        {"topic": "mine", "data": "mine"},
        {"error": "published to too many topics (limit 2)"},
    ]
    assert wire.isOpen()
    # Another connection has its own count.
    other, otherTransport = connect(PubSubFactory(hub))
    send(other, {"action": "publish", "topic": "c", "data": 1})
    assert [m for m in replies(otherTransport) if "error" in m] == []


def test_a_publication_that_succeeds_is_not_logged() -> None:
    """
    The errback added to a publication's L{Deferred} leaves a successful
    one alone: nothing counted, nothing logged.
    """
    broker = FailingBroker()
    hub = Hub(broker, clock=Clock())
    wire, _ = connect(PubSubFactory(hub))
    with captured_logs() as lines:
        send(wire, {"action": "publish", "topic": "t", "data": 1})
        broker.published[0].callback(Position(1, "e"))
    assert hub.brokerFailures == {} and not [line for line in lines if "Publishing" in line]
    assert json.dumps(broker.published[0].result) == '[1, "e"]'


def test_failures_of_other_kinds_are_logged_once_too() -> None:
    """
    L{Hub.noteBrokerFailure} keeps one line per kind: a history failure
    after a publication failure is logged in full too.
    """
    hub = Hub(FailingBroker(), clock=Clock())
    with captured_logs() as lines:
        hub.noteBrokerFailure(PUBLISH_FAILED, "a", Failure(Outage("gone")))
        hub.noteBrokerFailure(HISTORY_FAILED, "ns\x1fb", Failure(Outage("gone")))
    assert [line for line in lines if "failed" in line] == [
        "Publishing of 'a' failed: gone (further failures are summed up every 10s)",
        "Reading the history of 'ns/b' failed: gone (further failures are summed up every 10s)",
    ]


def test_a_chat_event_the_broker_fails_is_counted_not_unhandled() -> None:
    """
    The chat publishes its events through the hub too: one the broker
    fails (a join, during a Redis outage) is counted and logged once, not
    left to "Unhandled error in Deferred".
    """
    broker = FailingBroker()
    hub = Hub(broker, clock=Clock())
    with captured_logs() as lines:
        wire, _ = connect(ChatFactory(hub, lambda: 0.0))  # type: ignore[arg-type]
        send(wire, {"action": "join", "room": "lobby", "name": "ann"})
        for published in broker.published:
            published.errback(Outage("gone"))
        assert broker.published and all(published.result is None for published in broker.published)
    assert hub.brokerFailures[PUBLISH_FAILED] == len(broker.published)
    assert [line for line in lines if "Publishing" in line] == [
        "Publishing of 'chat/lobby' failed: gone (further failures are summed up every 10s)"
    ]

"""
The client processes of the chaos test (tests/deploy/test_chaos.py): many
resuming subscribers in one process, and a publisher, each on its own
reactor, each writing what it saw as JSON when told to stop. They use
txpulse's own L{PubSubClient}: the application-level view is what the test
judges (every message exactly once, in order).

    python -m tests.support.chaosclients subscribers URL TOPICS N OUT STOP
    python -m tests.support.chaosclients publisher URL TOPICS COUNT RATE OUT

C{subscribers} runs N clients, each subscribed to every topic of the
comma-separated TOPICS, prints C{ready} once all have their positions, and
on the file STOP appearing stops them and writes OUT: per client, per topic,
the data received in order (and the offsets and epochs), the recovery
failures, and the longest silence between two deliveries.

C{publisher} publishes COUNT numbered messages (C{{"n": i}}), round-robin
over the topics, at RATE per second, through a reconnecting client; a
message refused while disconnected (L{NotConnected}) is sent again once
connected (it was never sent, so this duplicates nothing). It subscribes to
the topics too: what comes back, with a position, is what the hub
I{accepted}; a message written into a connection that died on the way was
never accepted, and the OUT file says how many. It writes OUT and exits once
every message is sent and nothing new came back for two seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

from txpulse import WebSocketClientEndpoint
from txpulse.pubsub import NotConnected, PubSubClient

#: Seconds the subscribers have to get their positions.
READY_SECONDS = 20.0


class Record:
    """
    What one client's application saw.
    """

    def __init__(self, topics: list[str]) -> None:
        self.data: dict[str, list[Any]] = {t: [] for t in topics}
        self.offsets: dict[str, list[int | None]] = {t: [] for t in topics}
        self.epochs: dict[str, list[str | None]] = {t: [] for t in topics}
        self.resets: list[tuple[str, float]] = []
        self.last = 0.0
        self.longestSilence = 0.0

    def on(self, topic: str) -> Any:
        def delivered(data: Any, position: Any) -> None:
            now = time.monotonic()
            if self.last:
                self.longestSilence = max(self.longestSilence, now - self.last)
            self.last = now
            self.data[topic].append(data)
            self.offsets[topic].append(None if position is None else position.offset)
            self.epochs[topic].append(None if position is None else position.epoch)

        return delivered

    def reset(self, topic: str, position: Any) -> None:
        self.resets.append((topic, time.monotonic()))

    def json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "offsets": self.offsets,
            "epochs": self.epochs,
            "resets": [topic for topic, _ in self.resets],
            "longestSilence": self.longestSilence,
        }


def _client(reactor: Any, url: str, topics: list[str], record: Record) -> PubSubClient:
    client = PubSubClient(
        WebSocketClientEndpoint.new(reactor, url),
        retryPolicy=lambda attempt: min(0.05 * 2**attempt, 0.5),
        onRecoveryFailed=record.reset,
    )
    for topic in topics:
        client.subscribe(topic, record.on(topic))
    return client


async def _subscribers(reactor: Any, url: str, topics: list[str], count: int, out: str, stop: str) -> None:
    records = [Record(topics) for _ in range(count)]
    clients = [_client(reactor, url, topics, record) for record in records]
    for client in clients:
        client.startService()
    deadline = time.monotonic() + READY_SECONDS
    while not all(client.position(topic) is not None for client in clients for topic in topics):
        if time.monotonic() > deadline:
            print("not ready: no position for every subscription (a server without positions?)", flush=True)
            raise SystemExit(1)
        await deferLater(reactor, 0.05)
    print("ready", flush=True)
    while not os.path.exists(stop):
        await deferLater(reactor, 0.1)
    for client in clients:
        await client.stopService()
    with open(out, "w") as f:
        json.dump([record.json() for record in records], f)


async def _publisher(reactor: Any, url: str, topics: list[str], count: int, rate: float, out: str) -> None:
    record = Record(topics)
    client = _client(reactor, url, topics, record)
    client.startService()
    await client.whenConnected()
    while not all(client.position(topic) is not None for topic in topics):
        await deferLater(reactor, 0.05)
    started = time.monotonic()
    refused = 0
    for n in range(count):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await deferLater(reactor, delay)
        while True:
            try:
                client.publish(topics[n % len(topics)], {"n": n})
                break
            except NotConnected:
                refused += 1
                await client.whenConnected()
    sent = time.monotonic() - started
    seen = -1
    while True:
        total = sum(len(v) for v in record.data.values())
        if total == seen:
            break
        seen = total
        await deferLater(reactor, 2.0)
    await client.stopService()
    accepted = {t: [d["n"] for d in record.data[t]] for t in topics}
    with open(out, "w") as f:
        json.dump(
            {
                "count": count,
                "sendSeconds": sent,
                "refusedWhileDisconnected": refused,
                "accepted": accepted,
                "record": record.json(),
            },
            f,
        )


def main(argv: list[str]) -> None:
    role, url, topics, *rest = argv
    topicList = topics.split(",")
    if role == "subscribers":
        count, out, stop = rest

        def run(reactor: Any) -> Deferred[None]:
            return ensureDeferred(_subscribers(reactor, url, topicList, int(count), out, stop))

    else:
        count, rate, out = rest

        def run(reactor: Any) -> Deferred[None]:
            return ensureDeferred(_publisher(reactor, url, topicList, int(count), float(rate), out))

    task.react(run)


if __name__ == "__main__":
    main(sys.argv[1:])

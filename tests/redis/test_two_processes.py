"""
Two C{twistd -n txpulse --broker redis://...} processes fan out as one: a
client of one process receives what a client of the other publishes, with
positions from one sequence per topic, and resumes on either process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from ..support.net import free_ports
from ..support.processes import TwistdServer
from .conftest import RedisServer


@pytest.fixture
def two_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """
    Two C{twistd -n txpulse} processes sharing C{redis_server} as broker;
    yields their ports.
    """
    servers = [
        TwistdServer(tmp_path / f"twistd-{port}.log", "--broker", redis_server.url, port=port) for port in free_ports(2)
    ]
    try:
        for server in servers:
            server.start()
        yield servers[0].port, servers[1].port
    finally:
        for server in servers:
            server.stop()


def wait_for_subscribers(redis_server: RedisServer, channel: str, count: int) -> None:
    """
    Wait until C{count} connections are subscribed to C{channel} in Redis.
    """
    deadline = time.monotonic() + 5
    while redis_server.command("PUBSUB", "NUMSUB", channel)[1] < count:
        assert time.monotonic() < deadline, f"{count} subscriptions to {channel}"
        time.sleep(0.02)


def test_clients_of_two_processes_see_each_others_messages(
    two_servers: tuple[int, int], redis_server: RedisServer
) -> None:
    """
    A subscriber on process 1 receives a message published on process 2
    (and the publisher's own process delivers it to its local subscriber
    exactly once).
    """
    first, second = two_servers
    with (
        connect(f"ws://127.0.0.1:{first}/pubsub", open_timeout=5, proxy=None) as one,
        connect(f"ws://127.0.0.1:{second}/pubsub", open_timeout=5, proxy=None) as two,
    ):
        one.send(json.dumps({"action": "subscribe", "topic": "news"}))
        two.send(json.dumps({"action": "subscribe", "topic": "news"}))
        answer = json.loads(one.recv(timeout=5))
        assert (
            answer == json.loads(two.recv(timeout=5)) == {"subscribed": "news", "offset": 0, "epoch": answer["epoch"]}
        )
        wait_for_subscribers(redis_server, "txpulse:news", 2)
        two.send(json.dumps({"action": "publish", "topic": "news", "data": {"from": "process 2"}}))
        delivered = {"topic": "news", "data": {"from": "process 2"}, "offset": 1, "epoch": answer["epoch"]}
        assert json.loads(one.recv(timeout=5)) == delivered
        assert json.loads(two.recv(timeout=5)) == delivered
        with pytest.raises(TimeoutError):
            two.recv(timeout=0.3)


def test_a_client_resumes_on_either_process_from_the_shared_stream(
    two_servers: tuple[int, int], redis_server: RedisServer
) -> None:
    """
    Offsets are one sequence across both processes (publications from
    each interleave without a gap), and a client that was away resumes
    from its last position on either process: C{"recovered": true}, the
    publications it missed in order, then live ones.
    """
    first, second = two_servers
    with (
        connect(f"ws://127.0.0.1:{first}/pubsub", open_timeout=5, proxy=None) as one,
        connect(f"ws://127.0.0.1:{second}/pubsub", open_timeout=5, proxy=None) as two,
    ):
        one.send(json.dumps({"action": "subscribe", "topic": "feed"}))
        epoch = json.loads(one.recv(timeout=5))["epoch"]
        wait_for_subscribers(redis_server, "txpulse:feed", 1)
        for i in range(1, 7):
            (one if i % 2 else two).send(json.dumps({"action": "publish", "topic": "feed", "data": i}))
            assert json.loads(one.recv(timeout=5)) == {"topic": "feed", "data": i, "offset": i, "epoch": epoch}
    with connect(f"ws://127.0.0.1:{second}/pubsub", open_timeout=5, proxy=None) as publisher:
        for i in range(7, 11):
            publisher.send(json.dumps({"action": "publish", "topic": "feed", "data": i}))
        deadline = time.monotonic() + 5
        while redis_server.command("HGET", "txpulse:position:feed", "offset") != "10":
            assert time.monotonic() < deadline, "offset 10"
            time.sleep(0.02)
    for port in (first, second):
        with connect(f"ws://127.0.0.1:{port}/pubsub", open_timeout=5, proxy=None) as back:
            back.send(json.dumps({"action": "subscribe", "topic": "feed", "since": {"offset": 6, "epoch": epoch}}))
            assert json.loads(back.recv(timeout=5)) == {
                "subscribed": "feed",
                "recovered": True,
                "offset": 10,
                "epoch": epoch,
            }
            for i in range(7, 11):
                assert json.loads(back.recv(timeout=5)) == {"topic": "feed", "data": i, "offset": i, "epoch": epoch}

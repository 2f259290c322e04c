"""
Two C{twistd -n txpulse --broker redis://...} processes fan out as one: a
client of one process receives what a client of the other publishes.
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
        # The Redis pub/sub broker gives no positions: a bare answer.
        assert json.loads(one.recv(timeout=5)) == json.loads(two.recv(timeout=5)) == {"subscribed": "news"}
        deadline = time.monotonic() + 5
        while "txpulse:news" not in redis_server.channels() and time.monotonic() < deadline:
            time.sleep(0.02)
        two.send(json.dumps({"action": "publish", "topic": "news", "data": {"from": "process 2"}}))
        assert json.loads(one.recv(timeout=5)) == {"topic": "news", "data": {"from": "process 2"}}
        assert json.loads(two.recv(timeout=5)) == {"topic": "news", "data": {"from": "process 2"}}
        with pytest.raises(TimeoutError):
            two.recv(timeout=0.3)

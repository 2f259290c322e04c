"""
Two C{twistd -n txpulse --broker redis://...} processes fan out as one: a
client of one process receives what a client of the other publishes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from .conftest import RedisServer, free_port

TWISTD = str(Path(sys.executable).with_name("twistd"))


def start_twistd(port: int, redis: RedisServer, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            TWISTD,
            "--pidfile=",
            "-n",
            "txpulse",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--broker",
            f"redis://127.0.0.1:{redis.port}/0",
        ],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(
                    process.stdout.read().decode() if process.stdout else "twistd did not start"
                ) from None
            time.sleep(0.05)


@pytest.fixture
def two_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[int, int]]:
    ports = free_port(), free_port()
    processes = [start_twistd(port, redis_server, tmp_path) for port in ports]
    try:
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


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
        deadline = time.monotonic() + 5
        while "txpulse:news" not in redis_server.channels() and time.monotonic() < deadline:
            time.sleep(0.02)
        two.send(json.dumps({"action": "publish", "topic": "news", "data": {"from": "process 2"}}))
        assert json.loads(one.recv(timeout=5)) == {"topic": "news", "data": {"from": "process 2"}}
        assert json.loads(two.recv(timeout=5)) == {"topic": "news", "data": {"from": "process 2"}}
        with pytest.raises(TimeoutError):
            two.recv(timeout=0.3)

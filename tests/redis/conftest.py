"""
Fixtures for the Redis broker suite: a real C{redis-server} started on a
free loopback port for each test (and killed, paused or restarted on the
same port by the tests that need it), a tiny blocking RESP client to look
at Redis from the outside, and hubs wired to L{RedisBroker}s on the
running reactor.

C{scripts/install-redis.sh} installs C{redis-server}. Without it these tests
are skipped on a developer machine, and fail when C{CI} is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogEvent, LogLevel, formatEvent

from txpulse.pubsub.broker.redis import RedisBroker
from txpulse.pubsub.hub import Hub

from ..support.logs import captured_events
from ..support.net import free_port
from ..support.processes import ServerProcess
from ..support.waits import WAIT, until

#: Reconnect quickly in tests (the default backoff starts at 0.5 s).
FAST_RETRY = 0.05


def redis_server_path() -> str | None:
    """
    The C{redis-server} to run (C{TXPULSE_REDIS_SERVER} overrides PATH).
    """
    return os.environ.get("TXPULSE_REDIS_SERVER") or shutil.which("redis-server")


class RESPError(Exception):
    """
    An error reply from Redis.
    """


def _read_reply(stream: Any) -> Any:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RESPError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read_reply(stream) for _ in range(size)]
    raise ConnectionError(f"not a RESP reply: {line!r}")


class RedisServer(ServerProcess):
    """
    A C{redis-server} on 127.0.0.1 at a fixed port, which can be killed,
    paused and started again on the same port.
    """

    timeout = WAIT

    def __init__(self, executable: str, port: int, directory: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        argv = [
            executable,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ]  # fmt: skip
        super().__init__(argv, directory / "redis.log", [port])

    def persist(self) -> None:
        """
        From the next L{start} on, keep the data in an append-only file,
        synced on every write (C{appendfsync always}), so that a killed
        server comes back with all of it.
        """
        index = self.argv.index("--appendonly")
        self.argv[index + 1] = "yes"
        self.argv += ["--appendfsync", "always"]

    def ready(self) -> bool:
        """
        Whether the server answers C{PING}.
        """
        try:
            return bool(self.command("PING") == "PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """
        SIGKILL: Redis goes away without a goodbye (idempotent).
        """
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # in case it was paused
        super().kill()

    def pause(self) -> None:
        """
        SIGSTOP: connections stay open but nothing answers.
        """
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """
        SIGCONT after L{pause}.
        """
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def command(self, *args: str) -> Any:
        """
        Run one command on a fresh connection and return the decoded reply
        (a blocking call: Redis on loopback answers within microseconds).
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as sock:
            request = f"*{len(args)}\r\n".encode()
            for arg in args:
                encoded = arg.encode()
                request += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                return _read_reply(stream)

    def channels(self, pattern: str = "txpulse:*") -> set[str]:
        """
        C{PUBSUB CHANNELS pattern}: the channels someone is subscribed to.
        """
        return set(self.command("PUBSUB", "CHANNELS", pattern))

    def clients(self) -> list[dict[str, str]]:
        """
        C{CLIENT LIST}, one dict of fields per connection.
        """
        return [
            dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
            for line in self.command("CLIENT", "LIST").splitlines()
        ]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """
    A running L{RedisServer} on a free loopback port, killed at teardown.
    """
    executable = redis_server_path()
    if executable is None:
        message = "redis-server not found (run scripts/install-redis.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(executable, free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest_twisted.async_yield_fixture
async def make_hub(redis_server: RedisServer) -> Any:
    """
    C{await make_hub(hubOptions, **brokerOptions)}: a L{Hub} (built with
    C{hubOptions}, e.g. C{historySize}) with its own
    L{RedisBroker} (like one server process) on C{redis_server}, returned
    once the broker is connected. Every broker is stopped at teardown.
    """
    brokers: list[RedisBroker] = []

    async def make(hubOptions: dict[str, Any] | None = None, **options: Any) -> Hub:
        options.setdefault("retryPolicy", lambda attempt: FAST_RETRY)
        broker = RedisBroker.fromURL(redis_server.url, reactor=reactor, **options)
        brokers.append(broker)
        hub = Hub(broker, **(hubOptions or {}))
        await until(lambda: broker.connected, "the broker to connect")
        return hub

    yield make
    for broker in brokers:
        await broker.stop()


@pytest.fixture
def log_events() -> Iterator[EventLoggingObserver]:
    """
    Every log event emitted during the test (Twisted's
    L{EventLoggingObserver}).
    """
    with captured_events() as events:
        yield events


def broker_of(hub: Hub) -> RedisBroker:
    """
    The L{RedisBroker} of a hub made by C{make_hub}.
    """
    assert isinstance(hub.broker, RedisBroker)
    return hub.broker


def broker_lines(events: Iterable[LogEvent]) -> list[tuple[LogLevel, str]]:
    """
    The broker's own log lines: C{(level, text)}.
    """
    return [
        (event["log_level"], formatEvent(event))
        for event in events
        if event.get("log_namespace") == "txpulse.pubsub.broker.redis"
    ]

"""
Fixtures for the Redis broker suite: a real C{redis-server} started on a
free loopback port for each test (L{tests.support.redisserver.RedisServer}:
killed, paused or restarted on the same port by the tests that need it,
looked at from the outside with its tiny blocking RESP client), and hubs
wired to L{RedisBroker}s on the running reactor.

C{scripts/install-redis.sh} installs C{redis-server}. Without it these tests
are skipped on a developer machine, and fail when C{CI} is set.
"""

from __future__ import annotations

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
from ..support.redisserver import RedisServer
from ..support.waits import WAIT, until

#: Reconnect quickly in tests (the default backoff starts at 0.5 s).
FAST_RETRY = 0.05


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """
    A running L{RedisServer} on a free loopback port, killed at teardown.
    """
    server = RedisServer(tmp_path, free_port(), timeout=WAIT)
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

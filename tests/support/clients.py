"""
txpulse's own client on loopback: the C{connect} fixture opening connections
with L{WebSocketClientEndpoint}, each to a recording application
(L{tests.support.apps.RecordingApp}).
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import reactor

from txpulse.client import WebSocketClientEndpoint

from .apps import RecordingApp, RecordingFactory
from .waits import within


@pytest_twisted.async_yield_fixture
async def connect() -> Any:
    """
    C{await connect(url, factory=None, **options)}: connect txpulse's
    endpoint (C{WebSocketClientEndpoint.new(reactor, url, **options)}) and
    return the application protocol. Connections still open at teardown
    are dropped, and their C{connectionLost} awaited.
    """
    factories: list[RecordingFactory] = []

    async def open_(url: str, factory: RecordingFactory | None = None, **options: Any) -> RecordingApp:
        factory = factory if factory is not None else RecordingFactory()
        factories.append(factory)
        endpoint = WebSocketClientEndpoint.new(reactor, url, **options)
        app: RecordingApp = await within(endpoint.connect(factory))
        return app

    yield open_
    for factory in factories:
        for app in factory.built:
            if app.transport is not None and not app.lost.called:
                app.transport.abortConnection()
                await within(app.lost)

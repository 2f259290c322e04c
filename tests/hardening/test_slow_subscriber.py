"""
What a slow pub/sub subscriber actually receives, against a live server and
a real socket (README, "Slow subscribers"): the hub drops it with close
1008, but that close frame is queued I{behind} everything already written
to it. A subscriber that resumes reading within C{closeTimeout} receives
every message queued before the drop, in order, then close 1008
("subscriber too slow"), and the close handshake completes. One that never
reads cannot receive the close frame at all: after C{closeTimeout} the
server aborts the connection, and the peer sees what its own receive
buffer held, then a TCP reset. Either way a well-behaved client is not
disturbed.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from wsproto.frame_protocol import Opcode

from txpulse import WebSocketResource
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.pubsub import Hub, PubSubFactory

from ..support.frames import client_frame, close_payload
from ..support.logs import LogLines
from ..support.rawsocket import RawSocket, accept_key_for
from ..support.requests import keyed_upgrade
from ..support.waits import WAIT, within
from .conftest import HardenedServer, HardenedSite, ObservedEchoFactory, peer_of, undisturbed

#: Seconds the server waits for a dropped subscriber's close handshake.
CLOSE_TIMEOUT = 1.0


@pytest_twisted.async_yield_fixture
async def pubsub() -> Any:
    """
    A live server with C{/pubsub} (a hub dropping subscribers 64 KiB
    behind, close timeout 1 s) and the hardening C{/echo} for the
    bystander; yields C{(server, hub)}.
    """
    hub = Hub(maxBacklog=64 << 10)
    factory = ObservedEchoFactory()
    registry = ConnectionRegistry()
    root = Resource()
    root.putChild(b"echo", WebSocketResource(factory, observer=registry.observerFor("/echo"), pingInterval=None))
    root.putChild(
        b"pubsub",
        WebSocketResource(
            PubSubFactory(hub), observer=registry.observerFor("/pubsub"), pingInterval=None, closeTimeout=CLOSE_TIMEOUT
        ),
    )
    server = HardenedServer.listen(HardenedSite(root), factory=factory, registry=registry)
    yield server, hub
    await server.stop()


def _connect(port: int) -> socket.socket:
    # A small receive buffer, set before connecting (the window scale is
    # fixed by the SYN), so the subscriber falls behind quickly.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    return sock


async def slow_subscriber(server: HardenedServer, hub: Hub, logs: LogLines) -> tuple[RawSocket, int]:
    """
    Subscribe a raw socket that does not read to topic C{t}, publish 4 KiB
    messages (one per reactor turn) until the hub drops it, and return it
    with the number of messages published.
    """
    sock = RawSocket(await within(deferToThread(_connect, server.port)))
    request, key = keyed_upgrade(server.port, "/pubsub")
    await sock.send(request)
    response = await sock.read_response()
    assert response.status == 101 and response.headers["sec-websocket-accept"] == accept_key_for(key)
    await sock.send(client_frame(Opcode.TEXT, json.dumps({"action": "subscribe", "topic": "t"}).encode()))
    deadline = time.monotonic() + WAIT
    while not hub.subscribers("t") and time.monotonic() < deadline:
        await deferLater(reactor, 0.01)
    assert hub.subscribers("t"), "the subscription did not arrive"
    published = 0
    while hub.subscribers("t") and time.monotonic() < deadline:
        hub.publish("t", f"{published:06}" + "x" * 4096)
        published += 1
        await deferLater(reactor, 0)
    assert not hub.subscribers("t"), "the slow subscriber was not dropped"
    await logs.expect("Disconnecting subscriber", peer_of(sock), "too slow")
    return sock, published


@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_resumes_reading_gets_everything_then_1008(pubsub: Any, logs: LogLines) -> None:
    """
    Dropped, then reading again (well within the close timeout): every
    message queued before the drop arrives, in order and complete, then
    close 1008 "subscriber too slow"; answering it ends the connection
    cleanly (a FIN, not a reset).
    """
    server, hub = pubsub
    async with undisturbed(server) as bystander:
        sock, published = await slow_subscriber(server, hub, logs)
        await bystander.exchange()
        messages = []
        while True:
            message = await sock.read_message()
            assert message is not None, "EOF before the close frame"
            if message.opcode is Opcode.CLOSE:
                break
            messages.append(message)
        assert (message.code, message.reason) == (1008, "subscriber too slow")
        answer, *deliveries = [json.loads(str(m.payload)) for m in messages]
        assert answer["subscribed"] == "t"  # the subscription's answer (#15) comes first
        numbers = [int(delivery["data"][:6]) for delivery in deliveries]
        assert numbers == list(range(len(numbers))) and 0 < len(numbers) <= published
        await sock.send(client_frame(Opcode.CLOSE, close_payload(1008)))
        await sock.read_until_eof()
        assert not sock.reset


@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_never_reads_gets_a_reset_after_the_close_timeout(pubsub: Any, logs: LogLines) -> None:
    """
    Dropped and never reading: the close frame cannot reach it (its TCP
    window is closed), so after C{closeTimeout} the server aborts, with a
    log line naming it. Reading afterwards yields at most what its own
    receive buffer held, never the close frame, then a TCP reset.
    """
    server, hub = pubsub
    async with undisturbed(server):
        sock, _ = await slow_subscriber(server, hub, logs)
        dropped = time.monotonic()
        await logs.expect(peer_of(sock), "did not finish closing", seconds=CLOSE_TIMEOUT + WAIT)
        assert time.monotonic() - dropped >= CLOSE_TIMEOUT - 0.1
        await deferLater(reactor, 0.1)
        data = await sock.read_until_eof()
        assert sock.reset
        assert len(data) < 64 << 10
        assert b"\x88" not in data[-8:] and b"subscriber too slow" not in data

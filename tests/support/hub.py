"""
Pub/sub in memory: a fake hub subscriber (L{txpulse.pubsub.hub.Subscriber})
without a connection, and a pub/sub (or chat) factory's protocol on a real
wire over a string transport.
"""

from __future__ import annotations

import json
from typing import Any

from txpulse.core.connection import Connection, Side
from txpulse.pubsub.protocol import PubSubFactory
from txpulse.wire.protocol import WebSocketWire, WireOptions

from .frames import server_frames
from .transports import CountingTransport


class FakeSubscriber:
    """
    What the hub delivers to (a L{txpulse.pubsub.hub.Subscriber}), without a
    connection: records the frames it was sent, honours the batching
    contract (C{queueFrame} then C{flush}), can pretend to be a slow reader
    (set C{writeBacklog}) or closed.
    """

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.queued: list[bytes] = []
        self.flushes = 0
        self.closed: tuple[int, str] | None = None
        self.writeBacklog = 0

    def sendFrame(self, frame: bytes) -> None:
        self.flush()
        self.frames.append(frame)

    def queueFrame(self, frame: bytes) -> bool:
        if self.closed is not None:
            return False
        self.queued.append(frame)
        return len(self.queued) == 1

    def flush(self) -> None:
        self.flushes += 1
        self.frames += self.queued
        self.queued = []

    def loseConnection(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def abortConnection(self) -> None:
        self.closed = (1006, "")

    def isOpen(self) -> bool:
        return self.closed is None

    def texts(self) -> list[str]:
        """
        The text of every message written, as sent on the wire.
        """
        return [str(f.payload) for frame in self.frames for f in server_frames(frame)]

    def messages(self) -> list[Any]:
        """
        Every message written, parsed as JSON.
        """
        return [json.loads(text) for text in self.texts()]

    def envelopes(self) -> list[Any]:
        """
        Every message written, parsed as JSON, without its position
        (C{"offset"} and C{"epoch"}): what a client of the first version
        of the protocol looks at.
        """
        return [withoutPosition(message) for message in self.messages()]


def withoutPosition(message: Any) -> Any:
    """
    C{message} without its C{"offset"} and C{"epoch"} (if it is an object).
    """
    if not isinstance(message, dict):
        return message
    return {key: value for key, value in message.items() if key not in ("offset", "epoch")}


def connect(factory: PubSubFactory, identity: object = None) -> tuple[WebSocketWire, CountingTransport]:
    """
    A connection of C{factory}'s protocol (a L{PubSubFactory} or a chat
    factory) on a server wire without keepalive, on the hub's clock.
    """
    transport = CountingTransport()
    wire = WebSocketWire(
        factory.buildProtocol(None),
        Connection(Side.SERVER),
        clock=factory.hub.clock,
        options=WireOptions(pingInterval=None),
        identity=identity,
    )
    wire.makeConnection(transport)
    return wire, transport

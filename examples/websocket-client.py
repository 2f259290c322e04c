"""
The client half of Twisted's WebSocket walk-through, on txpulse.

Twisted's C{WebSocketClientDemo} with one import changed: it connects to
the C{websocket-server.rpy} example, sends a greeting and prints every
message it receives::

    .venv/bin/twist web --listen tcp:8080 --path examples &
    .venv/bin/python examples/websocket-client.py [ws://localhost:8080/websocket-server.rpy] [--count N]

C{--count N} stops after N messages (the demo otherwise runs until
interrupted). When it cannot connect (no server running, a refused
handshake) it says so in one line on stderr and exits 1.
"""

from __future__ import annotations

import sys

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectError
from twisted.internet.task import react
from twisted.python.failure import Failure
from twisted.web.websocket import WebSocketTransport

from txpulse import WebSocketClientEndpoint, WebSocketError

DEFAULT_URL = "ws://localhost:8080/websocket-server.rpy"


class WebSocketClientDemo:
    limit: int | None = None
    done: Deferred[None] | None = None

    @classmethod
    def buildProtocol(cls, uri: str) -> WebSocketClientDemo:
        return cls()

    def textMessageReceived(self, data: str) -> None:
        print(f"received text: {data!r}", flush=True)
        self._count()

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        self.received = 0

    def negotiationFinished(self) -> None:
        self.transport.sendTextMessage("hello, world!")

    def bytesMessageReceived(self, data: bytes) -> None:
        print(f"received bytes: {data!r}", flush=True)
        self._count()

    def connectionLost(self, reason: Failure) -> None:
        print(f"connection lost: {reason.getErrorMessage()}", flush=True)
        if self.done is not None and not self.done.called:
            self.done.callback(None)

    def pongReceived(self, payload: bytes) -> None: ...

    def _count(self) -> None:
        self.received += 1
        if self.limit is not None and self.received >= self.limit:
            self.transport.loseConnection()


async def main(reactor: object, url: str, count: int | None) -> None:
    WebSocketClientDemo.limit = count
    WebSocketClientDemo.done = Deferred()
    endpoint = WebSocketClientEndpoint.new(reactor, url)
    print("connecting...", flush=True)
    try:
        await endpoint.connect(WebSocketClientDemo)
    except (ConnectError, WebSocketError) as failed:
        print(f"could not connect to {url}: {failed}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    print("connected!", flush=True)
    await WebSocketClientDemo.done


if __name__ == "__main__":
    args = sys.argv[1:]
    count = None
    if "--count" in args:
        index = args.index("--count")
        count = int(args[index + 1])
        del args[index : index + 2]
    target = args[0] if args else DEFAULT_URL
    react(lambda reactor: ensureDeferred(main(reactor, target, count)))

"""
A WebSocket echo server for the benchmarks: one implementation, one process.

    python bench/echo_server.py KIND PORT [--host 127.0.0.1] [--path /echo]

serves ws://HOST:PORT/echo (text back as text, bytes back as bytes) and
prints C{ready} on stdout (flushed) once it listens. KIND is one of
L{SERVERS}:

  - C{txpulse}: C{txpulse.WebSocketResource(EchoFactory(), pingInterval=None)}
    in a C{twisted.web} C{Site};
  - C{twisted}: Twisted's own C{twisted.web.websocket.WebSocketResource}
    (wsproto underneath) with the same echo protocol, in a C{Site}.

txpulse is imported from this checkout's C{src/} (not from the copy installed
in the virtualenv, which may be stale). Both run on the epoll reactor with keepalive pings off, so the benchmark
measures the message path only. Warnings and errors are logged to stderr;
informational events are dropped.

To add a peer, write a C{serve_KIND(host, port, path)} function that listens,
calls L{ready}, and runs until killed, and register it in L{SERVERS}.
Twisted-based peers only need a resource builder (see L{twistedSite}).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported late at run time: the reactor must be chosen first
    from twisted.python.failure import Failure
    from twisted.web.server import Request


def ready() -> None:
    """
    Tell the driver we listen.
    """
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def _startTwistedLogging() -> None:
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)])],
        redirectStandardIO=False,
    )


class TwistedEcho:
    """
    Echo, written against C{twisted.web.websocket.WebSocketProtocol}.
    (Equivalent to C{txpulse.apps.Echo}; kept separate so the Twisted server
    imports nothing from txpulse.)
    """

    transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        pass


class TwistedEchoFactory:
    def buildProtocol(self, request: Request) -> TwistedEcho:
        return TwistedEcho()


#: The working tree's sources, so a benchmark measures the code being edited
#: rather than whatever copy was last installed into the virtualenv.
SRC = Path(__file__).resolve().parent.parent / "src"


def _txpulseResource() -> Any:
    if (SRC / "txpulse" / "__init__.py").exists():
        sys.path.insert(0, str(SRC))
    import txpulse
    import txpulse.apps

    return txpulse.WebSocketResource(txpulse.apps.EchoFactory(), pingInterval=None)


def _twistedResource() -> Any:
    from twisted.web.websocket import WebSocketResource

    return WebSocketResource(TwistedEchoFactory())


def twistedSite(makeResource: Callable[[], Any]) -> Callable[[str, int, str], None]:
    """
    A server function that mounts C{makeResource()} at C{path} in a
    C{twisted.web} C{Site} on the epoll reactor.
    """

    def serve(host: str, port: int, path: str) -> None:
        from twisted.internet import epollreactor

        epollreactor.install()
        from twisted.internet import reactor
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        _startTwistedLogging()
        root = Resource()
        segments = [s.encode() for s in path.strip("/").split("/")]
        parent = root
        for segment in segments[:-1]:
            child = Resource()
            parent.putChild(segment, child)
            parent = child
        parent.putChild(segments[-1], makeResource())
        site = Site(root)
        site.noisy = False
        reactor.listenTCP(port, site, backlog=1024, interface=host)  # type: ignore[arg-type]
        reactor.callWhenRunning(ready)
        reactor.run()

    return serve


#: KIND -> serve(host, port, path), which blocks until the process is killed.
SERVERS: dict[str, Callable[[str, int, str], None]] = {
    "txpulse": twistedSite(_txpulseResource),
    "twisted": twistedSite(_twistedResource),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WebSocket echo server for the benchmarks")
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", default="/echo")
    args = parser.parse_args(argv)
    SERVERS[args.kind](args.host, args.port, args.path)


if __name__ == "__main__":
    main()

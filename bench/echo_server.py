"""
A WebSocket server for the benchmarks: one implementation, one process.

    python bench/echo_server.py KIND PORT [--host 127.0.0.1] [--path /echo]
                                [--app echo|pubsub] [--heartbeat SECONDS] [--deflate]

serves ws://HOST:PORT/PATH and prints C{ready} on stdout (flushed) once it
listens. KIND is one of L{SERVERS}:

  - C{txpulse}: C{txpulse.WebSocketResource(EchoFactory(), pingInterval=None)}
    in a L{txpulse.WebSocketSite} (what C{twistd txpulse} serves with: a
    C{twisted.web} C{Site} whose channels hand over to the WebSocket without
    per-connection patching); with C{--app pubsub}, the hub
    (C{PubSubFactory(Hub(MemoryBroker()))}, what C{twistd txpulse} mounts at
    C{/pubsub}); C{txpulse-stock-site}: the same in a stock C{Site};
  - C{twisted}: Twisted's own C{twisted.web.websocket.WebSocketResource}
    (wsproto underneath) with the same echo protocol, in a C{Site};
  - C{autobahn}: autobahn's C{WebSocketServerProtocol} on Twisted (NVX,
    its C masking and UTF-8 validation, when built);
  - C{websockets}: C{websockets.asyncio.server.serve} (asyncio);
  - C{aiohttp}: an C{aiohttp.web} application with a C{WebSocketResponse};
  - C{picows}: C{picows.ws_create_server} with a C{WSListener} (asyncio; it
    uses aiofastnet when that is installed, as picows does by default).

C{--app echo} (the default) echoes every message (text back as text, bytes
back as bytes). C{--app pubsub} speaks the txpulse hub's JSON protocol
(C{{"action":"subscribe","topic":T}}, C{{"action":"publish","topic":T,
"data":D}}; every subscriber of T receives C{{"topic":T,"data":D}}): for the
peers, which have no hub, a minimal broadcast server written the way each
library's documentation suggests (parse the request with C{json}, serialize
the envelope once, then C{websockets.broadcast} / autobahn's
C{prepareMessage} + C{sendPreparedMessage} / a loop of sends).

C{--heartbeat SECONDS} turns keepalive pings on (default: off, so the
throughput benchmarks measure the message path only): txpulse's
C{pingInterval}, autobahn's C{autoPingInterval}, websockets' C{ping_interval},
aiohttp's C{heartbeat}, picows' C{enable_auto_ping}; Twisted's
C{twisted.web.websocket} has no keepalive of its own, so there each
connection runs a C{LoopingCall} of C{transport.ping()} (what an application
would write). C{--deflate} (txpulse only) accepts permessage-deflate.
Compression is off for every peer (websockets and aiohttp enable it by
default; it is turned off so all compare alike).

txpulse is imported from this checkout's C{src/} (not from the copy installed
in the virtualenv, which may be stale). Twisted-based servers run on the
epoll reactor, asyncio ones on the default asyncio loop. Warnings and errors
are logged to stderr; informational events are dropped. The soft open-files
limit is raised to the hard one (the idle benchmark holds 10,000 sockets).

To add a peer, write a C{serve_KIND(host, port, path, options)} function that
listens, calls L{ready}, and runs until killed, and register it in
L{SERVERS} (with the package it needs; bench/run.py then measures it too).
Twisted-based peers only need a resource builder (see L{twistedSite}),
asyncio ones a coroutine that starts listening (see L{_runAsyncio}); the
pub/sub ones share L{Topics}.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported late at run time: the reactor must be chosen first
    from twisted.python.failure import Failure
    from twisted.web.server import Request


@dataclass(frozen=True)
class ServerOptions:
    """
    What a server serves: C{app} is C{"echo"}, C{"pubsub"} or C{"loop"}
    (pub/sub by a plain loop of sends, see L{TwistedPubSub}); C{heartbeat}
    is the keepalive ping interval in seconds (C{None}: off); C{deflate}
    accepts permessage-deflate (txpulse only).
    """

    app: str = "echo"
    heartbeat: float | None = None
    deflate: bool = False
    backlog: int = 1024


#: Largest message the servers accept (all alike).
MAX_MESSAGE = 1 << 20
#: Seconds a peer has to answer a keepalive ping (all alike).
PING_TIMEOUT = 20.0


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


class Topics:
    """
    The pub/sub peers' common part: who subscribed to which topic, and the
    requests of the hub's JSON protocol. A subscriber is whatever a peer
    sends with (a protocol, a connection, a transport); how it sends the
    envelope to a topic's subscribers is each peer's own.
    """

    def __init__(self) -> None:
        self.subscribers: dict[Any, set[Any]] = {}
        self._topicsOf: dict[Any, set[Any]] = {}

    def request(self, subscriber: Any, message: str | bytes) -> tuple[set[Any], str] | None:
        """
        Handle one request from C{subscriber}: a subscribe is recorded; a
        publish returns the topic's subscribers and the JSON envelope each
        one gets (as txpulse's hub builds it). C{None} for anything else.
        """
        try:
            request = json.loads(message)
        except ValueError:
            return None
        topic = request.get("topic")
        if request.get("action") == "subscribe":
            self.subscribers.setdefault(topic, set()).add(subscriber)
            self._topicsOf.setdefault(subscriber, set()).add(topic)
            return None
        if request.get("action") != "publish" or "data" not in request:
            return None
        envelope = json.dumps({"topic": topic, "data": request["data"]}, ensure_ascii=False, separators=(",", ":"))
        return self.subscribers.get(topic, set()), envelope

    def leave(self, subscriber: Any) -> None:
        """
        C{subscriber} is gone.
        """
        for topic in self._topicsOf.pop(subscriber, ()):
            self.subscribers[topic].discard(subscriber)


# -- txpulse and Twisted's twisted.web.websocket ---------------------------------------


class TwistedEcho:
    """
    Echo, written against C{twisted.web.websocket.WebSocketProtocol}.
    (Equivalent to C{txpulse.demos.apps.Echo}; kept separate so the Twisted server
    imports nothing from txpulse.)
    """

    transport: Any = None
    heartbeat: float | None = None
    _pinger: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        if self.heartbeat:
            # twisted.web.websocket has no keepalive: ping on a timer, the
            # way an application would.
            from twisted.internet.task import LoopingCall

            self._pinger = LoopingCall(self.transport.ping)
            self._pinger.start(self.heartbeat, now=False)

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()


class TwistedPubSub(TwistedEcho):
    """
    The minimal broadcast server on C{twisted.web.websocket}: a dict of
    topic -> protocols; a publish sends the envelope to each one's transport
    (Twisted's API has no way to encode a frame once for many connections).
    """

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    def textMessageReceived(self, message: str) -> None:
        publish = self.topics.request(self, message)
        if publish is not None:
            subscribers, envelope = publish
            for subscriber in list(subscribers):
                subscriber.transport.sendTextMessage(envelope)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.topics.leave(self)


class TwistedEchoFactory:
    def __init__(self, options: ServerOptions = ServerOptions()) -> None:
        self.options = options
        self.topics = Topics()

    def buildProtocol(self, request: Request) -> TwistedEcho:
        protocol = TwistedPubSub(self.topics) if self.options.app in ("pubsub", "loop") else TwistedEcho()
        protocol.heartbeat = self.options.heartbeat
        return protocol


#: The working tree's sources, so a benchmark measures the code being edited
#: rather than whatever copy was last installed into the virtualenv.
SRC = Path(__file__).resolve().parent.parent / "src"


def _txpulseResource(options: ServerOptions = ServerOptions()) -> Any:
    if (SRC / "txpulse" / "__init__.py").exists():
        sys.path.insert(0, str(SRC))
    import txpulse
    import txpulse.demos.apps

    settings = {"pingInterval": options.heartbeat, "pingTimeout": PING_TIMEOUT, "compression": options.deflate}
    if options.app == "loop":
        # The code most users write with Twisted's API: the very protocol
        # Twisted's server runs (a loop of sendTextMessage per publish), on
        # txpulse's resource.
        return txpulse.WebSocketResource(TwistedEchoFactory(options), maxMessageSize=MAX_MESSAGE, **settings)
    if options.app == "pubsub":
        from txpulse.pubsub import Hub, PubSubFactory
        from txpulse.pubsub.broker.memory import MemoryBroker

        # What `twistd txpulse` mounts at /pubsub (tap.buildRoot).
        return txpulse.WebSocketResource(
            PubSubFactory(Hub(MemoryBroker()), maxPublishSize=MAX_MESSAGE), maxMessageSize=MAX_MESSAGE, **settings
        )
    return txpulse.WebSocketResource(txpulse.demos.apps.EchoFactory(), maxMessageSize=MAX_MESSAGE, **settings)


def _twistedResource(options: ServerOptions = ServerOptions()) -> Any:
    from twisted.web.websocket import WebSocketResource

    return WebSocketResource(TwistedEchoFactory(options))


def _installEpoll() -> Any:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    return reactor


def _txpulseSite(root: Any) -> Any:
    """
    What C{twistd txpulse} serves with: a L{txpulse.WebSocketSite} (its
    request deadline at the plugin's default, 10 s), without connection caps:
    the suite opens up to 10,000 connections, all from 127.0.0.1; and the
    garbage collector tuned as the plugin tunes it at start-up
    (L{txpulse.server.collector}).
    """
    if (SRC / "txpulse" / "__init__.py").exists():
        sys.path.insert(0, str(SRC))
    from txpulse.server.collector import tuneCollector
    from txpulse.server.site import WebSocketSite

    tuneCollector()  # as the plugin does at start-up (--gc-threshold)
    return WebSocketSite(root, requestTimeout=10.0, maxConnections=0, maxConnectionsPerAddress=0)


def twistedSite(
    makeResource: Callable[[ServerOptions], Any], makeSite: Callable[[Any], Any] | None = None
) -> Callable[[str, int, str, ServerOptions], None]:
    """
    A server function that mounts C{makeResource(options)} at C{path} in a
    C{twisted.web} C{Site} (or C{makeSite(root)}) on the epoll reactor.
    """

    def serve(host: str, port: int, path: str, options: ServerOptions = ServerOptions()) -> None:
        reactor = _installEpoll()
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
        parent.putChild(segments[-1], makeResource(options))
        site = Site(root) if makeSite is None else makeSite(root)
        site.noisy = False
        reactor.listenTCP(port, site, backlog=options.backlog, interface=host)
        reactor.callWhenRunning(ready)
        reactor.run()

    return serve


# -- autobahn on Twisted ------------------------------------------------------------


def serve_autobahn(host: str, port: int, path: str, options: ServerOptions = ServerOptions()) -> None:
    reactor = _installEpoll()
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

    _startTwistedLogging()

    class Echo(WebSocketServerProtocol):  # type: ignore[misc]
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)

    topics = Topics()

    class PubSub(WebSocketServerProtocol):  # type: ignore[misc]
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            publish = topics.request(self, payload)
            if publish is not None:
                subscribers, envelope = publish
                # autobahn's broadcast API: the frame is built once.
                prepared = self.factory.prepareMessage(envelope.encode("utf-8"))
                for peer in list(subscribers):
                    peer.sendPreparedMessage(prepared)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            topics.leave(self)

    factory = WebSocketServerFactory(f"ws://{host}:{port}")
    factory.protocol = PubSub if options.app != "echo" else Echo
    protocolOptions: dict[str, Any] = {"maxMessagePayloadSize": MAX_MESSAGE, "maxFramePayloadSize": MAX_MESSAGE}
    if options.heartbeat:
        protocolOptions |= {"autoPingInterval": options.heartbeat, "autoPingTimeout": PING_TIMEOUT}
    factory.setProtocolOptions(**protocolOptions)
    reactor.listenTCP(port, factory, backlog=options.backlog, interface=host)
    reactor.callWhenRunning(ready)
    reactor.run()


# -- asyncio peers -------------------------------------------------------------------


def _runAsyncio(listen: Callable[[], Awaitable[Any]]) -> None:
    """
    On a new asyncio loop: await C{listen()} (which starts listening), call
    L{ready}, and serve until killed.
    """
    import asyncio

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    async def main() -> None:
        server = await listen()  # noqa: F841 (referenced for as long as it serves)
        ready()
        await asyncio.Future()

    asyncio.run(main())


def serve_websockets(host: str, port: int, path: str, options: ServerOptions = ServerOptions()) -> None:
    import websockets
    from websockets.asyncio.server import serve

    topics = Topics()

    async def echo(ws: Any) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass

    async def pubsub(ws: Any) -> None:
        try:
            async for message in ws:
                publish = topics.request(ws, message)
                if publish is not None:
                    subscribers, envelope = publish
                    websockets.broadcast(subscribers, envelope)
        finally:
            topics.leave(ws)

    _runAsyncio(
        lambda: serve(
            pubsub if options.app != "echo" else echo,
            host,
            port,
            ping_interval=options.heartbeat,
            ping_timeout=PING_TIMEOUT if options.heartbeat else None,
            compression=None,
            max_size=MAX_MESSAGE,
            backlog=options.backlog,
        )
    )


def serve_aiohttp(host: str, port: int, path: str, options: ServerOptions = ServerOptions()) -> None:
    from aiohttp import WSMsgType, web

    topics = Topics()

    def response() -> Any:
        return web.WebSocketResponse(
            heartbeat=options.heartbeat, compress=False, max_msg_size=MAX_MESSAGE, autoping=True
        )

    async def echo(request: Any) -> Any:
        ws = response()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def pubsub(request: Any) -> Any:
        ws = response()
        await ws.prepare(request)
        try:
            async for message in ws:
                publish = topics.request(ws, message.data) if message.type == WSMsgType.TEXT else None
                if publish is not None:
                    subscribers, envelope = publish
                    for peer in list(subscribers):
                        await peer.send_str(envelope)
        finally:
            topics.leave(ws)
        return ws

    async def listen() -> Any:
        app = web.Application()
        app.router.add_get(path, pubsub if options.app != "echo" else echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=options.backlog).start()
        return runner

    _runAsyncio(listen)


def serve_picows(host: str, port: int, path: str, options: ServerOptions = ServerOptions()) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    topics = Topics()

    class Echo(WSListener):  # type: ignore[misc]
        # picows hands over frames, not messages: echo each frame as it is
        # (the generator sends single-frame messages).
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)

    class PubSub(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT:
                return
            publish = topics.request(transport, frame.get_payload_as_bytes())
            if publish is not None:
                subscribers, envelope = publish
                data = envelope.encode("utf-8")
                for peer in list(subscribers):
                    peer.send(WSMsgType.TEXT, data)

        def on_ws_disconnected(self, transport: Any) -> None:
            topics.leave(transport)

    listener = PubSub if options.app != "echo" else Echo
    _runAsyncio(
        lambda: ws_create_server(
            lambda request: listener(),
            host,
            port,
            enable_auto_ping=bool(options.heartbeat),
            auto_ping_idle_timeout=options.heartbeat or 20,
            # picows requires reply timeout <= idle timeout
            auto_ping_reply_timeout=min(PING_TIMEOUT, options.heartbeat or 20),
            max_frame_size=MAX_MESSAGE,
            backlog=options.backlog,
        )
    )


@dataclass(frozen=True)
class Kind:
    """
    A server kind: C{serve(host, port, path, options)} serves both apps
    (echo and pubsub) and blocks until the process is killed; C{package} is
    the import it needs (bench/run.py skips a kind whose package is
    missing); C{deflate}: it accepts C{--deflate}; C{suite}: bench/run.py
    measures it unless C{--servers} says otherwise.
    """

    serve: Callable[[str, int, str, ServerOptions], None]
    package: str
    deflate: bool = False
    suite: bool = True


#: Every server kind, txpulse first (the suite's order).
SERVERS: dict[str, Kind] = {
    "txpulse": Kind(twistedSite(_txpulseResource, _txpulseSite), "twisted", deflate=True),
    # the same resource in a stock Site (what bench/echo.py measured before)
    "txpulse-stock-site": Kind(twistedSite(_txpulseResource), "twisted", deflate=True, suite=False),
    "twisted": Kind(twistedSite(_twistedResource), "wsproto"),
    "autobahn": Kind(serve_autobahn, "autobahn"),
    "websockets": Kind(serve_websockets, "websockets"),
    "aiohttp": Kind(serve_aiohttp, "aiohttp"),
    "picows": Kind(serve_picows, "picows"),
}


def raiseOpenFilesLimit() -> None:
    """
    Raise the soft limit on open files to the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WebSocket server for the benchmarks")
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", default=None, help="default /echo, or /pubsub with --app pubsub")
    parser.add_argument("--app", choices=("echo", "pubsub", "loop"), default="echo")
    parser.add_argument("--heartbeat", type=float, default=0, help="keepalive ping interval in seconds (0: off)")
    parser.add_argument("--deflate", action="store_true", help="accept permessage-deflate (txpulse only)")
    parser.add_argument("--backlog", type=int, default=1024)
    args = parser.parse_args(argv)
    kind = SERVERS[args.kind]
    if args.deflate and not kind.deflate:
        parser.error("--deflate is only wired up for txpulse")
    raiseOpenFilesLimit()
    options = ServerOptions(app=args.app, heartbeat=args.heartbeat or None, deflate=args.deflate, backlog=args.backlog)
    path = args.path or ("/pubsub" if args.app != "echo" else "/echo")
    kind.serve(args.host, args.port, path, options)


if __name__ == "__main__":
    main()

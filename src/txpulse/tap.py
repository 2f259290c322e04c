# -*- test-case-name: tests.test_tap -*-
"""
C{twistd txpulse}: the WebSocket demos, a static site and metrics in one
resource tree.

Mounts C{/} (the static site shipped in C{txpulse/static}, or C{--path}),
C{/ws} (the heartbeat demo), C{/echo} (an echo service), C{/pubsub} (the hub),
C{/chat} (the chat demo, on the same hub), one mount per
C{--app NAME=module:factory}, C{/metrics} (Prometheus) and, with
C{--auth-keys} and C{--jwk}, C{/@wstoken} (browser tokens); listens on every
C{--listen} endpoint (default C{tcp:8080}). On shutdown every open WebSocket
gets close 1001 and up to C{--shutdown-timeout} seconds to finish.
"""

from __future__ import annotations

import importlib
import inspect
import os
from importlib.resources import files
from typing import Any

from twisted.application import service, strports
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.script import ResourceScript
from twisted.web.static import File

from .apps import EchoFactory, HeartbeatFactory
from .auth import ApiKeys, Authenticator, TokenIssuer, TokenResource
from .broker.memory import MemoryBroker
from .chat import ChatFactory
from .core.connection import DEFAULT_MAX_MESSAGE_SIZE
from .hub import Broker, Hub, PubSubFactory
from .metrics import ConnectionRegistry, MetricsResource
from .resource import WebSocketResource
from .site import WebSocketSite
from .wire import DEFAULT_MAX_WRITE_BUFFER

__all__ = ["Options", "makeService", "buildRoot"]


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise usage.UsageError(f"not a number of seconds: {value!r}") from None
    if number < 0:
        raise usage.UsageError(f"must not be negative: {value!r}")
    return number


def _positiveSeconds(value: str) -> float:
    number = _seconds(value)
    if number == 0:
        raise usage.UsageError(f"must be positive: {value!r}")
    return number


_SIZE_SUFFIXES = {
    "": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}


def _size(value: str) -> int:
    text = value.strip().upper()
    digits = text.rstrip("KMGIB")
    suffix = text[len(digits) :]
    if not digits.isdigit() or suffix not in _SIZE_SUFFIXES:
        raise usage.UsageError(f"not a size in bytes (e.g. 65536, 64K, 16M): {value!r}")
    size = int(digits) * _SIZE_SUFFIXES[suffix]
    if size <= 0:
        raise usage.UsageError(f"must be positive: {value!r}")
    return size


class Options(usage.Options):
    """
    Command-line options for C{twistd txpulse}.
    """

    synopsis = "[options]"
    longdesc = (
        "Serve the txpulse WebSocket demos (/ws heartbeat, /echo), a static site (/) and Prometheus "
        "metrics (/metrics). Time options take seconds (0 disables where noted); sizes take bytes "
        "with an optional K/M/G suffix."
    )

    optParameters = [
        ["heartbeat", None, 1.0, "Seconds between the /ws demo's 'heartbeat N' messages.", _positiveSeconds],
        [
            "path",
            None,
            None,
            "Serve this directory at / instead of the built-in site (.rpy files run as in 'twist web --path').",
        ],
        ["ping-interval", None, 20.0, "Ping a peer silent for this many seconds (0: no keepalive).", _seconds],
        ["ping-timeout", None, 20.0, "Close (1011) a peer silent this long after a ping.", _positiveSeconds],
        ["idle-timeout", None, 0.0, "Close (1001) a peer that sent no message for this long (0: never).", _seconds],
        ["close-timeout", None, 10.0, "Seconds allowed for a closing handshake before aborting.", _positiveSeconds],
        ["handshake-timeout", None, 10.0, "Seconds an accept hook may take (then 503).", _positiveSeconds],
        [
            "max-message-size",
            None,
            DEFAULT_MAX_MESSAGE_SIZE,
            "Largest message accepted; larger closes with 1009.",
            _size,
        ],
        ["max-frame-size", None, None, "Largest frame accepted (default: the message size).", _size],
        [
            "max-write-buffer",
            None,
            DEFAULT_MAX_WRITE_BUFFER,
            "Bytes queued for a peer that stopped reading before it is dropped.",
            _size,
        ],
        [
            "shutdown-timeout",
            None,
            5.0,
            "On SIGTERM/SIGINT, seconds to wait for close handshakes (1001) before exiting.",
            _seconds,
        ],
        [
            "request-timeout",
            None,
            10.0,
            "Seconds a new connection has to send its first request (slow clients get 408; 0: no limit).",
            _seconds,
        ],
        [
            "broker",
            None,
            "memory",
            "Pub/sub broker: 'memory' (one process) or redis://[:password@]host:port/db (several processes).",
        ],
        ["auth-keys", None, None, 'JSON file of API keys: {"<key>": "<identity>", ...} (Authorization: Bearer <key>).'],
        [
            "jwk",
            None,
            None,
            "JWK set file for browser tokens (GET /@wstoken, ?ws_token=); make one with 'txpulse gen-key'.",
        ],
        ["token-lifetime", None, 60.0, "Seconds a browser token stays valid.", _positiveSeconds],
        ["max-topics", None, 100, "Topics one pub/sub connection may subscribe to.", int],
    ]
    optFlags = [
        ["no-metrics", None, "Do not mount /metrics."],
        ["deflate", None, "Accept permessage-deflate compression (costs ~30-90 KiB per active connection)."],
        ["no-deflate", None, "Decline permessage-deflate (the default)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["allowedOrigins"] = []
        self["subprotocols"] = []
        self["apps"] = []
        self["protect"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Listen on a Twisted endpoint (repeatable; default tcp:8080), e.g. ssl:8443:privateKey=key.pem:certKey=cert.pem"""
        self["listen"].append(endpoint)

    def opt_allowed_origin(self, origin: str) -> None:
        """Allow browser pages from this origin (repeatable; https://example.com or *); others get 403. Default: any"""
        self["allowedOrigins"].append(origin)

    def opt_subprotocol(self, name: str) -> None:
        """Speak this subprotocol (repeatable; the first is most preferred)"""
        self["subprotocols"].append(name)

    def opt_protect(self, path: str) -> None:
        """Require authentication (Bearer key or ?ws_token=) on this mount, e.g. /pubsub (repeatable; needs --auth-keys)"""
        self["protect"].append("/" + path.strip("/"))

    def opt_app(self, spec: str) -> None:
        """Mount your WebSocket factory at /NAME: NAME=module:factory (an object with buildProtocol(request), or a callable returning one; repeatable)"""
        name, sep, target = spec.partition("=")
        module, colon, attribute = target.partition(":")
        if not sep or not colon or not name or not module or not attribute or "/" in name:
            raise usage.UsageError(f"--app takes NAME=module:factory, not {spec!r}")
        self["apps"].append((name, module, attribute))

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]
        for description in self["listen"]:
            try:
                from twisted.internet import reactor
                from twisted.internet.endpoints import serverFromString

                serverFromString(reactor, description)
            except Exception as error:
                raise usage.UsageError(f"bad --listen {description!r}: {error}") from None
        if self["path"] is not None and not os.path.isdir(self["path"]):
            raise usage.UsageError(f"--path {self['path']!r} is not a directory")
        self["factories"] = [(name, _loadFactory(module, attribute)) for name, module, attribute in self["apps"]]
        taken = {"ws", "echo", "pubsub", "chat", "metrics", "@wstoken"}
        for name, _ in self["factories"]:
            if name in taken:
                raise usage.UsageError(f"--app {name}: /{name} is already mounted")
            taken.add(name)
        for path in self["protect"]:
            if path.lstrip("/") not in taken - {"metrics", "@wstoken"}:
                raise usage.UsageError(f"--protect {path}: not a WebSocket mount")
        if self["protect"] and self["auth-keys"] is None:
            raise usage.UsageError("--protect needs --auth-keys (and --jwk for browsers)")
        if self["jwk"] is not None and self["auth-keys"] is None:
            raise usage.UsageError("--jwk needs --auth-keys (tokens are issued against API keys)")
        try:
            self["keys"] = None if self["auth-keys"] is None else ApiKeys.fromFile(self["auth-keys"])
            self["issuer"] = (
                None if self["jwk"] is None else TokenIssuer.fromFile(self["jwk"], lifetime=self["token-lifetime"])
            )
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        if self["deflate"] and self["no-deflate"]:
            raise usage.UsageError("--deflate and --no-deflate contradict each other")
        if self["max-topics"] <= 0:
            raise usage.UsageError("--max-topics must be positive")
        broker = self["broker"]
        if broker != "memory":
            if not broker.startswith("redis://"):
                raise usage.UsageError(f"--broker must be 'memory' or a redis:// URL, not {broker!r}")
            from .broker.redis import RedisBroker

            try:
                self["redisBroker"] = RedisBroker.fromURL(broker)
            except (ValueError, ImportError) as error:
                raise usage.UsageError(f"--broker: {error}") from None


def _loadFactory(module: str, attribute: str) -> Any:
    try:
        loaded = importlib.import_module(module)
    except Exception as error:
        raise usage.UsageError(f"--app: cannot import {module!r}: {error}") from None
    try:
        factory = getattr(loaded, attribute)
    except AttributeError:
        raise usage.UsageError(f"--app: {module!r} has no {attribute!r}") from None
    if isinstance(factory, type) and hasattr(factory, "buildProtocol"):
        # A class: used as is when buildProtocol is a classmethod (the shape
        # of Twisted's WebSocketDemo example), else instantiated.
        if not isinstance(inspect.getattr_static(factory, "buildProtocol"), (classmethod, staticmethod)):
            factory = factory()
    if not hasattr(factory, "buildProtocol"):
        if not callable(factory):
            raise usage.UsageError(f"--app: {module}:{attribute} has no buildProtocol and is not callable")
        try:
            factory = factory()
        except Exception as error:
            raise usage.UsageError(f"--app: calling {module}:{attribute}() failed: {error}") from None
        if not hasattr(factory, "buildProtocol"):
            raise usage.UsageError(f"--app: {module}:{attribute}() returned an object without buildProtocol")
    return factory


def _resourceOptions(options: Options) -> dict[str, Any]:
    """
    The L{WebSocketResource} keyword arguments the options ask for.
    """
    return {
        "subprotocols": options["subprotocols"],
        "allowedOrigins": options["allowedOrigins"] or None,
        "maxMessageSize": options["max-message-size"],
        "maxFrameSize": options["max-frame-size"],
        "pingInterval": options["ping-interval"] or None,
        "pingTimeout": options["ping-timeout"],
        "idleTimeout": options["idle-timeout"] or None,
        "closeTimeout": options["close-timeout"],
        "handshakeTimeout": options["handshake-timeout"],
        "maxWriteBuffer": options["max-write-buffer"],
        "compression": bool(options["deflate"]) and not options["no-deflate"],
    }


def makeBroker(options: Options) -> Broker:
    """
    The broker C{--broker} names.
    """
    if options["broker"] == "memory":
        return MemoryBroker()
    broker: Broker = options["redisBroker"]
    return broker


def buildRoot(
    options: Options, registry: ConnectionRegistry, clock: IReactorTime | None = None, hub: Hub | None = None
) -> Resource:
    """
    Build the resource tree the plugin serves.

    @param clock: the timer source of the WebSocket mounts (default: the
        reactor).
    @param hub: the pub/sub hub of C{/pubsub} and C{/chat} (default: a new
        one on an in-process broker).
    """
    if hub is None:
        hub = Hub(MemoryBroker(), maxTopicsPerConnection=options["max-topics"])
    root: Resource
    if options["path"] is not None:
        site = File(os.path.abspath(options["path"]))
        site.processors = {".rpy": ResourceScript}
        site.indexNames = ["index.rpy", "index.html"]
        root = site
    else:
        root = File(str(files("txpulse") / "static"))
    settings = _resourceOptions(options)
    mounts: list[tuple[str, Any]] = [
        ("ws", HeartbeatFactory(options["heartbeat"], clock)),
        ("echo", EchoFactory()),
        ("pubsub", PubSubFactory(hub, maxPublishSize=options["max-message-size"])),
        ("chat", ChatFactory(hub)),
    ]
    mounts += options["factories"]
    authenticator = Authenticator(options["keys"], options["issuer"])
    for name, factory in mounts:
        path = "/" + name
        accept = authenticator if path in options["protect"] else None
        resource = WebSocketResource(
            factory, observer=registry.observerFor(path), clock=clock, accept=accept, **settings
        )
        root.putChild(name.encode("utf-8"), resource)
    if not options["no-metrics"]:
        root.putChild(b"metrics", MetricsResource(registry))
    if options["keys"] is not None and options["issuer"] is not None:
        root.putChild(b"@wstoken", TokenResource(options["keys"], options["issuer"]))
    return root


class GracefulShutdown(service.Service):
    """
    On stop, closes every open WebSocket with 1001 ("going away") and waits
    up to C{timeout} seconds for the close handshakes.
    """

    def __init__(self, registry: ConnectionRegistry, timeout: float, reactor: Any = None) -> None:
        self._registry = registry
        self._timeout = timeout
        self._reactor = reactor

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._registry.closeAll(1001, "server shutting down", self._timeout).addCallback(self._drained)

    def _drained(self, _: None) -> None:
        # twistd re-raises the signal that stopped it (so its exit status says
        # "killed by SIGTERM"); a completed graceful shutdown is a normal
        # exit, so clear it (the reactor's _ISupportsExitSignalCapturing).
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        if getattr(reactor, "_exitSignal", None) is not None:
            reactor._exitSignal = None


class _BrokerService(service.Service):
    """
    Stops the broker (e.g. its Redis connections) with the server.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def stopService(self) -> Any:
        super().stopService()
        return self._broker.stop()


def makeService(options: Options) -> service.MultiService:
    """
    One listening service per C{--listen} endpoint, all serving one site.
    """
    registry = ConnectionRegistry()
    hub = Hub(makeBroker(options), maxTopicsPerConnection=options["max-topics"])
    site = WebSocketSite(buildRoot(options, registry, hub=hub), requestTimeout=options["request-timeout"])
    top = service.MultiService()
    _BrokerService(hub.broker).setServiceParent(top)
    # Added first, so it stops last: listeners close before connections do.
    GracefulShutdown(registry, options["shutdown-timeout"]).setServiceParent(top)
    for description in options["listen"]:
        strports.service(description, site).setServiceParent(top)
    top.registry = registry  # type: ignore[attr-defined]
    return top

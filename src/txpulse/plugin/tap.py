# -*- test-case-name: tests.plugin.test_tap -*-
"""
C{twistd txpulse}: the WebSocket demos, a static site and metrics in one
resource tree.

Mounts C{/} (the static site shipped in C{txpulse/demos/static}, or C{--path}),
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
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service, strports
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.script import ResourceScript

from .._extras import MissingExtra, requireExtra
from ..core.assembly import AssemblyBudget
from ..core.handshake import SAME_ORIGIN
from ..demos.apps import EchoFactory, HeartbeatFactory
from ..demos.chat import ChatFactory
from ..pubsub.broker.memory import MemoryBroker
from ..pubsub.hub import (
    DEFAULT_HISTORY_MAX_BYTES,
    DEFAULT_HISTORY_MAX_TOPICS,
    DEFAULT_HISTORY_SIZE,
    DEFAULT_HISTORY_TTL,
    Broker,
    Hub,
)
from ..pubsub.protocol import PubSubFactory
from ..pubsub.topicrules import TopicRules
from ..server.auth import ApiKeys, Authenticator, RequireKey, TokenIssuer, TokenResource
from ..server.collector import DEFAULT_YOUNG_THRESHOLD, tuneCollector
from ..server.files import StaticFiles, builtinSite
from ..server.proxies import TrustedProxies
from ..server.ratelimit import DEFAULT_BURST, DEFAULT_PERIOD, FailureLimiter
from ..server.resource import WebSocketResource
from ..server.site import (
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_SEND_TIMEOUT,
    AllowedHosts,
    WebSocketSite,
    raiseOpenFilesLimit,
)
from ..settings import (
    ConnectionSettings,
    Side,
    addOptions,
    parseCount,
    parsePositiveSeconds,
    parseSeconds,
    parseSize,
    usageCoerce,
)
from ..wire.twistedinternals import maybeGlobalReactor
from .metrics import ConnectionRegistry, MetricsResource
from .shutdown import GracefulShutdown

__all__ = ["Options", "makeService", "buildRoot"]

_log = Logger()


def _param(name: str, default: object, help: str, parse: Callable[[str], object]) -> list[Any]:
    """
    An C{optParameters} entry whose bad values are C{UsageError}s naming the
    option (C{--heartbeat: must be positive: 0}).
    """
    return [name, None, default, help, usageCoerce(name, parse)]


def _requireExtra(extra: str) -> None:
    """
    Exit with L{MissingExtra}'s one line when C{extra} is not installed
    (C{txpulse: the Redis broker needs `pip install txpulse[redis]`}), not
    with a L{usage.UsageError}: the options are right, the installation is
    not, and twistd would print its whole usage text above the line.
    """
    try:
        requireExtra(extra)
    except MissingExtra as error:
        raise SystemExit(str(error)) from None


def _parseFailureRate(value: str) -> tuple[int, float]:
    count, slash, seconds = value.partition("/")
    try:
        parsed = (int(count), float(seconds) if slash else 0.0)
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"expected FAILURES/SECONDS (e.g. 10/60), not {value!r}")
    return parsed


def _parseThreshold(value: str) -> int:
    threshold = int(value)
    if threshold < 0:
        raise ValueError(f"must not be negative: {value}")
    return threshold


def _parseBodySize(value: str) -> int:
    return 0 if value.strip() == "0" else parseSize(value)


@addOptions(
    Side.SERVER,
    notes={
        "allowed-origin": "default: same-origin on --protect mounts, any origin elsewhere",
        "max-incomplete-size": "one budget shared by every mount",
        "deflate": "12-bit windows: 30-43 KiB more RSS per connection that sent a message",
    },
)
class Options(usage.Options):
    """
    Command-line options for C{twistd txpulse}: those of its own, and one per
    connection setting (generated from L{ConnectionSettings} by
    L{addOptions}: C{--ping-interval}, C{--max-message-size},
    C{--allowed-origin}, ...), which apply to every WebSocket mount; after
    parsing, C{options["settings"]} holds them.
    """

    synopsis = "[options]"
    longdesc = (
        "Serve the txpulse WebSocket demos (/ws heartbeat, /echo), a static site (/) and Prometheus "
        "metrics (/metrics). Time options take seconds (0 disables where noted); sizes take bytes "
        "with an optional K/M/G suffix."
    )

    optParameters = [
        _param("heartbeat", 1.0, "Seconds between the /ws demo's 'heartbeat N' messages.", parsePositiveSeconds),
        [
            "path",
            None,
            None,
            "Serve this directory at / instead of the built-in site (.rpy files run as in 'twist web --path').",
        ],
        _param(
            "shutdown-timeout",
            5.0,
            "On SIGTERM/SIGINT, seconds to wait for close handshakes (1001) before exiting.",
            parseSeconds,
        ),
        _param(
            "request-timeout",
            10.0,
            "Seconds every request (head and body) has to arrive, from its first byte (slow clients get 408; "
            "0: no limit).",
            parseSeconds,
        ),
        _param("keepalive-timeout", 15.0, "Seconds a connection may idle between requests (0: 60 s).", parseSeconds),
        _param(
            "send-timeout",
            DEFAULT_SEND_TIMEOUT,
            "Abort an HTTP response the client has taken nothing of for this many seconds (0: never).",
            parseSeconds,
        ),
        _param("max-requests-per-connection", 100, "Requests served per connection (0: no limit).", parseCount),
        _param(
            "max-connections",
            None,
            "Connections open at once; more are refused (503/reset). Default: the open-files limit (raised to "
            "the hard limit at start) less a reserve; 0: no cap.",
            parseCount,
        ),
        _param(
            "max-connections-per-address",
            256,
            "Connections open at once from one client address (0: no cap; a --trusted-proxy has none: cap "
            "per client at the proxy).",
            parseCount,
        ),
        _param(
            "max-request-body",
            None,
            "Largest request body, else 413 before it is read (0: none). Default: 0, or 1M with --path.",
            _parseBodySize,
        ),
        _param("backlog", 1024, "Listen backlog of --listen endpoints that set no backlog= of their own.", parseCount),
        [
            "broker",
            None,
            "memory",
            "Pub/sub broker: 'memory' (one process) or redis://[:password@]host:port/db (several processes).",
        ],
        [
            "auth-keys",
            None,
            None,
            'JSON file of API keys: {"<key>": "<identity>", ...} (Authorization: Bearer <key>); a regular file '
            "of at most 16 MiB, no key twice, identities of 1 to 32 characters without control characters "
            "(see 'txpulse gen-api-key').",
        ],
        [
            "jwk",
            None,
            None,
            "JWK set file for browser tokens (GET /@wstoken, ?ws_token=); make one with 'txpulse gen-key'.",
        ],
        _param("token-lifetime", 60.0, "Seconds a browser token stays valid.", parsePositiveSeconds),
        _param(
            "auth-failures",
            (DEFAULT_BURST, DEFAULT_PERIOD),
            "Failed authentications allowed per client address: FAILURES/SECONDS (a bucket of FAILURES "
            "refilled over SECONDS); beyond it, 429 with Retry-After without checking keys. Default 10/60.",
            _parseFailureRate,
        ),
        [
            "metrics-listen",
            None,
            None,
            "Serve /metrics on this endpoint only (e.g. tcp:9100:interface=127.0.0.1), not on --listen.",
        ],
        [
            "max-topics",
            None,
            100,
            "Topics one pub/sub connection may subscribe to at once, and publish to over its life "
            "(each new topic costs the broker a position and a history: Redis keys with --broker).",
            int,
        ],
        _param(
            "gc-threshold",
            DEFAULT_YOUNG_THRESHOLD,
            "Objects allocated between two passes of the garbage collector's young generation (CPython: 700); "
            "what exists at start-up is frozen. 0 keeps CPython's settings. See txpulse.server.collector.",
            _parseThreshold,
        ),
        _param(
            "history-size",
            DEFAULT_HISTORY_SIZE,
            "Publications kept per pub/sub topic for clients that resume after a reconnection (0: no history).",
            parseCount,
        ),
        _param(
            "history-ttl",
            DEFAULT_HISTORY_TTL,
            "Seconds a publication is kept for clients that resume (0: no history).",
            parseSeconds,
        ),
        _param(
            "history-max-bytes",
            DEFAULT_HISTORY_MAX_BYTES,
            "Memory all pub/sub topics' histories may hold together (e.g. 64M; 0: no bound); "
            "the oldest publications are dropped past it.",
            _parseBodySize,
        ),
        _param(
            "history-max-topics",
            DEFAULT_HISTORY_MAX_TOPICS,
            "Pub/sub topics with a history (0: no bound); the least recently published one's is dropped past it.",
            parseCount,
        ),
        [
            "topic-rules",
            None,
            None,
            "JSON file of per-topic rules for /pubsub and /chat: who may subscribe and publish where "
            "(default: anyone a mount lets in, on that mount's own topics).",
        ],
    ]
    optFlags = [
        ["no-metrics", None, "Do not mount /metrics."],
        ["no-http2", None, "Offer only HTTP/1.1 in TLS ALPN: no HTTP/2, so no WebSockets over HTTP/2 (RFC 8441)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["apps"] = []
        self["protect"] = []
        self["allowedHosts"] = []
        self["trustedProxies"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Listen on a Twisted endpoint (repeatable; default tcp:8080), e.g. ssl:8443:privateKey=key.pem:certKey=cert.pem"""
        self["listen"].append(endpoint)

    def opt_allowed_host(self, host: str) -> None:
        """Answer only requests for this Host: name or name:port (repeatable); others get 421 (no Host: 400). Default: any"""
        try:
            AllowedHosts([host])
        except ValueError as error:
            raise usage.UsageError(f"--allowed-host: {error}") from None
        self["allowedHosts"].append(host)

    def opt_trusted_proxy(self, address: str) -> None:
        """Believe X-Forwarded-For from this reverse proxy: an IP address or a CIDR network (repeatable). Client addresses in logs and auth limits are then the right-most untrusted address of the header; the proxy is exempt from --max-connections-per-address. Default: none (the header is ignored)"""
        try:
            TrustedProxies([address])
        except ValueError as error:
            raise usage.UsageError(f"--trusted-proxy: {error}") from None
        self["trustedProxies"].append(address)

    def opt_protect(self, path: str) -> None:
        """Require authentication (Bearer key or ?ws_token=) on this mount, e.g. /pubsub, or a Bearer key on /metrics (repeatable; needs --auth-keys)"""
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
                from twisted.internet.endpoints import serverFromString

                serverFromString(maybeGlobalReactor(None), description)
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
            if path.lstrip("/") not in taken - {"@wstoken"}:
                raise usage.UsageError(f"--protect {path}: not a WebSocket mount or /metrics")
        if self["metrics-listen"] is not None:
            if self["no-metrics"]:
                raise usage.UsageError("--metrics-listen and --no-metrics contradict each other")
            _requireExtra("metrics")
            try:
                from twisted.internet.endpoints import serverFromString

                serverFromString(maybeGlobalReactor(None), self["metrics-listen"])
            except Exception as error:
                raise usage.UsageError(f"bad --metrics-listen {self['metrics-listen']!r}: {error}") from None
        if self["protect"] and self["auth-keys"] is None:
            raise usage.UsageError("--protect needs --auth-keys (and --jwk for browsers)")
        if self["jwk"] is not None and self["auth-keys"] is None:
            raise usage.UsageError("--jwk needs --auth-keys (tokens are issued against API keys)")
        if self["jwk"] is not None:
            _requireExtra("auth")
        if "/metrics" in self["protect"] and not self["no-metrics"]:
            _requireExtra("metrics")
        try:
            self["keys"] = None if self["auth-keys"] is None else ApiKeys.fromFile(self["auth-keys"])
            self["issuer"] = (
                None if self["jwk"] is None else TokenIssuer.fromFile(self["jwk"], lifetime=self["token-lifetime"])
            )
        except ValueError as error:
            # The options are right, the file is not: one line (naming the
            # file and the bad entry), exit 1, no usage text above it.
            raise SystemExit(f"txpulse: {error}") from None
        try:
            self["topicRules"] = None if self["topic-rules"] is None else TopicRules.fromFile(self["topic-rules"])
            if self["topicRules"] is not None:
                self["topicRules"].check(["/pubsub", "/chat"])
        except ValueError as error:
            raise usage.UsageError(f"--topic-rules: {error}") from None
        if self["max-topics"] <= 0:
            raise usage.UsageError("--max-topics must be positive")
        broker = self["broker"]
        if broker != "memory":
            if not broker.startswith("redis://"):
                raise usage.UsageError(f"--broker must be 'memory' or a redis:// URL, not {broker!r}")
            _requireExtra("redis")
            from ..pubsub.broker.redis import RedisBroker

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


def siteOptions(options: Options) -> dict[str, Any]:
    """
    The L{WebSocketSite} keyword arguments the options ask for. The built-in
    tree takes no request bodies (C{--max-request-body} 0); with C{--path}
    (whose C{.rpy} scripts may take them) the default is 1 MiB.
    """
    body = options["max-request-body"]
    if body is None:
        body = 0 if options["path"] is None else DEFAULT_MAX_REQUEST_BODY
    return {
        "requestTimeout": options["request-timeout"],
        "keepAliveTimeout": options["keepalive-timeout"],
        "sendTimeout": options["send-timeout"],
        "maxRequestsPerConnection": options["max-requests-per-connection"],
        "maxConnections": options["max-connections"],
        "maxConnectionsPerAddress": options["max-connections-per-address"],
        "maxRequestBody": body,
        "allowedHosts": options["allowedHosts"] or None,
        "trustedProxies": options["trustedProxies"] or None,
    }


def withBacklog(description: str, backlog: int) -> str:
    """
    C{description} with C{backlog=} added, when it is a tcp, tcp6, ssl or
    unix endpoint that sets none (Twisted's default, 50, drops connections
    arriving in bursts: each one dropped costs its client a 1 s SYN retry).
    """
    kind = description.split(":", 1)[0].strip().lower()
    if not backlog or kind not in ("tcp", "tcp6", "ssl", "unix") or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


def makeBroker(options: Options) -> Broker:
    """
    The broker C{--broker} names.
    """
    if options["broker"] == "memory":
        return MemoryBroker()
    broker: Broker = options["redisBroker"]
    return broker


def _authorizerFor(options: Options, mount: str) -> Any:
    """
    The per-topic authorization of a hub mount: its C{--topic-rules}, if
    any (else anyone the mount lets in may use its topics).
    """
    rules = options.get("topicRules")
    return None if rules is None else rules.authorizerFor(mount)


def buildRoot(
    options: Options,
    registry: ConnectionRegistry,
    clock: IReactorTime | None = None,
    hub: Hub | None = None,
    limiter: FailureLimiter | None = None,
) -> Resource:
    """
    Build the resource tree the plugin serves.

    @param clock: the timer source of the WebSocket mounts (default: the
        reactor).
    @param hub: the pub/sub hub of C{/pubsub} and C{/chat} (default: a new
        one on an in-process broker).
    @param limiter: limits failed authentications per client address
        (default: L{makeLimiter} on C{clock}).
    """
    if hub is None:
        hub = Hub(
            MemoryBroker(),
            maxTopicsPerConnection=options["max-topics"],
            historySize=options["history-size"],
            historyTtl=options["history-ttl"],
            historyMaxBytes=options["history-max-bytes"],
            historyMaxTopics=options["history-max-topics"],
        )
    root: Resource
    if options["path"] is not None:
        # No listings, nothing outside the directory, .rpy scripts run.
        root = StaticFiles(
            os.path.abspath(options["path"]),
            processors={".rpy": ResourceScript},
            indexNames=["index.rpy", "index.html"],
        )
    else:
        root = builtinSite()
    settings: ConnectionSettings = options["settings"]
    # One budget for the incomplete messages of every mount.
    budget = None if settings.maxIncompleteSize is None else AssemblyBudget(settings.maxIncompleteSize)
    mounts: list[tuple[str, Any]] = [
        ("ws", HeartbeatFactory(options["heartbeat"], clock)),
        ("echo", EchoFactory()),
        # Each mount's topics in a namespace of its own (the root for /pubsub,
        # so that server code's hub.publish reaches it), with its own rules.
        # (No message size limit, no publish size limit.)
        (
            "pubsub",
            PubSubFactory(
                hub, maxPublishSize=settings.maxMessageSize or sys.maxsize, authorize=_authorizerFor(options, "/pubsub")
            ),
        ),
        ("chat", ChatFactory(hub, namespace="chat", authorize=_authorizerFor(options, "/chat"))),
    ]
    mounts += options["factories"]
    if limiter is None:
        limiter = makeLimiter(options, clock)
    authenticator = Authenticator(options["keys"], options["issuer"], limiter)
    for name, factory in mounts:
        path = "/" + name
        accept = authenticator if path in options["protect"] else None
        mountSettings = settings
        if accept is not None and settings.allowedOrigins is None:
            # A protected mount is same-origin unless --allowed-origin says
            # otherwise (cross-site WebSocket hijacking, should the accept
            # hook ever trust cookies); non-browser clients send no Origin.
            mountSettings = settings.override(allowedOrigins=[SAME_ORIGIN])
        resource = WebSocketResource(
            factory,
            settings=mountSettings,
            maxIncompleteSize=budget,
            observer=registry.observerFor(path),
            clock=clock,
            accept=accept,
        )
        root.putChild(name.encode("utf-8"), resource)
    if not options["no-metrics"] and options["metrics-listen"] is None and registry.metrics is not None:
        root.putChild(b"metrics", metricsResource(options, registry, limiter))
    if options["keys"] is not None and options["issuer"] is not None:
        root.putChild(b"@wstoken", TokenResource(options["keys"], options["issuer"], limiter))
    return root


def makeLimiter(options: Options, clock: IReactorTime | None = None) -> FailureLimiter:
    """
    The failure limiter C{--auth-failures} asks for; one per server, shared
    by every way in (the protected mounts, C{/@wstoken}, C{/metrics}).
    """
    burst, period = options["auth-failures"]
    return FailureLimiter(burst, period, clock=clock)


def metricsResource(options: Options, registry: ConnectionRegistry, limiter: FailureLimiter) -> Resource:
    """
    C{/metrics}: behind the API keys with C{--protect /metrics}, else open
    to anyone who can reach its listener.
    """
    resource: Resource = MetricsResource(registry)
    if "/metrics" in options["protect"]:
        resource = RequireKey(resource, options["keys"], limiter)
    return resource


def buildMetricsRoot(options: Options, registry: ConnectionRegistry, limiter: FailureLimiter) -> Resource:
    """
    The tree of the C{--metrics-listen} listener: C{/metrics} only.
    """
    root = Resource()
    root.putChild(b"metrics", metricsResource(options, registry, limiter))
    return root


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
    hub = Hub(
        makeBroker(options),
        maxTopicsPerConnection=options["max-topics"],
        historySize=options["history-size"],
        historyTtl=options["history-ttl"],
        historyMaxBytes=options["history-max-bytes"],
        historyMaxTopics=options["history-max-topics"],
    )
    limiter = makeLimiter(options)
    # Before the site reads the limit for its default connection cap.
    raiseOpenFilesLimit()
    # On ssl listeners, h2 in ALPN, with WebSockets over it (RFC 8441).
    site = WebSocketSite(
        buildRoot(options, registry, hub=hub, limiter=limiter), **siteOptions(options), http2=not options["no-http2"]
    )
    top = service.MultiService()
    if registry.metrics is None and not options["no-metrics"]:
        # Everything else runs without the metrics extra.
        _log.warn("{missing} (/metrics is not mounted)", missing=str(MissingExtra("metrics")))
    _BrokerService(hub.broker).setServiceParent(top)
    # Added first, so it stops last: listeners close before connections do.
    GracefulShutdown(registry, options["shutdown-timeout"], sites=[site]).setServiceParent(top)
    for description in options["listen"]:
        strports.service(withBacklog(description, options["backlog"]), site).setServiceParent(top)
    if options["metrics-listen"] is not None:
        # The same defences as the main site; /metrics takes no bodies.
        metricsSite = WebSocketSite(
            buildMetricsRoot(options, registry, limiter), **{**siteOptions(options), "maxRequestBody": 0}
        )
        strports.service(options["metrics-listen"], metricsSite).setServiceParent(top)
    elif options["protect"] and not options["no-metrics"] and "/metrics" not in options["protect"]:
        _log.warn(
            "/metrics is public on every --listen endpoint: use --protect /metrics or --metrics-listen "
            "to restrict it (or --no-metrics)"
        )
    if options["gc-threshold"]:
        _CollectorService(options["gc-threshold"]).setServiceParent(top)
    top.registry = registry  # type: ignore[attr-defined]
    return top


class _CollectorService(service.Service):
    """
    Tunes the garbage collector (L{tuneCollector}) when the server starts:
    what exists then (the resource tree, the hub, the listeners) is frozen.
    Building the service (as tests do) changes nothing.
    """

    def __init__(self, young: int) -> None:
        self.young = young

    def startService(self) -> None:
        super().startService()
        tuneCollector(self.young)

# -*- test-case-name: tests.plugin.test_metrics_labels,tests.plugin.test_tap -*-
"""
L{ConnectionRegistry}: knows every open WebSocket of a server, per mount
path. It logs one line per connection open and close (never one per
message), exports Prometheus metrics, and closes everything with 1001 for a
graceful shutdown.

Message and byte counts are kept as plain integers on each connection (see
L{WebSocketWire}) and only summed when metrics are scraped, so counting costs
the hot path an integer increment, not a metrics-library call.

Label values are bounded, so a client cannot grow the output: the close
code a peer sends becomes its number only for the codes RFC 6455 and the
IANA registry define (1000-1015), and one of three labels otherwise
(C{"3xxx"}, C{"4xxx"}, C{"other"}); see L{closeCodeLabel}. Paths are the
server's mounts, statuses the server's own answers.

Who may read C{/metrics} is the deployment's choice (see the README): the
plugin serves it on the main listener by default, behind the API keys with
C{--protect /metrics}, or on a separate listener with C{--metrics-listen}.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from .._extras import MissingExtra, hasExtra
from ..logs.peers import peerOf
from ..wire.protocol import WebSocketWire
from ..wire.twistedinternals import maybeGlobalReactor

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["ConnectionRegistry", "MetricsResource", "closeCodeLabel"]

_log = Logger()

#: Close codes defined by RFC 6455 §7.4.1 and the IANA registry (1012-1015),
#: the only ones labelled by their number.
_KNOWN_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015))


def closeCodeLabel(code: int) -> str:
    """
    The C{code} label of a close code: its number for a registered code,
    else C{"3xxx"} (libraries and frameworks, RFC 6455 §7.4.2), C{"4xxx"}
    (private use) or C{"other"}; at most 18 values, whatever peers send.
    """
    if code in _KNOWN_CLOSE_CODES:
        return str(code)
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    return "other"


class _PathStats:
    """
    What one mount path has seen.
    """

    def __init__(self) -> None:
        self.open: set[WebSocketWire] = set()
        self.closedMessagesIn = 0
        self.closedMessagesOut = 0
        self.closedBytesIn = 0
        self.closedBytesOut = 0
        self.closes: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()
        # Opened over HTTP/2 (RFC 8441 extended CONNECT streams).
        self.http2Opened = 0


class _PathObserver:
    """
    The L{ConnectionObserver} of one mount path.
    """

    def __init__(self, registry: ConnectionRegistry, path: str) -> None:
        self._registry = registry
        self.path = path

    def connectionOpened(self, wire: WebSocketWire) -> None:
        self._registry._opened(self.path, wire)

    def connectionClosed(self, wire: WebSocketWire) -> None:
        self._registry._closed(self.path, wire)

    def pingRoundTrip(self, wire: WebSocketWire, seconds: float) -> None:
        if self._registry._rtt is not None:
            self._registry._rtt.labels(path=self.path).observe(seconds)

    def handshakeRefused(self, statusCode: int) -> None:
        self._registry._stats(self.path).refusals[statusCode] += 1


class ConnectionRegistry:
    """
    Tracks the open connections of every mount that uses one of its
    observers (C{WebSocketResource(..., observer=registry.observerFor("/ws"))}).

    @ivar metrics: the Prometheus C{CollectorRegistry} holding this
        registry's metrics (serve it with L{MetricsResource}), or C{None}
        without C{prometheus_client} (the C{metrics} extra): connections are
        tracked, logged and closed on shutdown all the same.
    """

    def __init__(self, clock: IReactorTime | None = None, logConnections: bool = True) -> None:
        """
        @param clock: for connection durations and the shutdown timeout
            (default: the reactor).
        @param logConnections: log one line per connection open and close.
        """
        self._clockOrNone = clock
        self._logConnections = logConnections
        self._paths: dict[str, _PathStats] = {}
        self._drained: list[Deferred[None]] = []
        self.metrics: CollectorRegistry | None = None
        self._rtt: Any = None
        if hasExtra("metrics"):
            from prometheus_client import CollectorRegistry, Histogram

            self.metrics = CollectorRegistry(auto_describe=True)
            self._rtt = Histogram(
                "txpulse_ping_round_trip_seconds",
                "Round-trip time of keepalive pings.",
                ["path"],
                registry=self.metrics,
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            )
            # A collector by its collect() and describe() methods.
            self.metrics.register(self)

    @property
    def _clock(self) -> IReactorTime:
        self._clockOrNone = maybeGlobalReactor(self._clockOrNone)
        return self._clockOrNone

    def observerFor(self, path: str) -> _PathObserver:
        """
        The observer to give the resource mounted at C{path}.
        """
        self._stats(path)
        return _PathObserver(self, path)

    def _stats(self, path: str) -> _PathStats:
        stats = self._paths.get(path)
        if stats is None:
            stats = self._paths[path] = _PathStats()
        return stats

    def openConnections(self, path: str | None = None) -> list[WebSocketWire]:
        """
        The open connections (of one path, or all).
        """
        if path is not None:
            return list(self._stats(path).open)
        return [wire for stats in self._paths.values() for wire in stats.open]

    def _opened(self, path: str, wire: WebSocketWire) -> None:
        stats = self._stats(path)
        stats.open.add(wire)
        # The transport says (txpulse.server.http2.WebSocketH2Stream).
        http2 = getattr(getattr(wire, "transport", None), "isHTTP2", False) is True
        if http2:
            stats.http2Opened += 1
        if self._logConnections:
            _log.info(
                "WebSocket open: {peer} {path}{over}", peer=peerOf(wire), path=path, over=" (HTTP/2)" if http2 else ""
            )

    def _closed(self, path: str, wire: WebSocketWire) -> None:
        stats = self._stats(path)
        stats.open.discard(wire)
        stats.closedMessagesIn += wire.messagesIn
        stats.closedMessagesOut += wire.messagesOut
        stats.closedBytesIn += wire.bytesIn
        stats.closedBytesOut += wire.bytesOut
        code = wire.closeCode if wire.closeCode is not None else 1006
        stats.closes[closeCodeLabel(code)] += 1
        if self._logConnections:
            _log.info(
                "WebSocket closed: {peer} {path} code={code} duration={duration:.1f}s "
                "messages in={messagesIn} out={messagesOut}",
                peer=peerOf(wire),
                path=path,
                code=code,
                duration=self._clock.seconds() - wire.openedAt,
                messagesIn=wire.messagesIn,
                messagesOut=wire.messagesOut,
            )
        if self._drained and not self.openConnections():
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)

    def closeAll(self, code: int = 1001, reason: str = "server shutting down", timeout: float = 5.0) -> Deferred[None]:
        """
        Start the closing handshake on every open connection; fire when all
        are gone, aborting the stragglers after C{timeout} seconds.
        """
        wires = self.openConnections()
        if not wires:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._drained.append(done)
        for wire in wires:
            wire.loseConnection(code, reason)

        def abortStragglers() -> None:
            remaining = self.openConnections()
            if remaining:
                _log.warn("Aborting {count} WebSocket(s) that did not close in time", count=len(remaining))
            for wire in remaining:
                wire.abortConnection()

        timer = self._clock.callLater(timeout, abortStragglers)

        def cancelTimer(result: None) -> None:
            if timer.active():
                timer.cancel()
            return result

        return done.addBoth(cancelTimer)

    def collect(self) -> Iterator[Metric]:
        """
        Prometheus collector: sums the live connections' counters with those
        of the closed ones, per path.
        """
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        opened = GaugeMetricFamily("txpulse_open_connections", "Open WebSocket connections.", labels=["path"])
        counters = {
            name: CounterMetricFamily(f"txpulse_{name}", text, labels=["path"])
            for name, text in (
                ("messages_received", "WebSocket messages received."),
                ("messages_sent", "WebSocket messages sent."),
                ("bytes_received", "Bytes received on WebSocket connections."),
                ("bytes_sent", "Bytes sent on WebSocket connections."),
            )
        }
        closes = CounterMetricFamily(
            "txpulse_closes", "Closed WebSocket connections, by close code.", labels=["path", "code"]
        )
        refusals = CounterMetricFamily(
            "txpulse_handshake_refusals", "Refused WebSocket handshakes, by HTTP status.", labels=["path", "status"]
        )
        http2 = CounterMetricFamily(
            "txpulse_http2_websockets",
            "WebSockets opened over HTTP/2 (RFC 8441 extended CONNECT streams).",
            labels=["path"],
        )
        for path, stats in sorted(self._paths.items()):
            wires = list(stats.open)
            opened.add_metric([path], len(wires))
            counters["messages_received"].add_metric([path], stats.closedMessagesIn + sum(w.messagesIn for w in wires))
            counters["messages_sent"].add_metric([path], stats.closedMessagesOut + sum(w.messagesOut for w in wires))
            counters["bytes_received"].add_metric([path], stats.closedBytesIn + sum(w.bytesIn for w in wires))
            counters["bytes_sent"].add_metric([path], stats.closedBytesOut + sum(w.bytesOut for w in wires))
            for label, count in sorted(stats.closes.items()):
                closes.add_metric([path, label], count)
            for status, count in sorted(stats.refusals.items()):
                refusals.add_metric([path, str(status)], count)
            http2.add_metric([path], stats.http2Opened)
        yield opened
        yield from counters.values()
        yield closes
        yield refusals
        yield http2

    def describe(self) -> list[Metric]:
        return []


class MetricsResource(Resource):
    """
    Serves a L{ConnectionRegistry}'s metrics in the Prometheus text format
    (synchronously: no thread pool, unlike C{prometheus_client.twisted}).
    """

    isLeaf = True

    def __init__(self, registry: ConnectionRegistry) -> None:
        """
        @raise MissingExtra: without C{prometheus_client} (C{pip install
            txpulse[metrics]}).
        """
        if registry.metrics is None:
            raise MissingExtra("metrics")
        super().__init__()
        self._metrics = registry.metrics

    def render_GET(self, request: Request) -> bytes:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        request.setHeader("Content-Type", CONTENT_TYPE_LATEST)
        return generate_latest(self._metrics)

# -*- test-case-name: tests.server.test_site -*-
"""
L{WebSocketSite}: a C{twisted.web} L{Site} made for WebSocket servers.

Its HTTP connections are L{WebSocketChannel}s (L{txpulse.server.channel}),
which add to Twisted's C{HTTPChannel} the defences a server facing the open
Internet needs (request deadlines, bounded keep-alive, request bodies and
C{Host} checked at the head, a send deadline), and a built-in hand-over to
the WebSocket wire after an upgrade: the channel's module tells the life of
one connection and what bounds each phase of it.

The site holds the settings those defences read (their defaults are in
L{txpulse.server.limits}), and does what spans connections: it counts the
open connections against C{maxConnections} and C{maxConnectionsPerAddress}
(a refused one gets C{503} and a close, or a reset under TLS; refusals are
logged once, then summed up every L{REFUSAL_LOG_INTERVAL} seconds), keeps a
request body in memory up to 64 KiB and spools a larger one to a temporary
file (so a request head costs no file descriptor), and logs requests
without credentials (L{txpulse.server.accesslog}).

Behind a reverse proxy, C{trustedProxies} names the proxies whose
C{X-Forwarded-For} is believed: a request's C{getClientAddress()} is then the
forwarded client (L{txpulse.server.proxies}), and the proxies are exempt from
the per-address connection cap.

The site offers only C{http/1.1} in TLS ALPN unless built with
C{http2=True}: then C{h2} too, and a TLS client that picks it is served by
Twisted's HTTP/2 with WebSockets over it (RFC 8441,
L{txpulse.server.http2}). HTTP/2 requests other than WebSockets skip the
channel's defences (deadlines, bounded keep-alive, body limits: Twisted's
HTTP/2 has its own idle timeout and flow control); the connection caps,
C{allowedHosts} and C{trustedProxies} apply to them too.

L{txpulse.WebSocketResource} works on a plain L{Site} too, without these
defences.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import IO, Any

from twisted.logger import Logger
from twisted.web.http import H2_ENABLED
from twisted.web.server import Site

from ..logs.peers import TrustedProxies, formatPeer
from ..logs.summary import OTHERS, SummaryLog
from .accesslog import redactingLogFormatter
from .admission import channelFactory
from .channel import WebSocketChannel
from .deadlines import DeadlineQueue
from .hosts import AllowedHosts
from .limits import (
    _BODY_IN_MEMORY,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_MAX_REQUESTS_PER_CONNECTION,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SEND_TIMEOUT,
    REFUSAL_LOG_INTERVAL,
    defaultMaxConnections,
    raiseOpenFilesLimit,
)

# WebSocketSite is this module's own; the other names are re-exported from
# the modules the site was split into (channel, limits, accesslog), so
# every import of them from here keeps working.
__all__ = [
    "WebSocketSite",
    "WebSocketChannel",
    "AllowedHosts",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_MAX_REQUESTS_PER_CONNECTION",
    "DEFAULT_MAX_CONNECTIONS_PER_ADDRESS",
    "DEFAULT_MAX_REQUEST_BODY",
    "REFUSAL_LOG_INTERVAL",
    "defaultMaxConnections",
    "raiseOpenFilesLimit",
]

_log = Logger()


#: The refusal log's key for the total cap (the per-address cap's are the
#: client addresses).
_TOTAL_CAP = "(total)"


class WebSocketSite(Site):
    """
    A L{Site} that bounds what one client can take: request deadlines,
    bounded keep-alive, connection caps, request bodies refused before they
    are read, an optional C{Host} allow-list; and whose upgraded connections
    cost less memory (see the module docstring).

    @ivar openConnections: connections open now (upgraded ones included).
    """

    protocol = channelFactory

    def __init__(
        self,
        resource: Any,
        requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        *,
        keepAliveTimeout: float | None = DEFAULT_KEEPALIVE_TIMEOUT,
        sendTimeout: float | None = DEFAULT_SEND_TIMEOUT,
        maxRequestsPerConnection: int | None = DEFAULT_MAX_REQUESTS_PER_CONNECTION,
        maxConnections: int | None = None,
        maxConnectionsPerAddress: int | None = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
        maxRequestBody: int | None = DEFAULT_MAX_REQUEST_BODY,
        allowedHosts: Iterable[str] | None = None,
        trustedProxies: Iterable[str] | None = None,
        http2: bool = False,
        **kwargs: Any,
    ) -> None:
        """
        @param resource: the root resource.
        @param requestTimeout: seconds a request has to arrive complete
            (head and body), from its first byte (from the accept, for the
            first one); then C{408} and a close. C{None} or 0: no deadline.
        @param keepAliveTimeout: seconds a connection may idle between two
            requests before it is closed (without an answer). C{None} or 0:
            only L{Site}'s C{timeOut} (60 s of silence) applies. (With both
            this and C{requestTimeout} set, C{timeOut} is not used: they
            bound every phase it would.)
        @param sendTimeout: seconds a response being written may go without
            the peer taking any of it (a reader that stopped reading); then
            the connection is aborted, with a log line. C{None} or 0: no
            deadline (a peer that never reads holds the connection for as
            long as the response lasts).
        @param maxRequestsPerConnection: requests served on one connection;
            the last response carries C{Connection: close}. C{None} or 0: no
            limit.
        @param maxConnections: connections open at once (upgraded WebSockets
            included); more are refused at once (C{503} and a close, or a
            reset under TLS). C{None} (the default): L{defaultMaxConnections},
            the open-files limit less a reserve, read here (raise the limit
            first, e.g. with L{raiseOpenFilesLimit}); 0: no cap.
        @param maxConnectionsPerAddress: connections open at once from one
            client address (an IPv4 address, or the C{/64} of an IPv6
            one), refused as above. Behind a reverse proxy or a load
            balancer every client has the proxy's address: list the proxy
            in C{trustedProxies} (which exempts it), or set 0 (no cap).
        @param maxRequestBody: the largest request body accepted, in bytes:
            a larger C{Content-Length} is answered C{413} (and the connection
            closed) before any of the body is read; a chunked body is cut
            (C{413}, close) once it goes over. 0: no bodies at all (a
            chunked one is refused at its head too); C{None}: no limit.
            Bodies are kept in memory up to 64 KiB, and spooled to a
            temporary file beyond.
        @param allowedHosts: the C{Host} values served (a defence against
            DNS rebinding): C{"name"} (any port) or C{"name:port"}, e.g.
            C{["example.com", "localhost:8080", "[::1]:8080"]}. Any other
            C{Host} is answered C{421} (a missing or repeated one C{400})
            and the connection closed, on every path. C{None}: any host.
        @param trustedProxies: the reverse proxies (IP addresses, or
            networks in CIDR notation: C{["127.0.0.1", "10.0.0.0/8"]}) whose
            C{X-Forwarded-For} is believed: for a request from one of them,
            C{request.getClientAddress()} (hence the access log, the log
            lines, the authentication rate limit and accept hooks) is the
            right-most address of that header that is not a trusted proxy
            (L{txpulse.server.proxies.clientAddress}); from anyone else the
            header is ignored. Their connections are exempt from
            C{maxConnectionsPerAddress} (they still count against
            C{maxConnections}): cap connections per client at the proxy.
            C{None} or empty: no proxy is trusted.
        @param http2: offer C{h2} in TLS ALPN (with the C{h2} package), and
            WebSockets over HTTP/2 (RFC 8441) to the clients that pick it:
            every L{txpulse.WebSocketResource} of the tree answers both.
            Plain TCP listeners are not concerned (no ALPN).
        @param kwargs: any other keyword argument of L{Site} (C{reactor},
            C{timeout}, C{logPath}, ...).
        @raise ValueError: if an C{allowedHosts} entry is not a host, or a
            C{trustedProxies} entry not an address or a network.
        """
        # Access-log lines without credentials (?ws_token= values).
        kwargs.setdefault("logFormatter", redactingLogFormatter)
        super().__init__(resource, **kwargs)
        self.requestTimeout = requestTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.sendTimeout = sendTimeout
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.maxConnections = defaultMaxConnections() if maxConnections is None else maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.maxRequestBody = maxRequestBody
        self.allowedHosts = None if allowedHosts is None else list(allowedHosts)
        self._allowedHosts = None if self.allowedHosts is None else AllowedHosts(self.allowedHosts)
        self.trustedProxies = TrustedProxies(trustedProxies or ())
        self.openConnections = 0
        self.http2 = http2
        # The HTTP/2 connections open now (for goAway).
        self._http2Connections: set[Any] = set()
        self._perAddress: dict[str, int] = {}
        # The channels' request and keep-alive deadlines, by length.
        self._deadlineQueues: dict[float, DeadlineQueue] = {}
        # Refused connections: logged once per cap (the total's) or client
        # address (the per-address cap's), then summed up.
        self._refusals = SummaryLog(self._summarizeRefusals, REFUSAL_LOG_INTERVAL)

    # -- connection caps --

    def _admit(self, address: str | None, transport: Any) -> bool:
        """
        Count a new connection from C{address} (a L{clientKey}), or refuse
        it (C{False}) when it would go over a cap; C{transport} is the
        connection's (its peer is logged with a refusal).
        """
        total, perAddress = self.maxConnections, self.maxConnectionsPerAddress
        if total and self.openConnections >= total:
            self._noteRefusal("total", address, transport)
            return False
        if address is not None:
            count = self._perAddress.get(address, 0)
            if perAddress and count >= perAddress:
                self._noteRefusal("address", address, transport)
                return False
            self._perAddress[address] = count + 1
        self.openConnections += 1
        return True

    def _deadlines(self, delay: float) -> DeadlineQueue:
        """
        The queue of the channels' deadlines of C{delay} seconds (one timer
        for all of them: see L{txpulse.server.deadlines}).
        """
        queue = self._deadlineQueues.get(delay)
        if queue is None:
            queue = self._deadlineQueues[delay] = DeadlineQueue(self.reactor, delay)
        return queue

    def _release(self, address: str | None) -> None:
        self.openConnections -= 1
        if address is not None:
            count = self._perAddress.get(address, 0) - 1
            if count > 0:
                self._perAddress[address] = count
            else:
                self._perAddress.pop(address, None)

    def _noteRefusal(self, cap: str, address: str | None, transport: Any) -> None:
        refusals = self._refusals
        refusals.clock = self.reactor
        source = address if address is not None else "(no address)"
        if not refusals.note(_TOTAL_CAP if cap == "total" else source, source):
            return
        peer = transport.getPeer()
        # The first refusal in a while: said at once, in full.
        if cap == "total":
            _log.warn(
                "Refused a connection from {peer}: {open} connections open, the cap (maxConnections, "
                "--max-connections); further refusals are summed up every {interval:g}s",
                peer=formatPeer(peer),
                open=self.openConnections,
                interval=REFUSAL_LOG_INTERVAL,
            )
        else:
            _log.warn(
                "Refused a connection from {peer}: {open} connections open from {address}, the per-address "
                "cap (maxConnectionsPerAddress, --max-connections-per-address; behind a reverse proxy every "
                "client has the proxy's address: trust it with --trusted-proxy, or set 0); further refusals are "
                "summed up every "
                "{interval:g}s",
                peer=formatPeer(peer),
                open=self._perAddress.get(source, 0),
                address=address,
                interval=REFUSAL_LOG_INTERVAL,
            )

    def _summarizeRefusals(self, key: str, counts: Mapping[str, int], seconds: float) -> None:
        top = ", ".join(f"{source} ({count})" for source, count in sorted(counts.items(), key=lambda i: -i[1])[:3])
        if key == _TOTAL_CAP:
            _log.warn(
                "Refused {refused} more connections in the last {seconds:.0f}s, over the total cap of {cap}; "
                "most from {top}",
                refused=sum(counts.values()),
                seconds=seconds,
                cap=self.maxConnections,
                top=top,
            )
        else:
            _log.warn(
                "Refused {refused} more connections from {address} in the last {seconds:.0f}s, over the "
                "per-address cap of {perAddress}{top}",
                refused=sum(counts.values()),
                address=key,
                seconds=seconds,
                perAddress=self.maxConnectionsPerAddress,
                top=f"; most from {top}" if key == OTHERS else "",
            )

    def getContentFile(self, length: int | None) -> IO[bytes]:
        """
        The buffer of a request body of C{length} bytes (C{None}: chunked),
        called by Twisted's request at the head: in memory up to 64 KiB,
        spooled to a temporary file only once the body grows past that.
        (Twisted's default opens a temporary file at the head for every
        chunked body and every C{Content-Length} from 100,000: a file
        descriptor per request head, before any of the body arrived.)
        """
        limit = self.maxRequestBody
        if (length is not None and length <= _BODY_IN_MEMORY) or (limit is not None and limit <= _BODY_IN_MEMORY):
            return BytesIO()
        return tempfile.SpooledTemporaryFile(max_size=_BODY_IN_MEMORY)

    #: Whether HTTP/2 connections advertise and accept WebSockets (RFC 8441
    #: C{SETTINGS_ENABLE_CONNECT_PROTOCOL}); with C{http2} only. False
    #: serves HTTP/2 without them (browsers then open WebSockets over
    #: HTTP/1.1 connections of their own).
    http2WebSockets = True

    def acceptableProtocols(self) -> list[bytes]:
        """
        The protocols offered in TLS ALPN: C{h2} first when the site was
        built with C{http2=True} and the C{h2} package is installed, and
        C{http/1.1}. (L{Site} offers C{h2} whenever C{h2} is installed.)
        """
        if self.http2 and H2_ENABLED:
            return [b"h2", b"http/1.1"]
        return [b"http/1.1"]

    def goAway(self) -> None:
        """
        Send GOAWAY on every HTTP/2 connection (graceful shutdown: after
        the WebSockets were closed): the clients open no new stream, and
        the connections close once what is queued has been written.
        """
        for connection in list(self._http2Connections):
            connection.goAway()

    def stopFactory(self) -> None:
        self._refusals.stop()
        super().stopFactory()

# -*- test-case-name: tests.server.test_site,tests.hardening.test_hostile_http -*-
"""
L{WebSocketChannel}: the HTTP connection of a
L{txpulse.server.site.WebSocketSite}.

It adds to Twisted's C{HTTPChannel} the defences a server facing the open
Internet needs, and a built-in hand-over to the WebSocket wire after an
upgrade (see L{txpulse.server.resource.takeOver}), with no per-connection
monkey-patching: that keeps an upgraded connection about 1.6 KiB smaller.
The channel is wrapped in a half-closeable protocol that admits the
connection against the site's caps before the channel sees it
(L{txpulse.server.admission}); a response's send deadline is measured by
L{txpulse.server.sendwatch}.

Theory of operation: the life of one HTTP connection, and what bounds it.

  1. Accepted. Over C{maxConnections} open connections in total, or over
     C{maxConnectionsPerAddress} from the client's address (a trusted
     proxy, C{trustedProxies}, has no such cap), it is refused at
     once: plain TCP gets a C{503} and a close, TLS a reset (no handshake is
     spent on it); refusals are logged once, then summed up every
     L{REFUSAL_LOG_INTERVAL<txpulse.server.limits.REFUSAL_LOG_INTERVAL>}
     seconds while they last, so a flood does not flood the log. A
     client's address is its IPv4 address, or the C{/64} of an IPv6 one
     (L{txpulse.logs.peers.clientKey}, as for the authentication rate
     limit): a host holding a whole IPv6 C{/64} cannot go round the
     per-address cap by using another of its addresses. (The caps are
     counted by the site, L{txpulse.server.site.WebSocketSite}.)
  2. Waiting for a request head. Every request, not only the first, must
     arrive complete (head and body) within C{requestTimeout} seconds of its
     first byte (of the connection, for the first request); otherwise
     C{408}, a log line and a close. The stock L{Site}'s idle timer
     (C{timeOut}, 60 s) is no defence here: every byte received resets it,
     so a client dribbling one header byte every few seconds would hold a
     connection for days. Between two requests a connection may idle
     C{keepAliveTimeout} seconds, then it is closed (no answer: RFC 9112
     §9.8 allows closing an idle connection at any time). With both
     deadlines set, the stock idle timer is not armed at all (they cover
     every phase it would). These deadlines share one reactor timer per
     length (L{txpulse.server.deadlines}): a flood of handshakes costs no
     timer per connection.
     A head that arrives whole in one read and is an ordinary C{GET} (every
     WebSocket upgrade a browser sends) is parsed in one pass
     (L{txpulse.core.httphead}) rather than line by line; it then goes
     through the very calls C{HTTPChannel}'s parser makes at the end of a
     head, so everything below applies to it alike. Anything else (a
     partial head, a body, a pipelined request, anything unusual) is
     C{HTTPChannel}'s to parse, and to refuse.
  3. Head received. The request's client address is decided
     (L{txpulse.server.proxies.clientAddress}: the forwarded client when
     the peer is a trusted proxy) and stored as the request's C{client}.
     Before any body byte is read: a C{Host} that is not in
     C{allowedHosts} gets C{421} (a missing or repeated one C{400}); a body
     announced larger than C{maxRequestBody} (C{Content-Length}) gets
     C{413}, and so does any chunked body when C{maxRequestBody} is 0; both
     with a log line and a close. A chunked body is counted as it arrives
     and cut (C{413}, close) at the limit. A body is kept in memory up to
     64 KiB and spooled to a temporary file only beyond, so a request head
     costs no file descriptor. Oversized request lines and too many or too
     large headers are refused by Twisted's parser with C{400}.
  4. Handled and answered. While the response is being written, it must
     make progress: if the peer takes none of it for C{sendTimeout} seconds
     (a slow reader that stopped reading a large file), the connection is
     aborted, with a log line. (Checked only for a response still
     unfinished when the resource returns: most are done within the call.) The C{maxRequestsPerConnection}th response
     carries C{Connection: close}, and so does any response whose resource
     set that header (L{txpulse.WebSocketResource} does on every refused
     upgrade): the connection closes once it is sent. Otherwise back to 2.
     Pipelined requests are answered in order, as the peer takes the
     responses: a response's producer is paused while the transport's
     buffer is full, once however often the transport asks, and resumed
     when it drains (see L{WebSocketChannel.pauseProducing}).
     Every close (this one, an idle keep-alive connection's, a refusal's)
     is a graceful one that becomes an abort after C{abortTimeout} seconds
     (Twisted's 15) if the peer does not take the bytes still queued for
     it, so unsent bytes cannot hold a connection open.
  5. Upgraded (C{101}): every byte goes to the WebSocket wire, which has its
     own timers; none of the above applies any more, except that the
     connection still counts against the caps of 1 until it closes.

The settings named here are the site's (L{txpulse.server.site.WebSocketSite};
their defaults are in L{txpulse.server.limits}).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

from ..core.httphead import parseRequestHead
from ..logs.peers import peerOf
from ..logs.redact import clip
from ..wire.twistedinternals import (
    armChannelAbort,
    atRequestStart,
    beginRequest,
    bodyDecoder,
    handlingRequest,
    pauseChannelReading,
    requestProducer,
    requestTarget,
    waitingForTransport,
)
from .deadlines import Deadline
from .hosts import AllowedHosts
from .limits import _TIMEOUT_RESPONSE, _response, _tooLarge
from .proxies import clientAddress
from .sendwatch import SEND_CHECKS, SendWatch

__all__ = ["WebSocketChannel"]

_log = Logger()


# A channel's phase (the low two bits of its _state; the rest counts its
# requests). Invariant: at most one deadline is armed, the one the phase
# calls for (when its setting is not 0).
#: Awaiting or reading a request (deadline: C{requestTimeout}), or handling
#: one (deadline: a L{SendWatch}, C{sendTimeout} without progress).
_REQUEST = 0
#: Between two requests (deadline: C{keepAliveTimeout}); the next byte
#: starts a request.
_IDLE = 1
#: A request was refused (or timed out) and the connection is closing:
#: whatever the peer still sends is dropped.
_REFUSED = 2
_PHASE = 3
#: One request, in _state.
_ONE_REQUEST = 4


class WebSocketChannel(HTTPChannel):
    """
    An C{HTTPChannel} with request deadlines, bounded keep-alive, request
    body and C{Host} checks made at the request head, that can hand its
    connection over to a WebSocket wire (see the module docstring).
    """

    site: Any  # set by the Site that builds the channel

    def __init__(self) -> None:
        super().__init__()
        # Set here, so every channel shares one key layout (no per-instance
        # dictionary growth when they change). Count before adding one: with
        # what HTTPChannel sets over a request, a channel has 29 attributes,
        # the most a key-sharing __dict__ takes here (CPython 3.11); one
        # more and every channel's __dict__ is a plain one, 1.3 KiB larger
        # (hence phase and request count in one integer).
        self._deadline: Deadline | SendWatch | None = None
        self._wire: Any = None
        # The phase (_REQUEST, _IDLE, _REFUSED) + _ONE_REQUEST per request.
        self._state = _REQUEST

    def _enter(self, phase: int) -> None:
        self._state = (self._state & ~_PHASE) | phase

    # -- deadlines --

    def connectionMade(self) -> None:
        if self._setting("requestTimeout") and self._setting("keepAliveTimeout"):
            # Then Site's idle timer (timeOut) has nothing left to bound: the
            # request deadline covers a request arriving, the keep-alive one
            # the wait between requests (and Twisted stops its timer while a
            # request is handled). Not armed: one timer less per connection,
            # and none reset on every read.
            self.timeOut = None
        super().connectionMade()
        self._armRequestDeadline()

    def _setting(self, name: str) -> Any:
        return getattr(getattr(self, "site", None), name, None)

    def _armRequestDeadline(self) -> None:
        self._cancelDeadline()
        self._enter(_REQUEST)
        timeout = self._setting("requestTimeout")
        if timeout:
            self._deadline = self.site._deadlines(timeout).arm(self._requestTooSlow)

    def _armIdleDeadline(self) -> None:
        self._cancelDeadline()
        self._enter(_IDLE)
        timeout = self._setting("keepAliveTimeout")
        if timeout:
            self._deadline = self.site._deadlines(timeout).arm(self._idleTooLong)

    def _armSendDeadline(self) -> SendWatch | None:
        """
        Replace the request deadline with the response's (a L{SendWatch}
        counting what is written from now on; its first check is scheduled
        by L{_scheduleSendChecks}).
        """
        self._cancelDeadline()
        if not self._setting("sendTimeout"):
            return None
        watch = self._deadline = SendWatch()
        return watch

    def _scheduleSendChecks(self, watch: SendWatch) -> None:
        """
        The resource returned and C{watch} is still the deadline: the
        response is still being written (or not yet begun), so check its
        progress from now on.
        """
        if self._deadline is watch and watch.call is None and self.transport is not None:
            watch.call = self.callLater(self.site.sendTimeout / SEND_CHECKS, self._checkSending)

    def _checkSending(self) -> None:
        """
        Abort the connection if the peer took none of the response for
        C{sendTimeout} seconds (L{SendWatch.observe}). The transport
        resuming its producer (it sent all it held) is progress too (see
        L{resumeProducing}).
        """
        watch = self._deadline
        transport: Any = self.transport
        if not isinstance(watch, SendWatch) or transport is None:
            return
        queued = watch.observe(transport, waitingForTransport(self))
        timeout = self.site.sendTimeout
        if not watch.expired:
            watch.call = self.callLater(timeout / SEND_CHECKS, self._checkSending)
            return
        self._deadline = None
        self._enter(_REFUSED)
        _log.info(
            "Aborting {peer}: it took none of its response for {seconds:g}s ({queued} bytes waiting)",
            peer=peerOf(transport),
            seconds=timeout,
            queued="?" if queued is None else queued,
        )
        transport.abortConnection()

    # -- flow control of responses --
    #
    # A TCP transport calls pauseProducing on every write made while its
    # buffer is full (FileDescriptor._maybePauseProducer), but
    # resumeProducing once, when the buffer drains; HTTPChannel passes each
    # pause on to the response's producer, and a pull producer's adapter
    # (_PullToPush: twisted.web.static.File's, a CooperativeTask) counts
    # them. A response whose head and first body bytes went into a full
    # buffer (pipelined requests behind a large backlog) was paused twice
    # and resumed once: stuck for good, with nothing queued (so no
    # sendTimeout) and Site's idle timer off while a request is handled.
    # Hence one pause per full buffer, and a producer registered while the
    # buffer is full starts paused, so that the one resume balances it.

    def pauseProducing(self) -> None:
        if waitingForTransport(self):
            # Paused already: only stop reading, as HTTPChannel does, when
            # no request is being handled (stopReading is idempotent).
            if not handlingRequest(self):
                pauseChannelReading(self)
            return
        super().pauseProducing()

    def resumeProducing(self) -> None:
        if not waitingForTransport(self):
            # Not paused (the transport resumes only after a pause): a
            # paused-count producer must not be resumed more often than
            # paused (a CooperativeTask raises NotPaused).
            return
        # The transport sent all it held: progress, whatever the checks saw.
        watch = self._deadline
        if watch.__class__ is SendWatch:
            watch.quiet = 0
        super().resumeProducing()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        super().registerProducer(producer, streaming)
        registered = requestProducer(self)
        if registered is not None and waitingForTransport(self):
            # Registered while the transport's buffer is full (a pipelined
            # request answered before the previous answer was sent).
            registered.pauseProducing()

    def write(self, data: bytes) -> None:
        watch = self._deadline
        if watch.__class__ is SendWatch:
            watch.written += len(data)
        super().write(data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        watch = self._deadline
        if watch.__class__ is SendWatch:
            iovec = list(iovec)
            watch.written += sum(map(len, iovec))
        super().writeSequence(iovec)

    def _requestTooSlow(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None:
            return
        _log.info(
            "Closing {peer}: no complete request within {seconds}s (408)",
            peer=peerOf(transport),
            seconds=self.site.requestTimeout,
        )
        self._closeWith(_TIMEOUT_RESPONSE)

    def _closeWith(self, response: bytes) -> None:
        """
        Write C{response} and close; what the peer sends meanwhile is
        dropped. A peer that does not let the connection close is aborted
        after C{abortTimeout} seconds (Twisted's 15).
        """
        self._enter(_REFUSED)
        self._cancelDeadline()
        self.setTimeout(None)
        if self.transport is None:
            return
        self.transport.write(response)
        self.loseConnection()
        self._armAbort()

    def _armAbort(self) -> None:
        """
        After a close: abort the connection in C{abortTimeout} seconds
        (Twisted's 15) should it still be open, i.e. should the peer not
        take the bytes still queued for it.
        """
        armChannelAbort(self)

    def _idleTooLong(self) -> None:
        self._deadline = None
        if self.transport is not None:
            _log.debug("Closing idle keep-alive connection {peer}", peer=peerOf(self.transport))
            self.loseConnection()
            self._armAbort()

    def _cancelDeadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    # -- the request head --

    def allHeadersReceived(self) -> None:
        # Decided here, before a byte of the body is read (and before
        # Twisted answers "Expect: 100-continue").
        request = self.requests[-1]
        # Decided once, here: getClientAddress() is the forwarded client
        # behind a trusted proxy, for every reader of the request.
        request.client = clientAddress(request.client, request.requestHeaders, self._setting("trustedProxies"))
        if not self._checkHost(request):
            return
        limit = self._setting("maxRequestBody")
        chunked = self.length is None and bodyDecoder(self) is not None
        if limit is not None:
            if self.length is not None and self.length > limit:
                self._refuseRequest(
                    413,
                    "Content Too Large",
                    _tooLarge(limit),
                    "a {length}-byte request body, over the limit of {limit} (413)",
                    length=self.length,
                    limit=limit,
                )
                return
            if chunked and not limit:
                self._refuseRequest(
                    413, "Content Too Large", _tooLarge(limit), "a chunked request body, and none is taken (413)"
                )
                return
            if chunked:
                # Chunked (RFC 9112 §7.1): counted as it arrives.
                decoder: Any = bodyDecoder(self)
                decoder.dataCallback = _CountingBody(self, request.handleContentChunk, limit)
        # (The body's buffer comes from WebSocketSite.getContentFile.)
        super().allHeadersReceived()

    def _checkHost(self, request: Any) -> bool:
        allowed: AllowedHosts | None = self._setting("_allowedHosts")
        if allowed is None:
            return True
        values = request.requestHeaders.getRawHeaders(b"host") or []
        if len(values) != 1:
            # RFC 9112 §3.2: a request without Host, or with more than one,
            # is answered 400.
            self._refuseRequest(
                400,
                "Bad Request",
                "one Host header is required",
                "{count} Host headers (400)",
                count=len(values),
            )
            return False
        host = values[0]
        target = requestTarget(self)
        if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
            # Absolute form (RFC 9112 §3.2.2): its authority is the host.
            host = target.split(b"//", 1)[1].split(b"/", 1)[0].split(b"?", 1)[0]
        if allowed.matches(host, self.isSecure()):
            return True
        self._refuseRequest(
            421,
            "Misdirected Request",
            "this server does not serve that host",
            "Host {host!r} is not an allowed host (421)",
            host=clip(host.decode("latin-1")),
        )
        return False

    def _refuseRequest(self, status: int, phrase: str, message: str, logFormat: str, **fields: Any) -> None:
        """
        Answer the request whose head just arrived with C{status}, without
        reading its body, log why, and close the connection.
        """
        transport = self.transport
        if transport is not None:
            # The request's client (the forwarded one behind a trusted proxy).
            peer = peerOf(self.requests[-1] if self.requests else transport)
            _log.info("Refused a request from {peer}: " + logFormat, peer=peer, **fields)
        self._closeWith(_response(status, phrase, message))

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        """
        Twisted's rule (HTTP/1.1 without C{Connection: close}), and at most
        C{maxRequestsPerConnection} requests per connection: the last one's
        response carries C{Connection: close}.
        """
        persistent: bool = super().checkPersistence(request, version)
        self._state += _ONE_REQUEST
        limit = self._setting("maxRequestsPerConnection")
        if persistent and limit and self._state // _ONE_REQUEST >= limit:
            request.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            return False
        return persistent

    def allContentReceived(self) -> None:
        if self._state & _PHASE == _REFUSED:
            return
        # Counting before the resource runs (it may write at once); checked
        # only if it returns with the response unfinished: most responses
        # (and every upgrade) are done within the call, with no timer.
        watch = self._armSendDeadline()
        super().allContentReceived()
        if watch is not None:
            self._scheduleSendChecks(watch)

    def requestDone(self, request: Any) -> None:
        # A response saying "Connection: close" (RFC 9112 §9.6) ends the
        # connection, whoever set the header.
        for value in request.responseHeaders.getRawHeaders(b"Connection") or []:
            if b"close" in value.lower():
                self.persistent = False
        if self.persistent and self.transport is not None and self._wire is None:
            # Armed before Twisted replays pipelined bytes (which re-arms
            # the request deadline through dataReceived).
            self._armIdleDeadline()
        else:
            self._cancelDeadline()
        super().requestDone(request)
        if not self.persistent:
            # Twisted's close waits for the peer to take what is queued.
            self._armAbort()

    # -- bytes in --

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver's default drops the connection without an answer.
        self._respondToBadRequestAndDisconnect()

    # Overrides HTTPChannel's private 400 path (to log it): listed in
    # txpulse.wire.twistedinternals, checked by tests/wire/test_twistedinternals.py.
    def _respondToBadRequestAndDisconnect(self) -> None:
        transport = self.transport
        if transport is not None:
            _log.info(
                "Bad request from {peer}: malformed, or over the request line / header limits (400)",
                peer=peerOf(transport),
            )
        super()._respondToBadRequestAndDisconnect()

    def readConnectionLost(self) -> None:
        """
        The peer half-closed: finish writing what is queued, then close.
        """
        if self._wire is not None:
            self._wire.readConnectionLost()
        elif self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def upgradeTo(self, wire: Any) -> None:
        """
        From now on every byte of this connection goes to C{wire}, and so
        does the end of the connection; the wire's own timers and
        write-buffer limit replace the response's deadline.
        """
        self._cancelDeadline()
        self._wire = wire

    def dataReceived(self, data: bytes) -> None:
        if self._wire is not None:
            self._wire.dataReceived(data)
        elif self._state & _PHASE == _REFUSED:
            return
        else:
            if self._state & _PHASE == _IDLE:
                # The first byte of the next request starts its deadline.
                self._armRequestDeadline()
            if not self._receiveWholeHead(data):
                super().dataReceived(data)

    def _receiveWholeHead(self, data: bytes) -> bool:
        """
        The fast path: when C{data} is exactly one ordinary C{GET} head
        (L{parseRequestHead}: every WebSocket upgrade a browser sends) and
        the parser is between requests, parse it in one pass and go on as
        C{HTTPChannel}'s line parser would at the blank line (the same
        request object, headers and calls, so every check above applies).
        C{False} for anything else: C{HTTPChannel} parses it, and decides.
        """
        transport = self.transport
        if transport is None or getattr(transport, "disconnecting", False):
            # Closing (an idle keep-alive connection, say; TLS still delivers
            # what arrives until the peer's close_notify): LineReceiver's
            # rule, no request is started on it.
            return False
        if not self.persistent or not atRequestStart(self):
            return False
        head = parseRequestHead(data, min(self.MAX_LENGTH, self.totalHeadersSize), self.maxHeaders)
        if head is None:
            return False
        self.resetTimeout()  # as HTTPChannel.dataReceived (Site's idle timer, when armed)
        request = beginRequest(self, head.method, head.target, head.version)
        addField = request.requestHeaders.addRawHeader
        for name, value in head.fields:
            addField(name, value)
        self.allHeadersReceived()
        # No body (parseRequestHead takes none): the request is complete
        # (unless allHeadersReceived refused it; then this does nothing).
        self.allContentReceived()
        return True

    def lineReceived(self, line: bytes) -> None:
        if self._state & _PHASE == _IDLE:
            # A pipelined request, parsed from bytes read with the previous
            # one: its deadline starts now.
            self._armRequestDeadline()
        super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        # After an upgrade inside a read, LineReceiver hands the rest of that
        # read to rawDataReceived: it belongs to the WebSocket.
        if self._wire is not None:
            self._wire.dataReceived(data)
        elif self._state & _PHASE != _REFUSED:
            super().rawDataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelDeadline()
        wire = self._wire
        if wire is not None:
            # Let go of the wire (whose request points back here): freed by
            # reference counting, not by the cyclic collector.
            self._wire = None
            wire.connectionLost(reason)
        super().connectionLost(reason)


class _CountingBody:
    """
    The data callback of a chunked request body: passes chunks on until
    they add up to more than the limit, then refuses the request (413).
    """

    __slots__ = ("_channel", "_deliver", "_left")

    def __init__(self, channel: WebSocketChannel, deliver: Any, limit: int) -> None:
        self._channel = channel
        self._deliver = deliver
        self._left = limit

    def __call__(self, data: bytes) -> None:
        channel = self._channel
        if channel._state & _PHASE == _REFUSED:
            return
        self._left -= len(data)
        if self._left < 0:
            limit = channel._setting("maxRequestBody")
            channel._refuseRequest(
                413,
                "Content Too Large",
                _tooLarge(limit),
                "a chunked request body over the limit of {limit} (413)",
                limit=limit,
            )
            return
        self._deliver(data)

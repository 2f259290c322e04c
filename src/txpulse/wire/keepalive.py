# -*- test-case-name: tests.wire.test_protocol,tests.wire.test_tcp -*-
"""
L{Keepalive}: the wire's one timer, for every deadline of a connection:
the keepalive ping (C{pingInterval}), the wait for any frame after it
(C{pingTimeout}), the idle timeout (C{idleTimeout}) and, once closing, the
close timeout (C{closeTimeout}).

Apart from the rest of the wire because it is the only part that runs on
the clock rather than on bytes: it is armed once per deadline, not per
message. Receiving data only records a timestamp
(L{txpulse.wire.protocol.WebSocketWire.dataReceived}); the timer reads it
when it fires, so a busy connection costs no timer work per message, and
ten thousand idle ones cost one C{DelayedCall} each, not a churn of them.
"""

from __future__ import annotations

from twisted.logger import Logger

from ..core.connection import State
from ..core.frames import CloseCode
from ..logs.peers import peerOf as _peerOf
from .state import WireState

__all__ = ["Keepalive"]

_log = Logger(namespace="txpulse.wire.protocol")


class Keepalive(WireState):
    """
    The timers of a L{txpulse.wire.protocol.WebSocketWire}: keepalive pings,
    the pong, idle and close timeouts, on one C{DelayedCall}.
    """

    __slots__ = ()

    def _timerDelay(self, now: float) -> float | None:
        """
        Seconds until the nearest deadline: the close timeout while closing,
        else the next ping, pong or idle deadline; C{None} for none.
        """
        options = self._options
        if self._closing:
            return options.closeTimeout
        deadlines = []
        if options.pingInterval is not None:
            if self._pingSentAt is not None:
                deadlines.append(self._pingSentAt + options.pingTimeout)
            else:
                deadlines.append(self._lastReceived + options.pingInterval)
        if options.idleTimeout is not None:
            deadlines.append(self._lastMessage + options.idleTimeout)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _scheduleTimer(self, now: float) -> None:
        """
        Arm the one timer this connection has, for the nearest deadline.
        Receiving data only records a timestamp; the timer reads it when it
        fires, so a busy connection costs no timer work per message.
        """
        delay = self._timerDelay(now)
        if delay is not None:
            self._timer = self._clock.callLater(delay, self._timerFired)

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _pongReceived(self) -> None:
        """
        A pong: if it answers our keepalive ping, record the round trip.
        """
        sentAt = self._pingSentAt
        if sentAt is not None:
            self._pingSentAt = None
            now = self._clock.seconds()
            self.pingRoundTrip = rtt = now - sentAt
            timer = self._timer
            if timer is not None and not self._closing:
                # Move the pong deadline to the next ping, so the timer fires
                # once per heartbeat rather than twice (at the pong deadline
                # only to find the next ping a few milliseconds away).
                delay = self._timerDelay(now)
                if delay is not None:
                    timer.reset(delay)
            observer = self._options.observer
            if observer is not None:
                observer.pingRoundTrip(self, rtt)  # type: ignore[arg-type]  # self is the WebSocketWire

    def _timerFired(self) -> None:
        self._timer = None
        if not self._connected:
            return
        if self._closing:
            _log.info(
                "WebSocket peer {peer} did not finish closing within {timeout}s; aborting",
                peer=_peerOf(self),
                timeout=self._options.closeTimeout,
            )
            self.abortConnection()
            return
        now = self._clock.seconds()
        options = self._options
        if self._pending is not None and not self._writePaused:
            # Reading is paused while the application digests a message: the
            # peer's pongs cannot arrive, and the peer is not idle either.
            self._lastReceived = self._lastMessage = now
            self._pingSentAt = None
        elif self._writePaused:
            # The peer does not keep up with what we send: our ping waits
            # behind the queue, so its pong comes late (and while reading is
            # held, cannot arrive). A peer that reads at all (bytes left our
            # buffer for the kernel since the last look) is alive: a slow
            # reader of a large message is not dropped. While reading is
            # held it is, as far as we can know, not idle either. One that
            # reads nothing is pinged and times out as usual (its close
            # frame cannot reach it either: the close timeout then aborts
            # it). The same holds while the application holds reading
            # (e.g. the hub until a replay is written, which waits for this
            # peer to read): a peer that reads nothing is not kept alive by
            # the wait it causes.
            drained = self._drained()
            if drained is not None and drained > self._drainMark:
                self._drainMark = drained
                self._lastReceived = now
                self._pingSentAt = None
                if self._readHolds:
                    self._lastMessage = now
        if options.idleTimeout is not None and now - self._lastMessage >= options.idleTimeout:
            _log.info(
                "WebSocket peer {peer} idle for {timeout}s; closing",
                peer=_peerOf(self),
                timeout=options.idleTimeout,
            )
            self.loseConnection(CloseCode.GOING_AWAY, "idle timeout")
            return
        if options.pingInterval is not None:
            if self._pingSentAt is not None and self._lastReceived > self._pingSentAt:
                # Any frame after the ping proves the peer alive (a late pong
                # from a peer busy streaming data is no reason to drop it).
                self._pingSentAt = None
            if self._pingSentAt is not None:
                if now - self._pingSentAt >= options.pingTimeout:
                    _log.info(
                        "WebSocket peer {peer} silent {timeout}s after a ping; closing with 1011",
                        peer=_peerOf(self),
                        timeout=options.pingTimeout,
                    )
                    self._conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    self._linger = False  # the peer is presumed gone: do not wait on it
                    self._flush()
                    return
            elif now - self._lastReceived >= options.pingInterval and self._conn.state is State.OPEN:
                self._pingSentAt = now
                self._conn.send_ping(b"")
                self._flush()
        self._scheduleTimer(now)

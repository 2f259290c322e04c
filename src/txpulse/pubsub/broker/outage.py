# -*- test-case-name: tests.redis.test_redis_positions,tests.redis.test_redis_broker -*-
"""
What the Redis broker (L{txpulse.pubsub.broker.redis.RedisBroker}) does
when Redis goes away and comes back: its connections' lifecycle, and the
publications that wait for Redis, are settled, or are delivered here only
(L{Outage}, a part of the broker).

When Redis goes away
====================

Nothing crashes, and nothing Redis might have is lost or doubled:

  - A publication made while the publishing connection is down waits for
    Redis (C{outageBuffer}, 2 s by default, at most C{maxBuffered}), and
    is published, in order and with its position, once Redis is back: a
    Redis restart loses nothing. Past C{outageBuffer} of outage, what
    waits and what comes next is delivered to this process's subscribers
    only, without a position, counted (L{txpulse.pubsub.broker.redis.RedisBroker.localOnly}) and
    logged: local delivery keeps working.
  - A publication whose script was in flight when the connection dropped
    waits too: every script also records the publication's number in this
    process's origin key (C{<prefix>origin:<origin>}), and Redis runs a
    connection's commands in order, so once the connection is back one
    C{GET} says which ones Redis ran (every process gets those from pub/sub
    or the streams) and which it did not (published again, before anything
    newer). Past C{outageBuffer}: delivered here at once, without a
    position, counted (L{txpulse.pubsub.broker.redis.RedisBroker.unconfirmed}), and its L{Deferred}
    fails; it is I{not} published again once Redis is back. If Redis ran
    it all the same (it was frozen, e.g. C{SIGSTOP}, and ran what it had
    received once it woke up), every other process gets it with its
    position, and this one does not deliver that copy (matched by
    channel and envelope text): this process's subscribers get each of its
    publications exactly once, in publishing order, the ones of the outage
    without a position. (Likewise, a copy that arrives while the
    publication is still waiting for the connection means Redis ran it: it
    is delivered with its position and not again at the give-up.)
  - Subscriptions made meanwhile are answered C{"recovered": false}
    without a position.

One warning is logged when Redis is lost (or cannot be reached at
start-up), with the reason; both connections then retry with exponential
backoff (from 0.5 s up to 10 s, plus up to 1 s of jitter). A publishing
connection is ready once Redis has loaded its data (C{LOADING} after a
restart with an append-only file) and the scripts. Once both are back,
every wanted channel is subscribed again and healed from its stream, and
one line logs how long Redis was gone and how many messages reached only
this process meanwhile. A connection that stops answering (a silent
network failure, a stopped server) is noticed by a C{PING} every
C{pingInterval} seconds that must be answered within C{pingTimeout}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..history import Position
from .links import Link
from .relay import Relay
from .scripts import _PUBLISH, _READ
from .streams import Track

__all__ = ["Outage", "LOADING_RETRY"]

# The broker's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.broker.redis")

#: Seconds between two attempts to load the scripts while Redis is still
#: loading its data.
LOADING_RETRY = 0.1


class Outage(Relay):
    """
    The part of L{txpulse.pubsub.broker.redis.RedisBroker} that rides out
    Redis outages; not used on its own.
    """

    outageBuffer: float
    maxBuffered: int
    localOnly: int
    unconfirmed: int
    _reactor: Any
    _buffered: list[tuple[str, str, Deferred[Position]]]
    _giveUp: Any
    _gaveUp: bool
    _givenUp: list[tuple[int, str, str]]
    _originKey: bytes
    _stopping: bool
    _downSince: float | None
    _lossLogged: bool
    _everConnected: bool
    _unsent: int
    _unsentInFlight: int
    _publishErrorLogged: bool

    if TYPE_CHECKING:

        @property
        def connected(self) -> bool: ...

        def _publishOn(self, protocol: Any, channel: str, payload: str) -> Deferred[Position]: ...

    def _prepare(self, link: Link, protocol: Any) -> Deferred[Any]:
        """
        What a connection needs before it is ready: the publishing one,
        both scripts loaded (so that C{EVALSHA} finds them, and publications
        keep their order).
        """
        if link is not self._publisher:
            return succeed(None)
        loaded: Deferred[Any] = Deferred()

        def load() -> None:
            if not protocol.connected:
                return  # lost: the next connection prepares again
            try:
                loads = [protocol.execute_command("SCRIPT", "LOAD", script.source) for script in (_PUBLISH, _READ)]
            except Exception:
                return
            gatherResults(loads, consumeErrors=True).addCallbacks(done, refused)

        def done(_: object) -> None:
            self._evalOnly = False
            self._settleUnanswered(protocol).chainDeferred(loaded)

        def refused(failure: Failure) -> None:
            error = failure.value.subFailure.value if isinstance(failure.value, FirstError) else failure.value
            if not isinstance(error, self._responseError):
                return  # lost meanwhile
            if str(error).startswith(("LOADING", "BUSY", "MASTERDOWN")):
                # Redis is loading its data (after a restart with an
                # append-only file): not ready before it is done, or
                # publications would be refused, or find no script.
                self._reactor.callLater(LOADING_RETRY, load)
                return
            # Refused for good (an ACL without SCRIPT): EVAL does without.
            self._evalOnly = True
            self._settleUnanswered(protocol).chainDeferred(loaded)

        load()
        return loaded

    def _linkReady(self, link: Link) -> None:
        protocol = link.protocol
        if link is self._subscriber:
            # Resubscribe: Redis forgot the channels along with the old
            # connection. Each confirmation heals its channel.
            for channel in sorted(self._tracks):
                self._subscribeOn(protocol, self._tracks[channel])
        else:
            self._publishErrorLogged = False
            self._publishBuffered(protocol)
            # Heals that waited for a connection to read on.
            for track in list(self._tracks.values()):
                if track.needsHeal:
                    self._pump(track)
        if not self.connected or self._downSince is None:
            return
        gone = self._reactor.seconds() - self._downSince
        if self._lossLogged:
            _log.info(
                "Redis at {address} is back after {gone:.1f} s; resubscribed to {count} channel(s); "
                "{unsent} message(s) published meanwhile reached this process only{inFlight}",
                address=self.address,
                gone=gone,
                unsent=self._unsent,
                count=len(self._tracks),
                inFlight=(
                    f" ({self._unsentInFlight} of them sent when it was lost: those Redis ran reach the others "
                    "from its streams)"
                    if self._unsentInFlight
                    else ""
                ),
            )
        else:
            _log.info("Connected to Redis at {address}", address=self.address)
        self._everConnected = True
        self._downSince = None
        self._lossLogged = False
        self._unsent = 0
        self._unsentInFlight = 0

    def _linkLost(self, link: Link, why: str) -> None:
        if link is self._subscriber:
            for track in self._tracks.values():
                track.confirmed = False
                # Answers waiting for pub/sub to catch up go now: should the
                # heal bring some of their publications again, clients drop
                # them by offset.
                track.wake(everyone=True)
        if self._stopping:
            return
        if self._downSince is None:
            self._downSince = self._reactor.seconds()
        self._reportLoss(why)

    def _attemptFailed(self, why: str) -> None:
        if not self._stopping:
            self._reportLoss(why)

    def _reportLoss(self, why: str) -> None:
        if self._lossLogged:
            return
        self._lossLogged = True
        _log.warn(
            "{what} Redis at {address} ({why}); delivering to this process's subscribers only, without "
            "positions, reconnecting",
            what="Lost" if self._everConnected else "Cannot reach",
            address=self.address,
            why=why,
        )

    def _publishFailed(
        self, failure: Failure, channel: str, payload: str, track: Track | None, sequence: int
    ) -> Failure | Deferred[Position]:
        """
        A publication's script failed. The connection was lost with it in
        flight: whether Redis ran it is unknown until the connection is
        back (the origin key says), so it waits: then it
        is published again if Redis did not run it, or left to the streams
        if it did; past C{outageBuffer}, delivered here only. Refused by
        Redis (e.g. out of memory): delivered here only, counted, the
        first refusal per connection logged.
        """
        if track is not None:
            track.holds -= 1
            if self._tracks.get(channel) is track:
                self._pump(track)
        if failure.check(self._connectionError) and not self._stopping:
            answer: Deferred[Position] = Deferred()
            self._unanswered.append((sequence, channel, payload, answer))
            self._scheduleGiveUp()
            return answer
        self._unsent += 1
        self.unconfirmed += 1
        self._deliverUnpositioned(channel, payload)
        if not failure.check(self._connectionError) and not self._publishErrorLogged:
            self._publishErrorLogged = True
            _log.warn(
                "Redis at {address} refused a publication: {error}; delivered to this process only "
                "(further errors on this connection are not logged)",
                address=self.address,
                error=failure.getErrorMessage(),
            )
        return failure

    def _scheduleGiveUp(self) -> None:
        if self._giveUp is None and not self._gaveUp:
            since = self._downSince if self._downSince is not None else self._reactor.seconds()
            delay = max(0.0, since + self.outageBuffer - self._reactor.seconds())
            self._giveUp = self._reactor.callLater(delay, self._deliverBuffered)

    def _settleUnanswered(self, protocol: Any) -> Deferred[None]:
        """
        The publishing connection is back (not yet ready): ask Redis which
        of the publications lost in flight it ran (the origin key holds the
        number of the last one; a connection's commands run in order), and
        publish the others again, in order, before anything newer.
        """
        if not self._unanswered and not self._givenUp:
            return succeed(None)
        asking: Deferred[Any] = protocol.execute_command(b"GET", self._originKey)

        def settle(last: Any) -> None:
            ran = int(last) if last is not None else 0
            givenUp, self._givenUp = self._givenUp, []
            for sequence, channel, payload in givenUp:
                if sequence > ran:
                    # Redis never ran it: no copy will come, and it is not
                    # published again (it was delivered here, and its
                    # Deferred failed: not accepted).
                    self._forget(channel, payload)
                # Else Redis ran it: its copy comes (pub/sub or the stream)
                # and is delivered to the other processes only.
            unanswered, self._unanswered = self._unanswered, []
            self._ranInFlight = set()
            for sequence, channel, payload, answer in unanswered:
                if sequence <= ran:
                    # Redis ran it: every process (this one too) gets it,
                    # with its position, from pub/sub or the stream.
                    answer.errback(Failure(self._connectionError("published, but the reply was lost")))
                else:
                    self._publishOn(protocol, channel, payload).chainDeferred(answer)

        return asking.addCallback(settle)

    def _deliverBuffered(self) -> None:
        """
        Redis stayed away for C{outageBuffer} seconds: deliver what waited
        for it to this process's subscribers only, without positions (and
        so the next ones, until it is back), and count them.
        """
        self._giveUp = None
        self._gaveUp = True
        unanswered, self._unanswered = self._unanswered, []
        ranInFlight, self._ranInFlight = self._ranInFlight, set()
        for sequence, channel, payload, answer in unanswered:
            # Whether Redis ran it is unknown: delivered here now, and if
            # Redis did run it, its positioned copy is delivered to the
            # other processes only (exactly once here too). The origin key
            # says which, once Redis is back (_settleUnanswered).
            if sequence in ranInFlight:
                answer.errback(Failure(self._connectionError("published, but the reply was lost")))
                continue
            self._unsent += 1
            self._unsentInFlight += 1
            self.unconfirmed += 1
            self._deliverUnpositioned(channel, payload)
            if channel in self._tracks and len(self._givenUp) < self.maxBuffered:
                self._givenUp.append((sequence, channel, payload))
                self._deliveredHere.setdefault(channel, []).append(payload)
            answer.errback(Failure(self._connectionError(f"Redis at {self.address} is unreachable")))
        buffered, self._buffered = self._buffered, []
        if buffered:
            _log.warn(
                "Redis at {address} still unreachable after {seconds:g} s: {count} publication(s) that waited for "
                "it delivered to this process's subscribers only, and the next ones at once",
                address=self.address,
                seconds=self.outageBuffer,
                count=len(buffered),
            )
        failure = Failure(self._connectionError(f"Redis at {self.address} is unreachable: delivered locally only"))
        for channel, payload, waiting in buffered:
            self._unsent += 1
            self.localOnly += 1
            self._deliverUnpositioned(channel, payload)
            waiting.errback(failure)

    def _publishBuffered(self, protocol: Any) -> None:
        """
        The publishing connection is ready: publish what waited for it, in
        order, before anything newer.
        """
        if self._giveUp is not None and self._giveUp.active():
            self._giveUp.cancel()
        self._giveUp = None
        self._gaveUp = False
        buffered, self._buffered = self._buffered, []
        for channel, payload, waiting in buffered:
            self._publishOn(protocol, channel, payload).chainDeferred(waiting)

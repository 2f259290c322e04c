# -*- test-case-name: tests.redis.test_redis_positions,tests.redis.test_redis_broker -*-
"""
What the Redis broker (L{txpulse.pubsub.broker.redis.RedisBroker})
receives from Redis, and how it reaches the hub: subscribing to the wanted
channels, checking each message, delivering in offset order, and healing
gaps from the streams (L{Relay}, a part of the broker).

Delivery: in offset order, gaps healed
======================================

Every publication, this process's own included, is delivered to local
subscribers when Redis publishes it back, so every process delivers the
same sequence. (The broker before positions delivered its own at once
and dropped the echo; with offsets that would have let a process deliver
its own N+1 before another process's N.) The cost is one round trip to
Redis before a process's own subscribers see its publication.

Each subscribed channel has a L{Track}: the last offset delivered. The
next offset is delivered at once. One further on (a gap: the subscribed
connection dropped, or Redis dropped it for a full output buffer) waits,
with everything after it, while the missing ones are read from the stream
(C{XRANGE}); what the stream no longer has is skipped, and clients see the
gap by offset. Every (re)confirmed subscription reads the stream from the
last delivered offset: a process that was cut off from Redis (or from its
subscribed connection) delivers what the others published meanwhile, in
order. A new epoch on pub/sub (Redis lost its data) is delivered as it
comes: clients see the epoch change.

Consistency with subscriptions (the L{txpulse.pubsub.hub.Broker}
contract): a history read after Redis confirmed the channel's
subscription is answered once pub/sub has delivered up to the answer's
offset (so none of those reaches the subscriber after it: the hub drops
the ones the answer has); one read before is where the track starts, and
the stream is read from there once the subscription is confirmed. Own
publications made before the subscription was confirmed are delivered
from the script's reply, through the track (in order, the echo dropped).

Other programs publish with positions by running the same script
(L{txpulse.pubsub.broker.streams.PUBLISH}, whose keys and arguments are a
supported interface; the README shows it with C{redis-cli --eval}): their
publications are numbered, kept and replayed like the servers' own. A
bare JSON envelope published on the channel (C{PUBLISH txpulse:news
'{"topic":"news","data":"hi"}'}) is live only: delivered to the
subscribers connected at that moment, without a position, kept nowhere,
so never replayed to a client that resumes, and it does not advance the
offsets (a resuming client is told C{"recovered": true} without it).

Every message from Redis is checked before it is relayed
(L{txpulse.pubsub.hub.checkEnvelope}): it must be strict JSON (no C{NaN}),
an object with exactly C{topic} and C{data}, and its C{topic} must be the
topic of the channel it came on, so a foreign publisher cannot make a
message look like another topic's. Anything else is dropped, with a
warning (the first one at once, then one line every L{DROP_LOG_INTERVAL}
seconds while drops go on, counting them per channel: a
L{txpulse.logs.summary.SummaryLog}).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ...logs.summary import SummaryLog
from ..envelope import checkEnvelope
from ..history import Position
from .links import Link, ignore
from .scripts import Scripts
from .streams import Track, parseMessage, parseRead

__all__ = ["Relay", "DROP_LOG_INTERVAL"]

# The broker's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.broker.redis")

#: Seconds between two log lines about dropped (malformed or spoofed)
#: messages from Redis.
DROP_LOG_INTERVAL = 10.0


def _summarizeDrops(key: str, counts: Mapping[str, int], seconds: float) -> None:
    top = sorted(counts.items(), key=lambda item: -item[1])[:3]
    _log.warn(
        "Dropped {count} more message(s) from Redis in the last {seconds:.0f}s (malformed or spoofed); "
        "most on {channels}",
        count=sum(counts.values()),
        seconds=seconds,
        channels=", ".join(f"{channel!r} ({count})" for channel, count in top),
    )


class Relay(Scripts):
    """
    The part of L{txpulse.pubsub.broker.redis.RedisBroker} that takes
    publications from Redis to the hub; not used on its own.
    """

    healed: int
    _deliver: Callable[..., None] | None
    _tracks: dict[str, Track]
    _drops: SummaryLog
    _deliveredHere: dict[str, list[str]]
    _unanswered: list[tuple[int, str, str, Deferred[Position]]]
    _ranInFlight: set[int]
    _publisher: Link
    _subscriber: Link
    _connectionError: type[Exception]

    def _messageReceived(self, pattern: object, channel: object, message: object) -> None:
        # Called from inside txredisapi's parser: an exception escaping
        # would leave it in the middle of a reply.
        try:
            self._relay(channel, message)
        except Exception:
            _log.failure("Handling a message from Redis on {channel!r} failed", Failure(), channel=channel)

    def _relay(self, channel: object, message: object) -> None:
        """
        A message from Redis: C{"<offset> <epoch> <envelope>"} from the
        publish script, or a bare C{"{...}"} envelope from another program
        (delivered without a position).
        """
        deliver = self._deliver
        if deliver is None or not isinstance(channel, str) or not channel.startswith(self.prefix):
            return
        name = channel[len(self.prefix) :]
        track = self._tracks.get(name)
        if track is None:
            return  # in flight when we unsubscribed
        if not isinstance(message, str):
            self._drop(channel, "not UTF-8")
            return
        if message.startswith("{"):
            refused = checkEnvelope(name, message)
            if refused is not None:
                self._drop(channel, refused)
                return
            self._deliverUnpositioned(name, message)
            return
        parsed = parseMessage(message)
        if parsed is None:
            self._drop(channel, "not a txpulse message")
            return
        offset, epoch, payload = parsed
        refused = checkEnvelope(name, payload)
        if refused is not None:
            self._drop(channel, refused)
            return
        if (
            offset == track.offset + 1
            and epoch == track.epoch
            and not (track.buffer or track.holds or track.reading or track.needsHeal)
        ):
            # The usual case: the next one, nothing waiting.
            track.offset = offset
            try:
                self._deliverPositioned(name, payload, offset, epoch)
            except Exception:
                _log.failure("Delivering a message from Redis to {channel!r} failed", Failure(), channel=name)
            if track.waiters:
                track.wake()
            return
        track.buffer.append(parsed)
        self._pump(track)

    def _drop(self, channel: str, why: str) -> None:
        """
        Drop a message from Redis, with a warning: the first at once, then
        one summary every L{DROP_LOG_INTERVAL} seconds while drops go on (a
        foreign publisher must not flood the log).
        """
        if self._drops.note("", channel):
            _log.warn(
                "Dropped a message from Redis on channel {channel!r}: {why}; further drops are summed up "
                "every {interval:g}s",
                channel=channel,
                why=why,
                interval=DROP_LOG_INTERVAL,
            )

    def _forget(self, channel: str, payload: str) -> None:
        """
        C{payload}, delivered here without a position, will not come from
        Redis (again) on C{channel}: stop watching for it.
        """
        waiting = self._deliveredHere.get(channel)
        if waiting and payload in waiting:
            waiting.remove(payload)
            if not waiting:
                del self._deliveredHere[channel]

    def _deliverPositioned(self, channel: str, payload: str, offset: int, epoch: str) -> None:
        """
        Deliver a publication from Redis (with its position) here, unless it
        is the copy of one of this process's publications already delivered
        here without a position (lost in flight, given up on, and run by
        Redis after all): that one only moves the channel's track on.
        Matched by payload (the exact envelope text), first come first
        matched: another process publishing the very same envelope while
        the copy is awaited has its own delivery taken for the copy, so the
        count and the content are right, not the exact spot.
        """
        deliver = self._deliver
        if deliver is None:
            return
        if self._deliveredHere:
            waiting = self._deliveredHere.get(channel)
            if waiting and payload in waiting:
                self._forget(channel, payload)
                return
        if self._unanswered:
            # The copy of a publication lost in flight, before it is given
            # up on: Redis ran it, so it is not to be delivered here again
            # without a position.
            for sequence, lost, lostPayload, _ in self._unanswered:
                if lost == channel and lostPayload == payload and sequence not in self._ranInFlight:
                    self._ranInFlight.add(sequence)
                    break
        deliver(channel, payload, offset, epoch)

    def _deliverUnpositioned(self, channel: str, payload: str) -> None:
        deliver = self._deliver
        if deliver is not None:
            try:
                deliver(channel, payload, None, None)
            except Exception:
                _log.failure("Delivering a local publication to {channel!r} failed", Failure(), channel=channel)

    def _subscribeOn(self, protocol: Any, track: Track) -> None:
        """
        C{SUBSCRIBE} to C{track}'s channel; once Redis confirms it, heal
        the track from the stream (what was published before the
        subscription took effect, after what was delivered).
        """
        try:
            subscribing = protocol.execute_command("SUBSCRIBE", self.prefix + track.channel, apply_timeout=False)
        except Exception:
            return  # the link is going down; it subscribes again when back

        def confirmed(_: object) -> None:
            if self._tracks.get(track.channel) is track and self._subscriber.protocol is protocol:
                track.confirmed = True
                track.needsHeal = True
                self._pump(track)

        subscribing.addCallbacks(confirmed, ignore)

    def _pump(self, track: Track, afterRead: bool = False) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        try:
            track.pump(self._deliverPositioned, self._heal, afterRead)
        except Exception:
            _log.failure("Delivering publications of {channel!r} failed", Failure(), channel=track.channel)

    def _heal(self, track: Track) -> bool:
        """
        Read C{track}'s channel from the stream after what it delivered.

        @return: whether the read started (not without a connection).
        """
        protocol = self._publisher.protocol
        if protocol is None or track.epoch is None:
            return False
        track.reading = True
        reading = self._read(protocol, track.channel, track.epoch, track.offset, 0, "heal")

        def answered(reply: Any) -> None:
            if self._tracks.get(track.channel) is not track:
                return
            history, _complete = parseRead(reply)
            deliver = self._deliver
            if deliver is None:
                return
            before = track.offset if history.epoch == track.epoch else 0
            self.healed += sum(1 for offset, _ in history.publications if offset > before)
            track.answered(history, self._deliverPositioned)
            self._pump(track, afterRead=True)

        def failed(failure: Failure) -> None:
            if self._tracks.get(track.channel) is not track:
                return
            track.reading = False
            if failure.check(self._connectionError):
                track.needsHeal = True  # again once the connection is back
                self._pump(track)
                return
            _log.failure("Reading the stream of {channel!r} failed", failure, channel=track.channel)
            self._pump(track, afterRead=True)

        reading.addCallbacks(answered, failed).addErrback(
            lambda failure: _log.failure("Healing {channel!r} failed", failure, channel=track.channel)
        )
        return True

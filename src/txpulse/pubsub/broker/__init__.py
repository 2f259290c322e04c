# -*- test-case-name: tests.pubsub.test_history -*-
"""
Brokers carry published messages between the processes of a deployment:
L{txpulse.pubsub.broker.memory} (the default, one process) and
L{txpulse.pubsub.broker.redis} (several processes or machines, via Redis:
pub/sub for fan-out, a Lua script and a stream per channel for positions
and history). Both have positions and recovery.

What the hub expects of a broker is L{Broker} (and L{PositionedBroker} for
positions and recovery), with its contract, here; both are also importable
from L{txpulse.pubsub.hub}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.defer import Deferred

from ..history import History, Position

__all__ = ["Broker", "PositionedBroker"]


class Broker(Protocol):
    """
    Carries published messages to every process with subscribers, and (if
    it has C{history}) gives them positions and keeps their history.

    The hub tells the broker which channels have local subscribers
    (C{subscribe} on the first, C{unsubscribe} after the last), publishes
    through it, and receives through the C{deliver} callback given to
    C{start}. Payloads are the complete JSON envelope
    C{{"topic": T, "data": D}}, as text, without a position: the hub adds
    the position to the frame it writes
    (L{txpulse.pubsub.history.positioned}). Channels are the hub's
    (L{txpulse.pubsub.hub.channelFor}: namespaced topics), never the
    client's topics.

    A broker with positions (L{txpulse.pubsub.broker.memory.MemoryBroker}
    and L{txpulse.pubsub.broker.redis.RedisBroker}) implements all of the
    methods below and L{PositionedBroker}'s C{history}; one without
    (third-party brokers written for the first version of this protocol)
    lacks C{history}, and the hub then calls C{start(deliver)} with one
    argument and takes deliveries of two.

    B{Contract} for a broker with positions, which both brokers here meet
    (the Redis one as described in L{txpulse.pubsub.broker.redis}):

      - C{start(deliver, limits)}: C{deliver(channel, payload, offset,
        epoch)} is to be called for every publication of a channel some
        local subscriber wants, in every process, I{in offset order} per
        channel, at most once per offset, and with no gap within an
        epoch once the channel is subscribed (a broker that notices a gap,
        e.g. offset N+2 after N on Redis pub/sub, reads N+1 from its
        history before delivering N+2; if it cannot, it delivers N+2
        anyway and the client sees the gap by offset). C{limits(channel)}
        returns C{(size, ttl)}: keep at least the last C{size}
        publications of the channel for C{ttl} seconds (C{(0, 0.0)}:
        keep none; positions are still assigned). Call it once per
        channel and cache it: it runs user code.
      - C{publish(channel, payload)} assigns the next position of the
        channel, I{atomically across processes} (offset = previous + 1,
        no gap, no two publications with one offset: for Redis, a Lua
        script doing C{INCR} of the channel's offset and C{XADD} of
        C{(offset, payload)} to its stream, with C{MAXLEN ~ size}), then
        delivers it (to this process at once, through C{deliver}, and to
        the others). Returns the L{Position}, or a L{Deferred} firing with
        it (or failing: the publication may be lost, which the broker
        logs and counts), or C{None} if it does not know it.
      - C{history(channel, since)} returns a L{History}, or a L{Deferred}
        firing with one: the channel's current position (offset 0 if
        nothing was published in this epoch) and, when C{since} (a
        L{Position}) is given, whether every publication after it is
        still kept (same epoch, C{since.offset} not ahead of the latest,
        C{since.offset + 1} not evicted by size or age) and if so those
        publications, C{(offset, payload)}, in order, up to the returned
        offset. The answer must be I{consistent with deliveries}: every
        publication of the channel with an offset above the answer's
        must reach C{deliver} I{after} C{history} was called (the hub
        keeps aside what is delivered meanwhile, and drops from it what
        the answer covers, by offset: reading the stream after the call,
        and publishing to it before delivering, as a Lua script doing
        C{INCR}, C{XADD} and C{PUBLISH} does, meets this). A failed
        Deferred: the hub answers the subscriber C{"recovered": false}
        without a position and delivers live.
      - Epochs are strings matching L{txpulse.pubsub.history.EPOCH}
        (letters, digits, C{._:-}; the hub does not escape them). A
        channel's epoch changes whenever its offsets restart or its
        history was lost (Redis restarted without its data: keep the
        epoch in Redis next to the offset, create it with the offset,
        C{SET NX}).
      - C{stop()}: no more deliveries; may return a L{Deferred}.
    """

    def start(self, deliver: Callable[..., None], limits: Callable[[str], tuple[int, float]] = ...) -> None: ...

    def subscribe(self, channel: str) -> None: ...

    def unsubscribe(self, channel: str) -> None: ...

    def publish(self, channel: str, payload: str) -> Position | Deferred[Position] | None: ...

    def stop(self) -> object: ...


class PositionedBroker(Broker, Protocol):
    """
    A L{Broker} with positions and history (see the contract in L{Broker}).
    """

    def history(self, channel: str, since: Position | None) -> History | Deferred[History]: ...

# -*- test-case-name: tests.pubsub.test_replay,tests.pubsub.test_history -*-
"""
Recovery: how a subscription made with an answer, or C{since} a position,
gets its reply and its replay before it goes live (L{Recovery}, a part of
L{txpulse.pubsub.hub.Hub}).

Positions and recovery: a broker that has a C{history} method (the
in-process one does; see L{txpulse.pubsub.broker.Broker}) gives every
publication a position, and the hub writes it into the one frame of each
delivery:
C{{"topic": T, "data": D, "offset": N, "epoch": E}}. A subscription made
with C{answer=True} (the C{/pubsub} protocol's) is answered with the
topic's position, C{{"subscribed": T, "offset": TOP, "epoch": E}}, before
any delivery on it; one made C{since} a position is answered with
C{"recovered": true} and followed by the publications after it, then the
live ones, or with C{"recovered": false} and the live ones only. While the
broker reads the history (a L{Deferred}, for a broker across processes),
the subscriber is not yet among the topic's subscribers: what is
delivered to the topic meanwhile is kept aside for it, and written after
the history, minus what the history already had (compared by offset). So
the seam between replay and live has no gap and no duplicate. Both
brokers shipped here have positions (the Redis one keeps them in Redis,
L{txpulse.pubsub.broker.redis}); a broker without C{history} (a
third-party one written for the first version of this protocol) delivers
without positions, and subscriptions are then answered
C{{"subscribed": T}}, with C{"recovered": false} when asked to recover.

Replays are paced: a replay is written in slices of at most C{maxBatch}
bytes, and all replays together write at most C{replayPerTurn} bytes per
reactor turn (at least one message each); what is left goes on in the
next turns, round-robin over the subscribers replaying. So a thousand
clients resuming at once, or one client asking for the same replay a
thousand times, cannot hold the reactor for more than one slice's worth
of work per turn. A slice is written to a subscriber only while it keeps
up (C{writeBacklog} is 0: the transport's buffer has room, or has just
filled): a reader that does not read holds at most its buffer and one
slice, not the replay. Until its replay is written the subscription is
not live, so what is delivered to the topic meanwhile is kept aside, as
while the history is read (above), and counts against C{maxBacklog}: over
it, the subscriber is disconnected as too slow (1008). A subscription
that is not live yet when C{subscribe} returns (history still being read,
or replay still being written) comes with a L{Deferred} that fires when it
is; the C{/pubsub} protocol returns it from C{textMessageReceived}, so the
connection is not read meanwhile (L{txpulse.wire.protocol}): a client's
pipelined requests wait in TCP, one replay at a time per connection, and
re-subscribing the same topic a thousand times costs one replay at a time
(each new request abandons the replay in progress).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .envelope import dumpJSON
from .failures import HISTORY_FAILED, BrokerFailures
from .fanout import FanOut
from .history import History, Position, positioned
from .interfaces import Subscriber

__all__ = ["Recovery", "DEFAULT_REPLAY_PER_TURN", "REPLAY_POLL_INTERVAL"]

# The hub's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.hub")

#: Bytes all replays together write per reactor turn by default
#: (L{txpulse.pubsub.hub.Hub}'s C{replayPerTurn}): about 1,700 messages of
#: 150 bytes, a few milliseconds of work (measured: 1,000 clients resuming
#: 1,000 messages each at once keep another connection's round trip under
#: 10 ms; see the README).
DEFAULT_REPLAY_PER_TURN = 256 << 10

#: Seconds between two looks at replays that all wait for their readers
#: (C{writeBacklog} above 0): a replay waiting on a reader is looked at
#: every turn only while some other replay is being written.
REPLAY_POLL_INTERVAL = 0.02


class _Pending:
    """
    A subscription that is not live yet: waiting for its broker's
    L{History}, then for its replay to be written.

    @ivar buffer: what was delivered to its channel meanwhile,
        C{(payload, offset, epoch)}, to be written after the replay.
    @ivar buffered: the characters in C{buffer} (checked against the hub's
        C{maxBacklog}).
    @ivar history: the broker's answer, once it came.
    @ivar next: the index in C{history.publications} of the next one to
        replay.
    @ivar done: fires when the subscription is live, or abandoned
        (C{None} until someone waits for it).
    """

    __slots__ = ("topic", "since", "buffer", "buffered", "history", "next", "done")

    def __init__(self, topic: str, since: Position | None) -> None:
        self.topic = topic
        self.since = since
        self.buffer: list[tuple[str, int | None, str | None]] = []
        self.buffered = 0
        self.history: History | None = None
        self.next = 0
        self.done: Deferred[None] | None = None

    def finish(self) -> None:
        """
        Tell whoever waits that the subscription is live (or abandoned).
        """
        done, self.done = self.done, None
        if done is not None:
            done.callback(None)


class Recovery(FanOut, BrokerFailures):
    """
    The part of L{txpulse.pubsub.hub.Hub} that answers subscriptions and
    replays what they missed (see the module docstring); not used on its
    own.
    """

    replayPerTurn: int
    _replays: deque[tuple[Subscriber, str, _Pending]]
    _replaySpent: int
    _replayCall: IDelayedCall | None

    if TYPE_CHECKING:

        def _detach(self, subscriber: Subscriber, channel: str) -> None: ...

    def _waitFor(self, subscriber: Subscriber, channel: str, pending: _Pending) -> Deferred[None] | None:
        """
        C{None} if C{pending} is no longer pending (live, or abandoned),
        else a L{Deferred} that fires when it is no longer.
        """
        if self._recovering.get(channel, {}).get(subscriber) is not pending:
            return None
        if pending.done is None:
            pending.done = Deferred()
        return pending.done

    def _historyFailed(self, failure: Failure, subscriber: Subscriber, channel: str, pending: _Pending) -> None:
        self.noteBrokerFailure(HISTORY_FAILED, channel, failure)
        self._resume(subscriber, channel, pending, None)

    def _resume(self, subscriber: Subscriber, channel: str, pending: _Pending, history: History | None) -> None:
        """
        The broker answered C{pending}'s subscription with C{history}
        (C{None}: it failed): write the reply, the replay, then what was
        delivered meanwhile and is not in the replay; the subscriber is
        then live.
        """
        if not self._isPending(subscriber, channel, pending):
            return  # unsubscribed (or subscribed again) meanwhile
        reply: dict[str, Any] = {"subscribed": pending.topic}
        pending.history = history
        if history is None:
            if pending.since is not None:
                reply["recovered"] = False
        else:
            if pending.since is not None:
                reply["recovered"] = history.recovered
            reply["offset"] = history.offset
            reply["epoch"] = history.epoch
            if history.recovered and history.publications:
                # A replay: written in slices, maybe over several turns
                # (see the module docstring), then the subscription is live.
                self._writeTexts(subscriber, [dumpJSON(reply)])
                if not self._isPending(subscriber, channel, pending):
                    return  # dropped as too slow by that write
                if not self._replays and self._replaySpent < self.replayPerTurn and not subscriber.writeBacklog:
                    if self._replaySlice(subscriber, channel, pending, self.replayPerTurn - self._replaySpent):
                        return
                self._replays.append((subscriber, channel, pending))
                self._scheduleReplays(0)
                return
        self._goLive(subscriber, channel, pending, [dumpJSON(reply)])

    def _isPending(self, subscriber: Subscriber, channel: str, pending: _Pending) -> bool:
        """
        Whether C{pending} is still C{subscriber}'s subscription to
        C{channel}, waiting to go live.
        """
        waiting = self._recovering.get(channel)
        return waiting is not None and waiting.get(subscriber) is pending

    def _replaySlice(self, subscriber: Subscriber, channel: str, pending: _Pending, budget: int) -> bool:
        """
        Write the next slice of C{pending}'s replay: at most C{maxBatch} and
        C{budget} bytes (at least one message); the subscription goes live
        after the last one.

        @return: whether the replay is over.
        """
        history = pending.history
        assert history is not None
        publications, epoch = history.publications, history.epoch
        index, end = pending.next, len(publications)
        limit = min(self.maxBatch, budget)
        texts: list[str] = []
        size = 0
        while index < end and (size < limit or not texts):
            offset, payload = publications[index]
            index += 1
            text = positioned(payload, offset, epoch)
            texts.append(text)
            size += len(text)
        pending.next = index
        self._replaySpent += size
        if self._replayCall is None:
            # Whatever is left of the budget is this turn's only.
            self._scheduleReplays(0)
        if index < end:
            self._writeTexts(subscriber, texts)
            return False
        self._goLive(subscriber, channel, pending, texts)
        return True

    def _goLive(self, subscriber: Subscriber, channel: str, pending: _Pending, texts: list[str]) -> None:
        """
        C{pending}'s reply and replay are written, up to C{texts}: write
        those, then what was delivered meanwhile and is not in the replay;
        the subscriber is then live.
        """
        waiting = self._recovering[channel]
        del waiting[subscriber]
        if not waiting:
            del self._recovering[channel]
        history = pending.history
        for payload, offset, epoch in pending.buffer:
            if offset is None or epoch is None:
                texts.append(payload)
            elif history is None or epoch != history.epoch or offset > history.offset:
                texts.append(positioned(payload, offset, epoch))
            # else: in the replay already, or from before the subscription
        pending.buffer = []
        self._topics.setdefault(channel, set()).add(subscriber)
        self._writeTexts(subscriber, texts)
        pending.finish()

    def _scheduleReplays(self, delay: float) -> None:
        if self._replayCall is None:
            self._replayCall = self.clock.callLater(delay, self._replayTurn)

    def _replayTurn(self) -> None:
        """
        A new turn: write the next slice of each replay in progress, in
        turn, until this turn's C{replayPerTurn} is spent; a replay whose
        reader is behind (C{writeBacklog} above 0) waits for a later turn.
        """
        self._replayCall = None
        self._replaySpent = 0
        replays = self._replays
        budget = self.replayPerTurn
        wrote = False
        for _ in range(len(replays)):
            if self._replaySpent >= budget:
                break
            subscriber, channel, pending = entry = replays.popleft()
            if not self._isPending(subscriber, channel, pending):
                continue  # abandoned
            try:
                if not subscriber.isOpen():
                    # Closing: its connectionLost drops the subscription.
                    self._detach(subscriber, channel)
                    continue
                if subscriber.writeBacklog:
                    replays.append(entry)
                    continue
                wrote = True
                if not self._replaySlice(subscriber, channel, pending, budget - self._replaySpent):
                    replays.append(entry)
            except Exception:
                _log.failure("Replaying to a subscriber failed", Failure())
        if replays:
            self._scheduleReplays(0 if wrote else REPLAY_POLL_INTERVAL)

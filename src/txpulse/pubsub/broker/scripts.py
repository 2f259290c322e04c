# -*- test-case-name: tests.redis.test_redis_positions -*-
"""
How the Redis broker (L{txpulse.pubsub.broker.redis.RedisBroker}) runs
its Lua scripts (L{txpulse.pubsub.broker.streams}): each channel's keys
and arguments, cached, and C{EVALSHA}, or C{EVAL} where Redis refuses to
load them (L{Scripts}, a part of the broker).

Data in Redis (L{txpulse.pubsub.broker.streams} has the scripts)
================================================================

For hub channel C{C} (a topic, or C{namespace + "\\x1f" + topic}):

  - C{<prefix>position:C}, a hash: C{epoch} (12 random hex digits) and
    C{offset} (the latest). Kept as long as the channel's history (its
    ttl), and at least C{positionTtl} (60 s by default), after the last
    publication: a channel quiet for longer starts over in a new epoch,
    and a client resuming from the old one is told C{"recovered": false}
    (it would be anyway: its publications are gone with the history).
    So Redis holds a channel's keys for about its history's ttl, whatever
    the number of channels.
  - C{<prefix>history:C}, a stream: one entry per kept publication, with
    the id C{<offset>-0} (the offset I{is} the id: C{XRANGE} by offset)
    and fields C{p} (the JSON envelope) and C{t} (Redis' clock, ms).
    C{MAXLEN ~ size} (at least C{size} entries, a little more: Redis trims
    whole nodes), expires C{ttl} after the last publication; entries older
    than C{ttl} do not count for recovery. No stream with history off.
  - The pub/sub message on C{<prefix>C}: C{"<offset> <epoch> <envelope>"}.
  - C{<prefix>origin:<origin>}: the number of the last publication of
    this process Redis ran (see L{txpulse.pubsub.broker.outage}), kept a day after
    its last publication (one key per process).

One Redis server (or a primary with replicas): Redis Cluster is not
supported (a script's keys would have to share a hash slot).

Publishing is one Lua script (C{EVALSHA}, loaded on every new connection;
C{EVAL} if Redis lost it): take the epoch, or create it if the hash is
absent (first use, expiry, or a Redis that lost its data; the stream is
deleted with it, offsets start again at 1), C{HINCRBY} the offset, C{XADD}
the entry, refresh the expiries, C{PUBLISH} the message, record the
publication's number in the origin key, and answer C{"<epoch> <offset>"}. Redis runs a script atomically, so offsets have no
gap and no duplicate across processes, and every subscriber of the channel
receives the publications in offset order. A second script answers
subscriptions: the position (creating it if absent) and, from a given
position, the publications after it if the epoch matches and the one right
after it is still kept and younger than the ttl.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from .streams import PUBLISH, READ, Script, historyKey, positionKey

__all__ = ["Scripts", "MAX_CACHED"]

# The broker's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.broker.redis")

#: Channels whose limits (and script arguments) are cached; past it, the
#: caches start over (the hub's limits hook is asked again).
MAX_CACHED = 10_000

_PUBLISH = Script(PUBLISH)
_READ = Script(READ)


class Scripts:
    """
    The part of L{txpulse.pubsub.broker.redis.RedisBroker} that runs its
    scripts; not used on its own.
    """

    prefix: str
    address: str
    positionTtl: float
    _limits: Callable[[str], tuple[int, float]]
    _limitsOf: dict[str, tuple[int, float]]
    _argsOf: dict[str, tuple[tuple[bytes, bytes, bytes], str]]
    _evalOnly: bool
    _responseError: type[Exception]

    def _limitsFor(self, channel: str) -> tuple[int, float]:
        limits = self._limitsOf.get(channel)
        if limits is None:
            if len(self._limitsOf) >= MAX_CACHED:
                # Many short-lived topics: start over rather than grow.
                self._limitsOf.clear()
                self._argsOf.clear()
            size, ttl = self._limits(channel)
            if size <= 0 or ttl <= 0:
                size, ttl = 0, 0.0
            limits = self._limitsOf[channel] = (int(size), float(ttl))
        return limits

    def _scriptArgs(self, channel: str) -> tuple[tuple[bytes, bytes, bytes], str]:
        """
        The keys and the pub/sub channel of C{channel}, encoded, and
        C{"<size> <ttl> <keep>"} (ms) for the publish script; cached per
        channel (bytes go to Redis as they are: encoding them on every
        publication was a measurable part of its cost).
        """
        cached = self._argsOf.get(channel)
        if cached is None:
            size, ttl = self._limitsFor(channel)
            ttlMs = max(1, int(ttl * 1000))
            keep = max(ttlMs, int(self.positionTtl * 1000))
            names = (positionKey(self.prefix, channel), historyKey(self.prefix, channel), self.prefix + channel)
            encoded = tuple(name.encode("utf-8") for name in names)
            cached = self._argsOf[channel] = ((encoded[0], encoded[1], encoded[2]), f"{size} {ttlMs} {keep}")
        return cached

    def _run(
        self, protocol: Any, script: Script, keys: tuple[str | bytes, ...], args: tuple[object, ...]
    ) -> Deferred[Any]:
        """
        Run C{script}: C{EVALSHA} (the connection loaded it before it was
        ready), or C{EVAL} if Redis refused to load it (e.g. an ACL without
        C{SCRIPT}). No reply timeout: a dead connection is noticed by the
        pings, and fails every command in flight.

        Redis no longer knowing the script (C{NOSCRIPT}: C{SCRIPT FLUSH},
        a failover) drops the connection, and every command in flight
        fails; the new connection loads the scripts again. Running each
        refused one again with C{EVAL} instead could run a publication
        after one sent later (the later one's C{EVALSHA} may already find
        the script the first C{EVAL} loaded): offsets out of publishing
        order.
        """
        try:
            if self._evalOnly:
                running: Deferred[Any] = protocol.execute_command(
                    b"EVAL", script.sourceBytes, b"%d" % len(keys), *keys, *args, apply_timeout=False
                )
            else:
                running = protocol.execute_command(
                    b"EVALSHA", script.shaBytes, b"%d" % len(keys), *keys, *args, apply_timeout=False
                )
        except Exception:
            return fail()

        def unknown(failure: Failure) -> Failure:
            if failure.check(self._responseError) and str(failure.value).startswith("NOSCRIPT"):
                if protocol.connected:
                    _log.warn(
                        "Redis at {address} lost the broker's scripts (SCRIPT FLUSH?); reconnecting to load them",
                        address=self.address,
                    )
                    protocol.transport.abortConnection()
            return failure

        return running.addErrback(unknown)

    def _read(self, protocol: Any, channel: str, epoch: str, after: int, ttlMs: int, mode: str) -> Deferred[Any]:
        size, ttl = self._limitsFor(channel)
        keep = max(int(ttl * 1000), int(self.positionTtl * 1000))
        keys = (positionKey(self.prefix, channel), historyKey(self.prefix, channel))
        return self._run(protocol, _READ, keys, (epoch, after, ttlMs, secrets.token_hex(6), keep, mode))

# -*- test-case-name: tests.server.test_ratelimit -*-
"""
L{FailureLimiter}: a token bucket per client address that limits failed
authentication attempts, and logs them in aggregate.

Theory of operation: each address has a bucket of C{burst} tokens, refilled
at C{burst / period} tokens per second. A failed attempt (a wrong API key,
an invalid browser token) takes one token. While an address's bucket holds
less than one token, every request from it that needs authentication is
refused at once with C{429 Too Many Requests} and a C{Retry-After} (the
seconds until a token is back), I{without} checking its credentials: a
refusal costs a dictionary lookup, not a key check or a token decryption.
Successful attempts take nothing, so a user who mistypes a key a few times
is not locked out.

Addresses are IPv4 addresses, or the C{/64} network of an IPv6 address (one
host usually holds a whole C{/64}), of C{request.getClientAddress()}. Behind
a reverse proxy every client has the proxy's address, and the limit applies
to all of them together, unless the proxy is trusted (C{--trusted-proxy},
L{txpulse.server.proxies}): then each client is counted by its forwarded
address.

Memory is bounded: at most C{maxAddresses} buckets are kept, least recently
used first out (a full, quiet bucket is the same as no bucket, and is
dropped as soon as it reaches the old end of the table). An attacker with
more addresses than that can escape the limit, as he could anyway.

Logging (a L{txpulse.logs.summary.SummaryLog}): the first failure or refusal
from an address is logged on its own line; further ones are counted, and
logged as I{one} summary line per address per C{logInterval} (by a single
timer for the whole table, armed only while something is pending).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..logs.peers import clientKey
from ..logs.summary import SummaryLog

__all__ = ["FailureLimiter", "clientKey", "DEFAULT_BURST", "DEFAULT_PERIOD", "DEFAULT_MAX_ADDRESSES"]

_log = Logger()

#: Failed attempts an address may make at once.
DEFAULT_BURST = 10
#: Seconds in which a full bucket (C{burst} tokens) refills.
DEFAULT_PERIOD = 60.0
#: Addresses remembered at most.
DEFAULT_MAX_ADDRESSES = 10_000
#: Seconds between two summary lines for one address.
DEFAULT_LOG_INTERVAL = 60.0


class _Bucket:
    """
    One address's tokens.
    """

    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class FailureLimiter:
    """
    Limits failed authentication attempts per client address (see the module
    docstring).
    """

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        period: float = DEFAULT_PERIOD,
        *,
        maxAddresses: int = DEFAULT_MAX_ADDRESSES,
        logInterval: float = DEFAULT_LOG_INTERVAL,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param burst: failed attempts an address may make before it is
            refused (429); at least 1.
        @param period: seconds in which those C{burst} attempts come back
            (one every C{period / burst} seconds).
        @param maxAddresses: addresses remembered at most (least recently
            used out first).
        @param logInterval: seconds between two summary log lines about one
            address.
        @param clock: the time source (default: the reactor).
        @raise ValueError: for a non-positive C{burst}, C{period},
            C{maxAddresses} or C{logInterval}.
        """
        if burst < 1 or period <= 0 or maxAddresses < 1 or logInterval <= 0:
            raise ValueError("burst, period, maxAddresses and logInterval must be positive")
        self.burst = burst
        self.period = period
        self._rate = burst / period
        self._maxAddresses = maxAddresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._log = SummaryLog(_summarize, logInterval, maxKeys=maxAddresses, clock=clock)

    @property
    def _clock(self) -> IReactorTime:
        return self._log.clock

    def __len__(self) -> int:
        """
        The number of addresses remembered.
        """
        return len(self._buckets)

    def _bucket(self, key: str, now: float, create: bool) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            if not create:
                return None
            self._trim(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        return bucket

    def _trim(self, now: float) -> None:
        # Before a bucket is added: drop full buckets from the old end, then
        # the least recently used ones, to make room for it (what is counted
        # for the log stays there).
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            full = oldest.tokens + (now - oldest.updated) * self._rate >= self.burst
            if len(self._buckets) >= self._maxAddresses or full:
                self._buckets.popitem(last=False)
            else:
                break

    def retryAfter(self, key: str) -> int | None:
        """
        Check an address before its credentials are.

        @return: C{None} if it may try, else the whole seconds (at least 1)
            until it may try again; that refusal is counted for the log.
        """
        now = self._clock.seconds()
        bucket = self._bucket(key, now, create=False)
        if bucket is None or bucket.tokens >= 1.0:
            return None
        if self._log.note(key, "refused"):
            _log.info("Too many failed authentication attempts from {address}: refusing it (429)", address=key)
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def failed(self, key: str, reason: str) -> None:
        """
        Count a failed attempt from an address (takes one token).

        @param reason: why it failed, for the log (no credentials in it).
        """
        now = self._clock.seconds()
        bucket = self._bucket(key, now, create=True)
        assert bucket is not None
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        if self._log.note(key, "failed"):
            _log.info("Authentication failed for {address}: {reason}", address=key, reason=reason)

    def stop(self) -> None:
        """
        Log what is pending now and cancel the timer (at shutdown).
        """
        self._log.stop()


def _summarize(address: str, counts: Mapping[str, int], seconds: float) -> None:
    _log.info(
        "Authentication from {address}: {failures} more failed attempt(s) and {refused} refused "
        "(429) in the last {seconds:.0f}s",
        address=address,
        failures=counts.get("failed", 0),
        refused=counts.get("refused", 0),
        seconds=seconds,
    )

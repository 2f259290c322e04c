# -*- test-case-name: tests.pubsub.test_brokerfailures -*-
"""
How the hub counts and logs its broker's failures (L{BrokerFailures}, a
part of L{txpulse.pubsub.hub.Hub}).

Broker failures (Redis unreachable): a history read that fails is
answered C{"recovered": false} without a position, and a publication from
a C{/pubsub} client whose L{twisted.internet.defer.Deferred} fails is
dropped from the hub's point of view (the broker already delivered it
locally, or will, and logs the outage itself). Neither logs a traceback: each kind is logged
once, in one line, then summed up once every L{FAILURE_LOG_INTERVAL}
seconds while failures go on (a L{txpulse.logs.summary.SummaryLog}), and
counted in L{txpulse.pubsub.hub.Hub.brokerFailures}.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..logs.summary import OTHERS, SummaryLog
from .envelope import _qualified

__all__ = ["BrokerFailures", "FAILURE_LOG_INTERVAL", "HISTORY_FAILED", "PUBLISH_FAILED"]

# The hub's log namespace, as before this part of it had a module of its own.
_log = Logger(namespace="txpulse.pubsub.hub")

#: Seconds between two summary lines of the broker's failures (history
#: reads, publications): during an outage, each kind of failure is logged
#: once in full, then summed up once per interval
#: (L{txpulse.pubsub.hub.Hub.brokerFailures}).
FAILURE_LOG_INTERVAL = 10.0

#: What L{BrokerFailures.noteBrokerFailure} counts: reading a channel's
#: history (positions and recovery), and a publication from a C{/pubsub}
#: client.
HISTORY_FAILED = "Reading the history"
PUBLISH_FAILED = "Publishing"


def _summarizeFailures(what: str, counts: Mapping[str, int], seconds: float) -> None:
    top = sorted(counts.items(), key=lambda item: -item[1])[:3]
    _log.warn(
        "{what} failed {count} more time(s) in the last {seconds:.0f}s; most on {channels}",
        what=what,
        count=sum(counts.values()),
        seconds=seconds,
        channels=", ".join(
            f"{'other topics' if channel == OTHERS else repr(_qualified(channel))} ({count})" for channel, count in top
        ),
    )


class BrokerFailures:
    """
    The part of L{txpulse.pubsub.hub.Hub} that counts and logs its broker's
    failures; not used on its own.
    """

    brokerFailures: Counter[str]
    _failureLog: SummaryLog | None

    if TYPE_CHECKING:

        @property
        def clock(self) -> IReactorTime: ...

    def noteBrokerFailure(self, what: str, channel: str, failure: Failure) -> None:
        """
        Count a failure of the broker (C{what}: L{HISTORY_FAILED} or
        L{PUBLISH_FAILED}) on C{channel}, and log it: the first of its kind
        in one warning line (no traceback: the broker logs the outage
        itself), the next ones summed up once every
        L{FAILURE_LOG_INTERVAL} seconds, per channel (the three busiest
        named), while they go on. So an outage seen by a thousand
        subscribers makes a few lines, not a thousand tracebacks.
        """
        self.brokerFailures[what] += 1
        if self._failureLog is None:
            self._failureLog = SummaryLog(_summarizeFailures, FAILURE_LOG_INTERVAL, clock=self.clock)
        if self._failureLog.note(what, channel):
            _log.warn(
                "{what} of {channel!r} failed: {error} (further failures are summed up every {interval:.0f}s)",
                what=what,
                channel=_qualified(channel),
                error=failure.getErrorMessage(),
                interval=FAILURE_LOG_INTERVAL,
            )

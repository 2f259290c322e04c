"""
Tests for L{txpulse.logs.summary.SummaryLog}: events logged once per key,
then summed up once per interval, with one timer and a bounded table.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from twisted.internet.task import Clock

from txpulse.logs.summary import OTHERS, SummaryLog


class Summaries(list[tuple[str, dict[str, int], float]]):
    """
    Records the summary lines a L{SummaryLog} asks for.
    """

    def __call__(self, key: str, counts: Mapping[str, int], seconds: float) -> None:
        self.append((key, dict(counts), seconds))


def make(**kwargs: int) -> tuple[SummaryLog, Summaries, Clock]:
    clock = Clock()
    summaries = Summaries()
    return SummaryLog(summaries, 10.0, clock=clock, **kwargs), summaries, clock


def test_first_event_is_logged_then_counted_then_summed_up() -> None:
    """
    The first event of a key is for the caller to log; the next ones are
    counted (by kind) and summed up in one line when the interval ends.
    """
    log, summaries, clock = make()
    assert log.note("10.0.0.1", "failed")
    assert not any([log.note("10.0.0.1", "failed") for _ in range(5)])
    assert not log.note("10.0.0.1", "refused")
    assert summaries == []
    clock.advance(10)
    assert summaries == [("10.0.0.1", {"failed": 5, "refused": 1}, 10.0)]


def test_quiet_key_is_forgotten_and_logged_again() -> None:
    """
    A key with nothing counted for an interval is forgotten: its next event
    is logged in full again, and the timer stops once the table is empty.
    """
    log, summaries, clock = make()
    assert log.note("a")
    clock.advance(10)
    assert "a" not in log and summaries == [] and not clock.getDelayedCalls()
    assert log.note("a")


def test_events_that_go_on_make_one_line_per_interval() -> None:
    """
    A thousand events per interval, over five intervals: one full line,
    then one summary per interval, then nothing.
    """
    log, summaries, clock = make()
    logged = 0
    for _ in range(5):
        for _ in range(1000):
            logged += log.note("a")
        clock.advance(10)
    clock.advance(100)
    assert logged == 1
    assert [counts for _, counts, _ in summaries] == [{"": 999}] + [{"": 1000}] * 4
    assert not clock.getDelayedCalls()


def test_one_timer_for_all_keys() -> None:
    """
    However many keys are pending, one timer is armed.
    """
    log, summaries, clock = make()
    for n in range(100):
        log.note(f"10.0.0.{n}")
        log.note(f"10.0.0.{n}")
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(10)
    assert len(summaries) == 100


def test_table_is_bounded() -> None:
    """
    Past C{maxKeys} keys, events are counted under L{OTHERS} (never logged
    in full); past C{maxKinds} kinds, kinds are counted as L{OTHERS}.
    """
    log, summaries, clock = make(maxKeys=3, maxKinds=2)
    assert all(log.note(f"k{n}") for n in range(3))
    assert not any(log.note(f"new{n}", f"kind{n}") for n in range(50))
    assert len(log) == 4
    clock.advance(10)
    assert summaries == [(OTHERS, {"kind0": 1, "kind1": 1, OTHERS: 48}, 10.0)]


def test_stop_logs_what_is_counted_and_cancels_the_timer() -> None:
    """
    C{stop()} (at shutdown) sums up what is counted at once and leaves no
    timer.
    """
    log, summaries, clock = make()
    log.note("a")
    log.note("a")
    clock.advance(3)
    log.stop()
    assert summaries == [("a", {"": 1}, 3.0)]
    assert not clock.getDelayedCalls() and len(log) == 0


def test_bad_settings() -> None:
    """
    A non-positive interval or bound is refused.
    """
    with pytest.raises(ValueError):
        SummaryLog(Summaries(), 0)
    with pytest.raises(ValueError):
        SummaryLog(Summaries(), 1, maxKeys=0)

"""
Log capture: every event of C{globalLogPublisher} during a block, either as
the events themselves (Twisted's L{EventLoggingObserver}) or as the text a
reader would see (L{LogLines}, with search helpers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogEvent, formatEvent, globalLogPublisher


def event_text(event: LogEvent) -> str:
    """
    The text of C{event}, with the traceback of its failure if it has one.
    """
    text = formatEvent(event) or ""
    if "log_failure" in event:
        text += "\n" + event["log_failure"].getTraceback()
    return text


class LogLines(list[str]):
    """
    The text of every log event emitted while a test runs.
    """

    def matching(self, *needles: str) -> list[str]:
        """
        The lines containing every one of C{needles}.
        """
        return [line for line in self if all(needle in line for needle in needles)]

    async def expect(self, *needles: str, seconds: float = 1.0) -> str:
        """
        Wait (bounded) for a line containing every one of C{needles} and
        return it.
        """
        deadline = time.monotonic() + seconds
        while True:
            found = self.matching(*needles)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needles!r}; lines were:\n" + "\n".join(self))
            await deferLater(reactor, 0.01)


@contextmanager
def captured_events() -> Iterator[EventLoggingObserver]:
    """
    Twisted's L{EventLoggingObserver} on C{globalLogPublisher} for the
    block (removed even when the block fails, unlike
    L{twisted.logger.capturedLogs}).
    """
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    try:
        yield observer
    finally:
        globalLogPublisher.removeObserver(observer)


@contextmanager
def captured_logs(lines: list[str] | None = None) -> Iterator[list[str]]:
    """
    Collect the text of every log event emitted inside the block (see
    L{event_text}) as it is emitted, into C{lines} if given, else into a
    new L{LogLines}.
    """
    collected: list[str] = LogLines() if lines is None else lines

    def observer(event: LogEvent) -> None:
        collected.append(event_text(event))

    globalLogPublisher.addObserver(observer)
    try:
        yield collected
    finally:
        globalLogPublisher.removeObserver(observer)


class AccessLog:
    """
    Collects what a L{twisted.web.server.Site} writes to its access log (as
    C{site.logFile}).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

"""
Tests for the bounded labels of L{txpulse.plugin.metrics} (issue #12, item 10).
"""

from __future__ import annotations

from prometheus_client import generate_latest
from twisted.internet.task import Clock

from txpulse.plugin.metrics import ConnectionRegistry, closeCodeLabel


class ClosedWire:
    """
    The counters a registry reads from a closed connection.
    """

    messagesIn = messagesOut = bytesIn = bytesOut = 0
    openedAt = 0.0

    def __init__(self, closeCode: int) -> None:
        self.closeCode = closeCode


def test_close_code_labels_are_bounded() -> None:
    """
    Registered codes keep their number; 3000-3999, 4000-4999 and anything
    else share one label each.
    """
    assert [closeCodeLabel(c) for c in (1000, 1006, 1015)] == ["1000", "1006", "1015"]
    assert [closeCodeLabel(c) for c in (1004, 1016, 2999, 3000, 3999, 4000, 4999, 5000)] == [
        "other", "other", "other", "3xxx", "3xxx", "4xxx", "4xxx", "other",
    ]  # fmt: skip
    assert len({closeCodeLabel(c) for c in range(65536)}) == 18


def test_two_thousand_close_codes_do_not_grow_the_output() -> None:
    """
    The reported flood: 2,000 connections closing with codes 3000-4999 grew
    the output from 1.8 KB to 104 KB; now by two lines.
    """
    registry = ConnectionRegistry(clock=Clock(), logConnections=False)
    observer = registry.observerFor("/echo")
    before = len(generate_latest(registry.metrics))
    for n in range(2000):
        wire = ClosedWire(3000 + n)
        observer.connectionOpened(wire)  # type: ignore[arg-type]
        observer.connectionClosed(wire)  # type: ignore[arg-type]
    text = generate_latest(registry.metrics).decode()
    assert len(text) < before + 200
    assert 'txpulse_closes_total{code="3xxx",path="/echo"} 1000.0' in text
    assert 'txpulse_closes_total{code="4xxx",path="/echo"} 1000.0' in text

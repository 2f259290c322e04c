"""
Tests for the countdown example, written as a user of txpulse would write
them: L{txpulse.testing} plays the browser, a L{Clock} plays time. No
sockets, no reactor, no sleeping.

Run them with::

    pytest examples/test_countdown.py
"""

from __future__ import annotations

from countdown import CountdownFactory
from twisted.internet.task import Clock

from txpulse import CloseCode
from txpulse.testing import WebSocketPeer, connectFactory


def connect() -> WebSocketPeer:
    """
    A peer connected to a countdown server. The factory and the server's
    own timers (keepalive) share the peer's clock.
    """
    clock = Clock()
    return connectFactory(CountdownFactory(clock), clock=clock, path="/countdown")


def test_counts_down_once_a_second_then_closes() -> None:
    """
    C{count 3} gives 3 at once, then 2, 1 and liftoff a second apart, then
    a normal close.
    """
    peer = connect()
    peer.sendText("count 3")
    assert peer.received == ["3"]
    peer.advance(1)
    assert peer.received == ["3", "2"]
    peer.advance(1)
    assert peer.received == ["3", "2", "1"]
    assert peer.isOpen
    peer.advance(1)
    assert peer.received == ["3", "2", "1", "liftoff!"]
    assert peer.closeCode == CloseCode.NORMAL_CLOSURE
    assert peer.disconnected


def test_bad_command_gets_an_error_and_the_connection_stays_open() -> None:
    """
    A message that is not C{count N} is answered with an error.
    """
    peer = connect()
    peer.sendText("count to ten")
    assert peer.received == ["error: send 'count N', 1 <= N <= 60"]
    assert peer.isOpen


def test_binary_closes_with_1003() -> None:
    """
    Binary messages are refused with close code 1003.
    """
    peer = connect()
    peer.sendBinary(b"\x01")
    assert (peer.closeCode, peer.closeReason) == (CloseCode.UNSUPPORTED_DATA, "text only")


def test_leaving_early_stops_the_countdown() -> None:
    """
    A client that closes mid-countdown gets no more numbers (and the timer
    is stopped: nothing is left on the clock but the server's own).
    """
    peer = connect()
    peer.sendText("count 10")
    peer.close()
    peer.advance(20)
    assert peer.received == ["10"]
    assert peer.clock.getDelayedCalls() == []

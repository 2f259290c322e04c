# -*- test-case-name: tests.server.test_deadlines -*-
"""
Tests for L{txpulse.server.deadlines.DeadlineQueue}: many deadlines of one
length on one reactor timer, on a L{Clock}.
"""

from __future__ import annotations

from functools import partial

from twisted.internet.task import Clock

from txpulse.server.deadlines import Deadline, DeadlineQueue

from ..support.logs import captured_events


def queue_on_clock(delay: float = 10.0) -> tuple[DeadlineQueue, Clock, list[str]]:
    """
    A queue of C{delay}-second deadlines on a fresh L{Clock}, and the list
    its tests' callbacks append to.
    """
    clock = Clock()
    return DeadlineQueue(clock, delay), clock, []


def advance_to(clock: Clock, when: float) -> None:
    """
    Advance C{clock} to exactly C{when} (adding up steps such as C{4.999}
    and C{0.001} may land a rounding error short of it).
    """
    clock.advance(when - clock.seconds())
    assert clock.seconds() == when


def test_fires_exactly_delay_after_arming() -> None:
    """
    A deadline fires C{delay} seconds after it was armed: not a millisecond
    before, and then once only.
    """
    queue, clock, fired = queue_on_clock(10.0)
    clock.advance(3)
    deadline = queue.arm(lambda: fired.append("a"))
    assert deadline.time == 13.0
    clock.advance(10 - 0.001)
    assert fired == [] and deadline.active()
    advance_to(clock, 13.0)
    assert fired == ["a"]
    assert not deadline.active()
    clock.advance(100)
    assert fired == ["a"]


def test_deadlines_armed_together_fire_in_arming_order() -> None:
    """
    Deadlines armed at the same time fire together, in the order armed.
    """
    queue, clock, fired = queue_on_clock(5.0)
    for name in "abcde":
        queue.arm(partial(fired.append, name))
    clock.advance(4.999)
    assert fired == []
    advance_to(clock, 5.0)
    assert fired == list("abcde")
    assert len(queue) == 0


def test_cancel_prevents_firing() -> None:
    """
    A cancelled deadline does not fire (the others do), is no longer
    active, and cancelling it again is harmless.
    """
    queue, clock, fired = queue_on_clock(5.0)
    a = queue.arm(lambda: fired.append("a"))
    b = queue.arm(lambda: fired.append("b"))
    assert a.active() and b.active()
    a.cancel()
    assert not a.active() and b.active()
    a.cancel()
    clock.advance(5)
    assert fired == ["b"]
    assert not a.active() and not b.active()


def test_cancel_after_firing_is_harmless() -> None:
    """
    Cancelling a deadline that fired changes nothing: the next deadlines
    still fire on time (the queue's count of cancelled entries is not
    thrown off).
    """
    queue, clock, fired = queue_on_clock(5.0)
    a = queue.arm(lambda: fired.append("a"))
    clock.advance(5)
    a.cancel()
    a.cancel()
    assert not a.active()
    b = queue.arm(lambda: fired.append("b"))
    clock.advance(4.999)
    assert fired == ["a"]
    advance_to(clock, 10.0)
    assert fired == ["a", "b"]
    assert not b.active()


def test_deadlines_armed_at_different_times_each_fire_at_their_own_time() -> None:
    """
    Deadlines armed one after another fire each C{delay} after its own
    arming, also when the one at the head of the queue (the one the timer
    was set for) was cancelled.
    """
    queue, clock, fired = queue_on_clock(10.0)
    head = queue.arm(lambda: fired.append("head"))  # due at 10
    clock.advance(2)
    queue.arm(lambda: fired.append("b"))  # due at 12
    clock.advance(3)
    queue.arm(lambda: fired.append("c"))  # due at 15
    head.cancel()
    clock.advance(5)  # t = 10: the timer fires for the cancelled head
    assert fired == []
    clock.advance(2 - 0.001)
    assert fired == []
    advance_to(clock, 12.0)
    assert fired == ["b"]
    clock.advance(3 - 0.001)
    assert fired == ["b"]
    advance_to(clock, 15.0)
    assert fired == ["b", "c"]
    assert clock.getDelayedCalls() == []


def test_rearming_after_the_queue_emptied() -> None:
    """
    A deadline armed when the queue has emptied (its timer gone, or left
    set for a cancelled deadline) still fires C{delay} after it was armed.
    """
    queue, clock, fired = queue_on_clock(4.0)
    queue.arm(lambda: fired.append("a"))
    clock.advance(4)
    clock.advance(7)
    queue.arm(lambda: fired.append("b"))  # due at 15
    queue.arm(lambda: None).cancel()
    clock.advance(3.999)
    assert fired == ["a"]
    advance_to(clock, 15.0)
    assert fired == ["a", "b"]
    cancelled = queue.arm(lambda: fired.append("x"))  # due at 19
    clock.advance(1)
    cancelled.cancel()
    queue.arm(lambda: fired.append("c"))  # due at 20, behind the cancelled head
    clock.advance(3)  # t = 19
    assert fired == ["a", "b"]
    clock.advance(0.999)
    assert fired == ["a", "b"]
    advance_to(clock, 20.0)
    assert fired == ["a", "b", "c"]


def test_callback_may_arm_a_new_deadline() -> None:
    """
    A callback that arms another deadline (of the same queue) gets it
    C{delay} seconds later, on the one timer.
    """
    queue, clock, fired = queue_on_clock(5.0)
    pendingInCallback: list[int] = []

    def again() -> None:
        fired.append(f"at {clock.seconds():g}")
        if len(fired) < 3:
            queue.arm(again)
        pendingInCallback.append(len(clock.getDelayedCalls()))

    queue.arm(again)
    for _ in range(4):
        clock.advance(5)
        assert len(clock.getDelayedCalls()) <= 1
    assert fired == ["at 5", "at 10", "at 15"]
    # (The timer is set once the callbacks are done, not by each arm.)
    assert pendingInCallback == [0, 0, 0]


def test_callback_may_cancel_another_deadline() -> None:
    """
    A callback that cancels a deadline due at the same time, or later, stops
    it firing; the others still fire.
    """
    queue, clock, fired = queue_on_clock(5.0)
    later: list[Deadline] = []

    def first() -> None:
        fired.append("first")
        second.cancel()
        later[0].cancel()

    queue.arm(first)
    second = queue.arm(lambda: fired.append("second"))
    queue.arm(lambda: fired.append("third"))
    clock.advance(1)
    later.append(queue.arm(lambda: fired.append("later")))
    queue.arm(lambda: fired.append("last"))
    clock.advance(4)
    assert fired == ["first", "third"]
    clock.advance(1)
    assert fired == ["first", "third", "last"]


def test_raising_callback_is_logged_and_the_others_still_fire() -> None:
    """
    A callback that raises is logged (with its traceback), and the
    deadlines behind it still fire, and the queue still works after.
    """
    queue, clock, fired = queue_on_clock(5.0)

    def broken() -> None:
        raise ZeroDivisionError("broken deadline")

    queue.arm(lambda: fired.append("a"))
    queue.arm(broken)
    queue.arm(lambda: fired.append("b"))
    with captured_events() as events:
        clock.advance(5)
    assert fired == ["a", "b"]
    failures = [event["log_failure"] for event in events if "log_failure" in event]
    assert len(failures) == 1
    assert failures[0].check(ZeroDivisionError)
    queue.arm(lambda: fired.append("c"))
    clock.advance(5)
    assert fired == ["a", "b", "c"]


def test_cancelled_deadlines_are_compacted_and_survivors_fire_on_time() -> None:
    """
    With most of 1,000 deadlines cancelled, the next arm drops the
    cancelled ones (the queue's length shrinks to the live ones), and
    those still fire each at its own time.
    """
    queue, clock, fired = queue_on_clock(100.0)
    deadlines = []
    for i in range(1000):
        deadlines.append(queue.arm(partial(fired.append, str(i))))
        clock.advance(0.01)  # armed at i / 100 seconds, due at 100 + i / 100
    keep = {7, 500, 998}
    for i, deadline in enumerate(deadlines):
        if i not in keep:
            deadline.cancel()
    assert len(queue) == 1000
    queue.arm(lambda: fired.append("new"))  # at t = 10, due at 110
    assert len(queue) == len(keep) + 1
    assert len(clock.getDelayedCalls()) == 1
    due = [deadlines[i].time for i in sorted(keep)]
    for i, when in zip(sorted(keep), due, strict=True):
        assert abs(when - (100 + i / 100)) < 1e-9
        advance_to(clock, when - 0.001)
        assert str(i) not in fired
        advance_to(clock, when)
        assert fired[-1] == str(i)
    advance_to(clock, 109.999)
    assert fired == ["7", "500", "998"]
    advance_to(clock, 110.0)
    assert fired == ["7", "500", "998", "new"]
    assert len(queue) == 0


def test_a_few_cancelled_deadlines_are_not_compacted() -> None:
    """
    Below the threshold (a few cancelled, or fewer cancelled than live),
    cancelled deadlines stay queued until they reach the front.
    """
    queue, clock, fired = queue_on_clock(10.0)
    deadlines = [queue.arm(lambda: None) for _ in range(200)]
    for deadline in deadlines[:90]:
        deadline.cancel()
    queue.arm(lambda: fired.append("x"))
    assert len(queue) == 201


def test_only_one_timer_pending_at_any_time() -> None:
    """
    However many deadlines are armed, cancelled and fired, the queue keeps
    at most one L{DelayedCall} pending on the clock, and none once it is
    empty.
    """
    queue, clock, fired = queue_on_clock(3.0)
    armed: list[Deadline] = []
    cancelledInTime: set[int] = set()
    for step in range(300):
        armed.append(queue.arm(partial(fired.append, str(step))))
        if step % 3 == 0:
            # Some still pending, some fired already (armed 12 steps ago).
            target = step // 2 if step % 2 else step - 1
            if target >= 0:
                if armed[target].active():
                    cancelledInTime.add(target)
                armed[target].cancel()
        assert len(clock.getDelayedCalls()) == 1
        clock.advance(0.25)
        assert len(clock.getDelayedCalls()) <= 1
    clock.advance(3)
    assert clock.getDelayedCalls() == []
    assert len(queue) == 0
    assert len(cancelledInTime) > 50
    assert fired == [str(i) for i in range(300) if i not in cancelledInTime]

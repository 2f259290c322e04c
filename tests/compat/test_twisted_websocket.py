"""
Twisted's own C{twisted/web/test/test_websocket.py}, from the installed
Twisted, passes against txpulse's C{WebSocketResource} and
C{WebSocketClientEndpoint}, except the deliberate differences the README's
"Porting from twisted.web.websocket" section lists (see
L{tests.compat.twistedsuite}). Runs on whichever Twisted the virtualenv
has: C{make test} (the newest) and C{make test-twisted-oldest} (26.4).
"""

from __future__ import annotations

from pathlib import Path

import twisted

from .twistedsuite import DELIBERATE, loadSwapped, runSwapped


def test_twisted_websocket_tests_pass_on_txpulse() -> None:
    """
    Every test of Twisted's module passes with the two names swapped,
    except the listed deliberate differences, each of which fails at the
    one assertion its README entry explains (so the rest of that test
    passes). None is skipped.
    """
    outcome = runSwapped()
    report = "\n\n".join(f"{name}:\n{text}" for name, text in outcome.failed)
    assert outcome.failed == [], report
    assert outcome.skipped == []
    assert set(outcome.deliberate) == set(DELIBERATE)
    # 26.4's module has the 9 WebSocketTests; 26.10 adds 5 framing tests.
    assert outcome.total >= 9
    assert len(outcome.passed) == outcome.total - len(DELIBERATE)


def test_twisted_module_passes_on_twisted_itself() -> None:
    """
    The control: loaded the same way but not swapped, Twisted's module
    passes on Twisted's own implementation (the loader and this
    environment are sound; the differences above are txpulse's).
    """
    outcome = runSwapped(swap=False)
    assert outcome.failed == [] and outcome.skipped == []
    assert outcome.deliberate == []
    assert outcome.total == runSwapped().total


def test_module_comes_from_the_installed_twisted() -> None:
    """
    The module run is the installed Twisted's file (no copy of it lives in
    this repository), and its two names are txpulse's after the swap.
    """
    from txpulse import WebSocketClientEndpoint, WebSocketResource

    module = loadSwapped()
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(Path(twisted.__file__).resolve().parent)
    assert module.WebSocketResource is WebSocketResource
    assert module.WebSocketClientEndpoint is WebSocketClientEndpoint
    repository = Path(__file__).resolve().parents[2]
    assert not list(repository.glob("tests/**/test_websocket.py"))

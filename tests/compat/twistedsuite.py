"""
Twisted's own tests of C{twisted.web.websocket}, run against txpulse.

L{loadSwapped} loads C{twisted/web/test/test_websocket.py} from the
installed Twisted (never a copy kept in this repository) as a private module
(under its own name: Twisted's module is left alone), then swaps the two
names the issue is about in that module's globals: C{WebSocketResource} and
C{WebSocketClientEndpoint} become txpulse's. Everything else (the fixtures,
the protocols, C{ConnectionRejected} in the assertions, the
C{WebSocketProtocol} and factory types) stays Twisted's, so the tests check
that code written for Twisted runs unchanged.

L{runSwapped} runs the module and sorts every test into passed, a listed
deliberate difference (it must fail I{at the assertion the difference
explains}, so the rest of that test still has to pass), or failed.

Run it by hand (C{make test-twisted-compat} does)::

    .venv/bin/python -m tests.compat.twistedsuite

C{tests/compat/test_twisted_websocket.py} runs it as part of the suite, on
whichever Twisted the virtualenv has (C{make test}: the newest,
C{make test-twisted-oldest}: 26.4, whose module holds the first 9 tests).
"""

from __future__ import annotations

import importlib.util
import sys
import unittest
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

import twisted

#: The name of Twisted's test module, as installed.
TWISTED_MODULE = "twisted.web.test.test_websocket"

#: Tests whose failure is a deliberate, documented difference (README,
#: "Porting from twisted.web.websocket"): test id suffix -> a text the
#: failure message must contain (the one assertion the difference explains).
DELIBERATE: dict[str, str] = {
    # txpulse answers a plain GET (no Upgrade) with 426 Upgrade Required and
    # "Upgrade: websocket" (RFC 6455 §4.2.2, RFC 9110 §15.5.22); Twisted
    # answers 400.
    "WebSocketTests.test_bad": "426 != 400",
    # A refusal's body ends like every twisted.web.client response body,
    # with ResponseDone (so readBody returns it); Twisted hands the body
    # protocol the TCP ConnectionDone instead (and readBody then fails).
    "WebSocketTests.test_connectionRefusedSlow": "ResponseDone'> != <class 'twisted.internet.error.ConnectionDone'>",
    # attachProducer: pause, resume and stop reach the application's
    # producer (asserted first, and passing), but the producer registered
    # with TCP stays txpulse's wire, which enforces the write-buffer limit and
    # stops reading from a peer that does not read.
    "WebSocketTests.test_backpressure": "WebSocketWire object at 0x",
}


@dataclass
class Outcome:
    """
    What running Twisted's module against txpulse gave.

    @ivar passed: ids of the tests that passed.
    @ivar deliberate: ids of the tests that failed as L{DELIBERATE} says.
    @ivar failed: C{(id, traceback)} of every other failure or error, and
        of a deliberate difference that passed or failed elsewhere.
    @ivar skipped: C{(id, reason)} of skipped tests (none expected).
    """

    passed: list[str] = field(default_factory=list)
    deliberate: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.deliberate) + len(self.failed) + len(self.skipped)


@contextmanager
def _twistedOwnWarningsIgnored() -> Iterator[None]:
    """
    Ignore the deprecation warnings Twisted's module and fixtures cause in
    Twisted itself (C{twisted.web.static} builds its deprecated
    C{_UnsafeNoResource} on import; Twisted's client hands C{readBody} a
    transport without C{abortConnection}): not ours to report.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"twisted\.web\.resource\._Unsafe", DeprecationWarning)
        warnings.filterwarnings("ignore", "Using readBody with a transport", DeprecationWarning)
        yield


def loadSwapped(swap: bool = True) -> ModuleType:
    """
    Load Twisted's C{test_websocket} afresh as a private module; with
    C{swap}, its C{WebSocketResource} and C{WebSocketClientEndpoint} are
    txpulse's (without, it tests Twisted's own, as a control).
    """
    spec = importlib.util.find_spec(TWISTED_MODULE)
    if spec is None or spec.origin is None:  # pragma: no cover
        raise ImportError(f"{TWISTED_MODULE} is not installed with Twisted {twisted.__version__}")
    private = importlib.util.spec_from_file_location(f"txpulse_compat_{'swapped' if swap else 'twisted'}", spec.origin)
    assert private is not None and private.loader is not None
    module = importlib.util.module_from_spec(private)
    # Registered under its private name (dataclasses look their module up
    # there); Twisted's own module is not touched.
    sys.modules[private.name] = module
    with _twistedOwnWarningsIgnored():
        private.loader.exec_module(module)
    if swap:
        from txpulse import WebSocketClientEndpoint, WebSocketResource

        module.WebSocketResource = WebSocketResource  # type: ignore[attr-defined]
        module.WebSocketClientEndpoint = WebSocketClientEndpoint  # type: ignore[attr-defined]
    return module


def _shortId(test: unittest.TestCase) -> str:
    return ".".join(test.id().split(".")[-2:])


def runSwapped(swap: bool = True) -> Outcome:
    """
    Run every test of Twisted's module (see L{loadSwapped}) and sort the
    results (see L{Outcome}).
    """
    module = loadSwapped(swap)
    # Only the module's own test classes (it also imports SynchronousTestCase,
    # which the loader would pick up); listed before running: a suite drops
    # its tests as it runs them.
    tests = [test for test in _flatten(unittest.TestLoader().loadTestsFromModule(module)) if type(test).__module__ == module.__name__]
    suite = unittest.TestSuite(tests)
    result = unittest.TestResult()
    with _twistedOwnWarningsIgnored():
        suite.run(result)
    outcome = Outcome()
    bad = {_shortId(test): text for test, text in result.failures + result.errors}
    outcome.skipped = [(_shortId(test), reason) for test, reason in result.skipped]
    skipped = {name for name, _ in outcome.skipped}
    for test in tests:
        name = _shortId(test)
        if name in skipped:
            continue
        expected = DELIBERATE.get(name) if swap else None
        if name not in bad:
            if expected is None:
                outcome.passed.append(name)
            else:
                outcome.failed.append((name, "listed as a deliberate difference, but passed: update DELIBERATE"))
        elif expected is not None and expected in bad[name]:
            outcome.deliberate.append(name)
        else:
            outcome.failed.append((name, bad[name]))
    return outcome


def _flatten(suite: unittest.TestSuite | unittest.TestCase) -> list[unittest.TestCase]:
    if isinstance(suite, unittest.TestCase):
        return [suite]
    return [test for child in suite for test in _flatten(child)]


def main() -> int:
    """
    Print each test's outcome and a summary; exit 0 when nothing failed
    beyond the listed deliberate differences.
    """
    outcome = runSwapped()
    print(f"Twisted {twisted.__version__}: {TWISTED_MODULE} against txpulse's WebSocketResource and WebSocketClientEndpoint")
    for name in outcome.passed:
        print(f"  pass        {name}")
    for name in outcome.deliberate:
        print(f"  deliberate  {name}  (README: Porting from twisted.web.websocket)")
    for name, reason in outcome.skipped:
        print(f"  skipped     {name}: {reason}")
    for name, text in outcome.failed:
        print(f"  FAIL        {name}\n{text}")
    print(
        f"{len(outcome.passed)} of {outcome.total} passed, {len(outcome.deliberate)} deliberate differences, "
        f"{len(outcome.failed)} failed, {len(outcome.skipped)} skipped"
    )
    return 1 if outcome.failed or outcome.skipped else 0


if __name__ == "__main__":
    sys.exit(main())

# -*- test-case-name: tests.server.test_collector -*-
"""
Tuning CPython's cyclic garbage collector for a server that holds many
connections.

Each open WebSocket is a few dozen container objects that live as long as
the connection (the HTTP channel and its upgrade request, the wire, the
core connection, the application's protocol, the transport, a timer).
CPython's collector runs a young-generation pass every 700 allocations and
an older one every ten of those, each walking every object that survived
so far: with ten thousand connections open, opening the next thousand paid
about a third of its CPU time to the collector (measured: 182-226 µs of
server CPU per handshake with the defaults, 143-179 µs with the young
threshold at 10,000; see the README's performance section). The objects
are not garbage; the collector re-proves it.

L{tuneCollector} does what long-running Python servers commonly do: it
moves everything allocated at start-up (modules, classes, the resource
tree) out of the collector's sight (C{gc.freeze}), and lets the young
generation grow to C{young} objects before a pass. Garbage cycles are
still collected, a little later; memory held by not-yet-collected cycles
grows by at most C{young} objects (about a megabyte at 10,000).

It changes process-wide state, so txpulse never calls it on import or
from a resource: the twistd plugin calls it at start-up (C{--gc-threshold},
0 keeps CPython's settings), and an application with its own entry point
may call it once it has built its resource tree.
"""

from __future__ import annotations

import gc

__all__ = ["DEFAULT_YOUNG_THRESHOLD", "tuneCollector"]

#: Objects allocated (net) between two young-generation passes, instead of
#: CPython's 700.
DEFAULT_YOUNG_THRESHOLD = 10_000


def tuneCollector(young: int = DEFAULT_YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """
    Freeze what exists now and raise the young generation's threshold to
    C{young} (the older generations keep CPython's ratios). C{young=0}
    changes nothing.

    @return: the thresholds now in force (C{gc.get_threshold()}).
    @raise ValueError: for a negative C{young}.
    """
    if young < 0:
        raise ValueError(f"the collector's young threshold must not be negative: {young}")
    if young:
        _young, older, oldest = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(young, older, oldest)
    return gc.get_threshold()

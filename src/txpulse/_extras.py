# -*- test-case-name: tests.test_packaging -*-
"""
The optional parts of txpulse and the extra that installs each.

C{pip install txpulse} gives the server, the client, the CLI and the twistd
plugin. Three features need a library more, installed by an extra
(C{pip install txpulse[redis]}, or C{txpulse[all]} for every one):

  - C{redis}: the Redis broker (C{--broker redis://...}), C{txredisapi};
  - C{auth}: browser tokens (C{--jwk}, C{/@wstoken}, C{txpulse gen-key}),
    C{jwcrypto} (API keys, C{--auth-keys}, need nothing more);
  - C{metrics}: Prometheus metrics (C{/metrics}), C{prometheus_client}.

A feature used without its extra raises L{MissingExtra}, whose message is
one line naming the extra; the entry points print that line and exit 1.
This module is standard library only (it is checked before anything else
is imported).
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtra", "hasExtra", "requireExtra"]

#: extra -> (the module it installs, what needs it: the sentence's subject
#: and verb, as in "the Redis broker needs").
EXTRAS: dict[str, tuple[str, str]] = {
    "redis": ("txredisapi", "the Redis broker needs"),
    "auth": ("jwcrypto", "browser tokens (--jwk, /@wstoken, txpulse gen-key) need"),
    "metrics": ("prometheus_client", "Prometheus metrics (/metrics) need"),
}


class MissingExtra(ImportError):
    """
    A feature was used whose extra is not installed. C{str()} is one line:
    C{txpulse: the Redis broker needs `pip install txpulse[redis]`}.

    @ivar extra: the extra to install (C{"redis"}, C{"auth"}, C{"metrics"}).
    """

    def __init__(self, extra: str) -> None:
        module, needs = EXTRAS[extra]
        super().__init__(f"txpulse: {needs} `pip install txpulse[{extra}]`", name=module)
        self.extra = extra


def hasExtra(extra: str) -> bool:
    """
    Whether the module C{extra} installs can be found (without importing it:
    C{txredisapi}, for one, imports the global reactor).
    """
    module = EXTRAS[extra][0]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def requireExtra(extra: str) -> None:
    """
    Check that the module C{extra} installs can be found.

    @raise MissingExtra: when it cannot.
    """
    if not hasExtra(extra):
        raise MissingExtra(extra)

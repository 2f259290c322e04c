"""
Run a program written for C{twisted.web.websocket} on txpulse, unchanged:
C{twisted.web.websocket.WebSocketResource} and C{.WebSocketClientEndpoint}
are replaced by txpulse's before the program starts, so its own
C{from twisted.web.websocket import ...} gets them::

    python -m tests.compat.swapped twist web --listen tcp:8080 --path DIR
    python -m tests.compat.swapped run SCRIPT.py [ARGS...]

(from the repository root, with C{src} on C{PYTHONPATH}). C{twist} runs
Twisted's C{twist} (an C{.rpy} it serves imports the swapped names); C{run}
runs a script as C{__main__}.

C{TXPULSE_COMPAT_REDIRECT=localhost:8080=127.0.0.1:PORT}: a client URL
naming C{localhost:8080} connects to C{127.0.0.1:PORT} instead (Twisted's
how-to client hardcodes C{ws://localhost:8080/...}; a test's server
listens on a free port). Only the host and port of the URL change.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

REDIRECT = "TXPULSE_COMPAT_REDIRECT"


def swap() -> None:
    """
    Put txpulse's C{WebSocketResource} and C{WebSocketClientEndpoint} in
    C{twisted.web.websocket} (with the redirect of L{REDIRECT}, if set).
    """
    import twisted.web.websocket as twistedWebSocket

    from txpulse import WebSocketClientEndpoint, WebSocketResource

    endpoint: Any = WebSocketClientEndpoint
    redirect = os.environ.get(REDIRECT)
    if redirect:
        source, target = redirect.split("=", 1)

        class RedirectedEndpoint:
            """
            C{WebSocketClientEndpoint.new} with C{source} replaced by
            C{target} in the URL's authority.
            """

            @staticmethod
            def new(reactor: Any, url: str, *args: Any, **kwargs: Any) -> WebSocketClientEndpoint:
                scheme, sep, rest = url.partition("://")
                if rest.startswith(source + "/") or rest == source:
                    rest = target + rest[len(source) :]
                return WebSocketClientEndpoint.new(reactor, scheme + sep + rest, *args, **kwargs)

        endpoint = RedirectedEndpoint
    twistedWebSocket.WebSocketResource = WebSocketResource  # type: ignore[misc]
    twistedWebSocket.WebSocketClientEndpoint = endpoint


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("twist", "run"):
        raise SystemExit(__doc__)
    swap()
    if argv[0] == "twist":
        from twisted.application.twist._twist import Twist

        Twist.main(argv)
    else:
        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])

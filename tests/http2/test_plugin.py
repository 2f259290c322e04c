"""
The twistd plugin and HTTP/2: its site offers h2 (with WebSockets over it)
by default, C{--no-http2} offers only HTTP/1.1, and graceful shutdown knows
the site (for GOAWAY).
"""

from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService

from txpulse.plugin.shutdown import GracefulShutdown
from txpulse.plugin.tap import Options, makeService


def _site(*argv: str) -> object:
    options = Options()
    options.parseOptions(["--listen", "tcp:0", *argv])
    service = makeService(options)
    listeners = [s for s in service if isinstance(s, StreamServerEndpointService)]
    shutdown = next(s for s in service if isinstance(s, GracefulShutdown))
    site = listeners[0].factory
    assert shutdown._sites == [site]
    return site


def test_plugin_offers_h2_by_default_and_not_with_no_http2() -> None:
    """
    By default the plugin's site offers C{h2} then C{http/1.1} in ALPN (its
    ssl listeners serve WebSockets over HTTP/2); C{--no-http2} offers only
    C{http/1.1}.
    """
    assert _site().acceptableProtocols() == [b"h2", b"http/1.1"]  # type: ignore[attr-defined]
    assert _site("--no-http2").acceptableProtocols() == [b"http/1.1"]  # type: ignore[attr-defined]

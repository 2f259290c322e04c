# -*- test-case-name: tests.logs.test_redact,tests.server.test_site -*-
"""
The access log of L{txpulse.server.site.WebSocketSite}: Twisted's combined
format, without credentials and with every client-chosen field clipped.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address

from ..logs.redact import clip, redactText
from ..wire.twistedinternals import escapeLogField

__all__ = ["redactingLogFormatter"]


def redactingLogFormatter(timestamp: str, request: Any) -> str:
    """
    Twisted's combined access-log format (C{combinedLogFormatter}), with
    credentials redacted (C{?ws_token=} values in the request line and the
    referrer, C{Bearer} credentials; see L{txpulse.logs.redact}) and every field
    the client chose (method, request target, protocol, referrer, user
    agent) cut to L{txpulse.logs.redact.MAX_LOGGED_LENGTH} characters, with its
    length (L{txpulse.logs.redact.clip}): whatever a client sends (request lines
    and headers of up to 16 KiB), a line stays under about 1.2 KiB.
    L{WebSocketSite}'s default C{logFormatter}. The address is the request's
    C{getClientAddress()}: behind a trusted proxy, the forwarded client's
    (L{txpulse.server.proxies}).
    """
    address = request.getClientAddress()
    ip = address.host if isinstance(address, (IPv4Address, IPv6Address)) else "-"

    def field(value: bytes | None) -> str:
        return clip(redactText(escapeLogField(value or b"-")))

    method, uri, protocol = field(request.method), field(request.uri), field(request.clientproto)
    referrer, agent = field(request.getHeader(b"referer")), field(request.getHeader(b"user-agent"))
    return (
        f'"{escapeLogField(ip)}" - - {timestamp} "{method} {uri} {protocol}" '
        f'{request.code:d} {request.sentLength or "-"} "{referrer}" "{agent}"'
    )

# -*- test-case-name: tests.server.test_site -*-
"""
The bounds of L{txpulse.server.site.WebSocketSite}: the defaults of its
settings, the process's open-files limit (which the total connection cap
follows), and the canned answers sent when a bound is hit (C{408}, C{503},
and the refusals of a request head).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_MAX_REQUESTS_PER_CONNECTION",
    "DEFAULT_MAX_CONNECTIONS_PER_ADDRESS",
    "DEFAULT_MAX_REQUEST_BODY",
    "REFUSAL_LOG_INTERVAL",
    "defaultMaxConnections",
    "raiseOpenFilesLimit",
]

#: Seconds a request (head and body) has to arrive, from its first byte.
DEFAULT_REQUEST_TIMEOUT = 10.0

#: Seconds a connection may idle between two requests.
DEFAULT_KEEPALIVE_TIMEOUT = 15.0

#: Seconds a response being written may go without the peer taking any of it.
DEFAULT_SEND_TIMEOUT = 20.0

#: Requests served on one connection before it is closed.
DEFAULT_MAX_REQUESTS_PER_CONNECTION = 100

#: Connections open at once from one client address.
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256

#: Largest request body accepted, in bytes (nginx's default too).
DEFAULT_MAX_REQUEST_BODY = 1 << 20

#: Seconds over which refused connections are summed up in one log line.
REFUSAL_LOG_INTERVAL = 10.0

#: Request bodies up to this size are kept in memory; larger ones are
#: spooled to a temporary file once they grow past it.
_BODY_IN_MEMORY = 64 * 1024


def defaultMaxConnections() -> int:
    """
    The default total connection cap: the process's open-files limit
    (C{RLIMIT_NOFILE}, soft) less a reserve for everything else the
    process opens (listening sockets, log files, files being served, broker
    connections, and the connections Twisted accepts in one go, up to 100,
    before a refused one is closed): a tenth of the limit, at least 128 and
    at most 1,024. With 1,024 files that is 896 connections; with 20,000,
    18,976.

    @return: the cap, or 0 (no cap) when the limit is unknown or infinite.
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 0
    reserve = min(1024, max(128, soft // 10))
    return max(soft - reserve, 1)


def raiseOpenFilesLimit() -> tuple[int, int]:
    """
    Raise the soft open-files limit (C{RLIMIT_NOFILE}) to the hard limit,
    which an unprivileged process may do (capped at 1,048,576 when the hard
    limit is infinite). A failure leaves the limit as it was.

    @return: the soft limit before and after.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return (0, 0)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            return (soft, soft)
        return (soft, target)
    return (soft, soft)


# -- the answers sent when a bound is hit (each closes the connection) --


def _response(status: int, phrase: str, message: str) -> bytes:
    body = message.encode("utf-8") + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"Connection: close\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"\r\n" % (status, phrase.encode("ascii"), len(body))
    ) + body


_TIMEOUT_RESPONSE = _response(408, "Request Timeout", "request not received in time")
_BUSY_RESPONSE = _response(503, "Service Unavailable", "too many connections")


def _tooLarge(limit: int) -> str:
    """The message of a C{413} for a body over C{limit} bytes."""
    return "this server takes no request bodies" if not limit else f"request body over {limit} bytes"

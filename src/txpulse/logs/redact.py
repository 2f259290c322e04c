# -*- test-case-name: tests.logs.test_redact -*-
"""
Keep credentials out of what is printed: log lines, access logs and the
CLI's status lines; and keep what a client sent from making a log line
long (L{clip}).

A browser token travels in the URL (C{?ws_token=...}, browsers cannot set
headers on a WebSocket), so every place that prints a URL or a request
target prints the token too, and a log file becomes a list of working
credentials. L{redactURL} replaces the value of each credential parameter
with C{[REDACTED]}; L{redactText} does the same, and hides
C{Authorization}-style credentials (C{Bearer <key>}), inside any text such
as an access log line.

Standard library only: used by the server (resource, site, auth) and the
client (CLI) alike.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

__all__ = ["REDACTED", "SECRET_PARAMETERS", "MAX_LOGGED_LENGTH", "redactURL", "redactText", "clip", "loggableURL"]

#: What replaces a secret.
REDACTED = "[REDACTED]"

#: Query parameters whose values are credentials (compared after
#: percent-decoding, without regard to case).
SECRET_PARAMETERS = frozenset({"ws_token", "access_token", "token"})

#: The most characters of one client-supplied string (a request target, a
#: header value, an error message quoting one) a log line shows: a client
#: cannot make a line much longer than this, whatever it sends (Twisted
#: takes request lines and headers of up to 16 KiB).
MAX_LOGGED_LENGTH = 200

# A query parameter inside free text: the name (possibly percent-encoded) and
# its value, up to the next separator or the end of the URL in the text
# (whitespace or a quote: an access log line quotes the request line).
_PARAMETER = re.compile(r"([?&;])([^=&;?#\s\"']+)=([^&;#\s\"']*)")

# "Bearer <credentials>" / "Basic <credentials>", as in an Authorization header.
_AUTHORIZATION = re.compile(r"\b(Bearer|Basic)(\s+)[^\s\"',]+", re.IGNORECASE)


def _isSecret(name: str) -> bool:
    return unquote_plus(name).lower() in SECRET_PARAMETERS


def _redactParameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if not value or not _isSecret(name):
        return match.group(0)
    return f"{separator}{name}={REDACTED}"


def redactURL(url: str) -> str:
    """
    C{url} (or a request target such as C{/chat?ws_token=...}) with the
    value of each credential parameter (L{SECRET_PARAMETERS}) replaced by
    L{REDACTED}; everything else unchanged.
    """
    return _PARAMETER.sub(_redactParameter, url)


def redactText(text: str) -> str:
    """
    C{text} (a log line, an error message) with credential parameters of
    any URL in it and C{Bearer}/C{Basic} credentials replaced by
    L{REDACTED}.
    """
    return _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", redactURL(text))


def clip(text: str, limit: int = MAX_LOGGED_LENGTH) -> str:
    """
    C{text} as a log line may show it: whole up to C{limit} characters;
    beyond, its first C{limit} characters, an ellipsis and its length, e.g.
    C{/echo?aaaa... (12010 characters)} (in ASCII, as access logs are).
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def loggableURL(url: str) -> str:
    """
    C{url} (a request target) as a log line shows it: redacted
    (L{redactURL}), then clipped (L{clip}).
    """
    return clip(redactURL(url))

# -*- test-case-name: tests.core.test_httphead -*-
"""
One-pass parse of an ordinary HTTP/1.1 request head: the shape of every
WebSocket upgrade that browsers and libraries send.

Why: a general HTTP/1.1 parser (C{twisted.web}'s) reads a head line by line,
a few Python calls per header field. A WebSocket server opens thousands of
connections a second, each with one small C{GET} head that arrives in one
read; parsing that head with two regular expressions costs a fraction of
it. (It is the server's fast path: L{txpulse.server.channel}.)

The contract that makes it safe to use in front of a full parser:
L{parseRequestHead} answers C{None} for anything it does not accept, and the
caller then gives the very same bytes to the full parser, which decides
(and refuses what is malformed, with its own status codes). So this parser
is exact only on what it accepts, and accepts a strict subset of what
C{twisted.web} accepts, read the same way: the same method, target, version
and header fields, in order, values without their surrounding blanks.

Accepted: exactly one complete head and nothing after it; the request line
C{GET <target> HTTP/1.1} with a target of printable ASCII (no blank);
fields C{name: value}, the name an RFC 9110 token, the value without CR, LF
or NUL; at most C{maxFields} fields and C{maxSize} bytes in all.
Everything else is the full parser's: another method or version, a body
(C{Content-Length}, C{Transfer-Encoding}), C{Expect}, an obsolete line
folding, a bare LF, a pipelined request, a partial head.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["RequestHead", "parseRequestHead"]

#: The request line (at the start of the head).
_REQUEST_LINE = re.compile(rb"GET ([!-~]+) HTTP/1\.1\r\n")

#: A whole field line, from a line start: the name, and the value without
#: the blanks before it (those after it, rare, are stripped in Python).
_FIELD = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n\x00]*)\r\n", re.MULTILINE)

#: Fields that mean a body or an interim answer (the full parser's job),
#: lowercased, as they start a line.
_NOT_OURS = (b"\ncontent-length:", b"\ntransfer-encoding:", b"\nexpect:")


class RequestHead(NamedTuple):
    """
    A request head L{parseRequestHead} accepted.

    @ivar method: C{b"GET"}.
    @ivar target: the request target, as sent (e.g. C{b"/ws?x=1"}).
    @ivar version: C{b"HTTP/1.1"}.
    @ivar fields: the header fields in order, C{(name, value)}, the name as
        sent (any case), the value without surrounding blanks.
    """

    method: bytes
    target: bytes
    version: bytes
    fields: list[tuple[bytes, bytes]]


def parseRequestHead(data: bytes, maxSize: int, maxFields: int) -> RequestHead | None:
    """
    Parse C{data} if it is exactly one ordinary C{GET} request head (see
    the module docstring), else C{None}: then give C{data} to a full parser.

    @param maxSize: the largest head accepted, in bytes.
    @param maxFields: the most header fields accepted.
    """
    if len(data) > maxSize or data[-4:] != b"\r\n\r\n":
        return None
    line = _REQUEST_LINE.match(data)
    if line is None:
        return None
    # The field lines, each with its CRLF (the blank line's cut off).
    block = data[line.end() : -2]
    fields = _FIELD.findall(block)
    # Every LF ends a field line that matched (matches start at line starts
    # and hold one LF, at their end): then the matches tile the block, so
    # there is no malformed line, bare LF or CR, or second head in it.
    if len(fields) != block.count(b"\n") or len(fields) > maxFields:
        return None
    lowered = b"\n" + block.lower()
    for name in _NOT_OURS:
        if name in lowered:
            return None
    if b" \r\n" in block or b"\t\r\n" in block:
        fields = [(name, value.rstrip(b" \t")) for name, value in fields]
    return RequestHead(b"GET", line.group(1), b"HTTP/1.1", fields)

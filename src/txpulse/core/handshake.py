# -*- test-case-name: tests.core.test_handshake -*-
"""
The opening handshake (RFC 6455 §4): request validation, the accept key,
subprotocol selection and the origin check.

Functions take an I{already parsed} request (method, HTTP version, header
pairs): the web server has parsed it, and parsing it again would only add a
second, divergent HTTP parser.

Each failure raises a L{txpulse.core.exceptions.HandshakeError} subclass whose
C{statusCode} (and C{headers}) say what the HTTP answer must be.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .exceptions import InvalidOrigin, InvalidUpgrade, NegotiationError

__all__ = [
    "GUID",
    "UpgradeRequest",
    "accept_key",
    "header_tokens",
    "validate_request",
    "validate_upgrade",
    "validate_extended_connect",
    "select_subprotocol",
    "check_origin",
    "is_same_origin",
    "SAME_ORIGIN",
    "ResponseHead",
    "client_request",
    "parse_response_head",
    "validate_response",
    "extended_connect_headers",
    "validate_extended_connect_response",
]

#: RFC 6455 §1.3: appended to the client's key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 6455 §4.4: the only protocol version this implementation speaks.
SUPPORTED_VERSION = "13"

Headers = Sequence[tuple[str, str]]

#: An entry of an origin allow-list meaning "the page's own server": the
#: C{Origin}'s host and port must be those of the request's C{Host}.
SAME_ORIGIN = "same-origin"

#: The port a URL scheme implies when its origin names none.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """
    The WebSocket-relevant parts of a validated upgrade request.

    @ivar key: the client's C{Sec-WebSocket-Key}.
    @ivar subprotocols: the subprotocols the client offers, in its order.
    @ivar extensions: the raw C{Sec-WebSocket-Extensions} offers.
    @ivar origin: the C{Origin} header, or C{None} (a non-browser client).
    @ivar host: the C{Host} header (C{None} only when built by hand).
    """

    key: str
    subprotocols: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    origin: str | None = None
    host: str | None = None


def accept_key(key: str) -> str:
    """
    Compute C{Sec-WebSocket-Accept} for a client's C{Sec-WebSocket-Key}
    (RFC 6455 §4.2.2, step 5.4).
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _values(headers: Headers, name: str) -> list[str]:
    lname = name.lower()
    return [value for key, value in headers if key.lower() == lname]


#: No values (a header that is absent).
_NONE: list[str] = []


def _index(headers: Headers) -> dict[str, list[str]]:
    """
    The values of C{headers} by lowercased name, in order: one pass over
    them (a handshake looks up nine names).
    """
    index: dict[str, list[str]] = {}
    for key, value in headers:
        name = key.lower()
        values = index.get(name)
        if values is None:
            index[name] = [value]
        else:
            values.append(value)
    return index


def header_tokens(values: Iterable[str]) -> list[str]:
    """
    Split comma-separated header values into trimmed, non-empty tokens
    (RFC 9110 §5.6.1: a list may span several header lines, and empty
    elements are ignored).
    """
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def validate_request(method: str, http_version: str, headers: Headers) -> UpgradeRequest:
    """
    Check that a request is a valid WebSocket upgrade (RFC 6455 §4.2.1).

    @param method: the request method (must be C{GET}).
    @param http_version: e.g. C{"HTTP/1.1"}; 1.1 or later is required.
    @param headers: the header pairs, names in any case.
    @raise InvalidUpgrade: 426 when C{Upgrade}/C{Connection} do not ask for
        a WebSocket, or the version is not 13 (with
        C{Sec-WebSocket-Version: 13} in the answer, §4.4).
    @raise NegotiationError: 400 for a non-GET method, HTTP/1.0, a missing
        C{Host}, or a missing, duplicated or malformed key.
    """
    return validate_upgrade(method, http_version, _index(headers))


def validate_upgrade(method: str, http_version: str, fields: Mapping[str, Sequence[str]]) -> UpgradeRequest:
    """
    L{validate_request}, for headers already gathered by name: C{fields}
    maps each lowercased name to its values, in order (what a web server's
    header table holds, without a pass to build the pairs).
    """
    if method != "GET" and method.upper() != "GET":
        raise NegotiationError(f"WebSocket upgrade needs GET, not {method}", 405, (("Allow", "GET"),))
    if http_version != "HTTP/1.1" and not _is_http11_or_later(http_version):
        raise NegotiationError(f"WebSocket upgrade needs HTTP/1.1, not {http_version}")
    if not _has_token(fields.get("upgrade", _NONE), "websocket"):
        raise InvalidUpgrade(
            "missing 'Upgrade: websocket'",
            headers=(("Upgrade", "websocket"), ("Connection", "Upgrade")),
        )
    if not _has_token(fields.get("connection", _NONE), "upgrade"):
        raise InvalidUpgrade(
            "missing 'Connection: Upgrade'",
            headers=(("Upgrade", "websocket"), ("Connection", "Upgrade")),
        )
    hosts = fields.get("host", _NONE)
    if len(hosts) != 1:
        raise NegotiationError("exactly one Host header is required")
    versions = fields.get("sec-websocket-version", _NONE)
    if len(versions) != 1 or versions[0].strip() != SUPPORTED_VERSION:
        raise InvalidUpgrade(
            "unsupported Sec-WebSocket-Version (only 13 is spoken)",
            headers=(("Sec-WebSocket-Version", SUPPORTED_VERSION),),
        )
    keys = fields.get("sec-websocket-key", _NONE)
    if len(keys) != 1:
        raise NegotiationError("exactly one Sec-WebSocket-Key header is required")
    key = keys[0].strip()
    if not _is_valid_key(key):
        raise NegotiationError("Sec-WebSocket-Key must be 16 bytes, base64-encoded")
    return _offer(fields, key, hosts[0])


def _offer(fields: Mapping[str, Sequence[str]], key: str, host: str) -> UpgradeRequest:
    """
    What a valid opening request (HTTP/1.1 upgrade or HTTP/2 extended
    CONNECT) offers: subprotocols, extensions, its one C{Origin} if any.

    @raise NegotiationError: for more than one C{Origin}.
    """
    origins = fields.get("origin", _NONE)
    if len(origins) > 1:
        raise NegotiationError("more than one Origin header")
    subprotocols = fields.get("sec-websocket-protocol")
    extensions = fields.get("sec-websocket-extensions")
    return UpgradeRequest(
        key=key,
        subprotocols=tuple(header_tokens(subprotocols)) if subprotocols else (),
        extensions=tuple(header_tokens(extensions)) if extensions else (),
        origin=origins[0].strip() if origins else None,
        host=host.strip(),
    )


def _has_token(values: Sequence[str], token: str) -> bool:
    """
    Whether the comma-separated list in C{values} holds C{token} (given
    lowercased), in any case; one comparison when the list is just it.
    """
    for value in values:
        if value.lower() == token:
            return True
    return token in [element.lower() for element in header_tokens(values)]


def validate_extended_connect(method: str, protocol: str | None, headers: Headers) -> UpgradeRequest:
    """
    Check that an HTTP/2 request is a valid WebSocket bootstrap (RFC 8441
    §4-5): an extended CONNECT whose C{:protocol} is C{websocket}.

    The HTTP/2 layer has already checked what RFC 8441 §4 asks of the
    pseudo-headers themselves (C{:scheme} and C{:path} present, C{:protocol}
    only on a CONNECT); C{:authority} arrives here as C{Host}. There is no
    C{Upgrade}, C{Connection} nor C{Sec-WebSocket-Key} (RFC 8441 §5: they
    are HTTP/1.1 only), so the returned request's C{key} is empty.

    @param method: the C{:method} (must be C{CONNECT}).
    @param protocol: the C{:protocol} pseudo-header, or C{None} when absent.
    @param headers: the regular header pairs, names in any case.
    @raise NegotiationError: 405 for another method; 400 for a missing
        C{:protocol} or one other than C{websocket}, a missing or repeated
        C{:authority}, a C{Sec-WebSocket-Version} other than 13 (with
        C{Sec-WebSocket-Version: 13} in the answer, RFC 6455 §4.4: a 426
        would ask for an HTTP/1.1 upgrade, which HTTP/2 does not have), or
        more than one C{Origin}.
    """
    if method.upper() != "CONNECT":
        raise NegotiationError(f"a WebSocket over HTTP/2 needs CONNECT, not {method}", 405, (("Allow", "CONNECT"),))
    if protocol is None:
        raise NegotiationError("CONNECT without :protocol (RFC 8441 §4)")
    if protocol.strip().lower() != "websocket":
        raise NegotiationError(f"unsupported :protocol {protocol[:40]!r} (only websocket is spoken)")
    index = _index(headers)
    # (A Host header may repeat :authority; the HTTP/2 layer checked they agree.)
    hosts = sorted(set(index.get("host", _NONE)))
    if len(hosts) != 1:
        raise NegotiationError("exactly one :authority is required")
    versions = index.get("sec-websocket-version", _NONE)
    if len(versions) != 1 or versions[0].strip() != SUPPORTED_VERSION:
        raise NegotiationError(
            "unsupported Sec-WebSocket-Version (only 13 is spoken)",
            headers=(("Sec-WebSocket-Version", SUPPORTED_VERSION),),
        )
    return _offer(index, "", hosts[0])


def _is_http11_or_later(version: str) -> bool:
    prefix, _, number = version.partition("/")
    if prefix.upper() != "HTTP":
        return False
    major, _, minor = number.partition(".")
    try:
        return (int(major), int(minor or "0")) >= (1, 1)
    except ValueError:
        return False


def _is_valid_key(key: str) -> bool:
    # RFC 6455 §4.2.1 item 5: a base64-encoded value that decodes to 16 bytes.
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def select_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """
    Choose the subprotocol to answer with.

    The server's order of preference wins (RFC 6455 §4.2.2 leaves the choice
    to the server). C{None} means no header in the answer: the client offered
    nothing the server speaks, which RFC 6455 allows (the client then decides
    whether to go on).
    """
    offered_set = set(offered)
    for candidate in supported:
        if candidate in offered_set:
            return candidate
    return None


def check_origin(origin: str | None, allowed: Sequence[str] | None, host: str | None = None) -> None:
    """
    Enforce an C{Origin} allow-list (RFC 6455 §10.2).

    @param origin: the request's C{Origin}, or C{None} when absent. Browsers
        always send one, so its absence means a non-browser client, which an
        allow-list (a defence against cross-site pages) does not concern.
    @param allowed: exact origins (C{"https://example.com"}, compared without
        regard to case), C{"*"} for any, L{SAME_ORIGIN} for the request's
        own host (see L{is_same_origin}), or C{None} for no check.
    @param host: the request's C{Host} header (for L{SAME_ORIGIN}).
    @raise InvalidOrigin: 403 for a present origin outside the list.
    """
    if allowed is None or origin is None:
        return
    lowered = origin.lower()
    for entry in allowed:
        if entry == "*" or entry.lower() == lowered:
            return
        if entry == SAME_ORIGIN and host is not None and is_same_origin(origin, host):
            return
    raise InvalidOrigin(f"origin {origin!r} is not allowed")


def _split_authority(authority: str) -> tuple[str, int | None] | None:
    """
    C{host[:port]} (an IPv6 literal in brackets) as a lower-case host
    without a trailing dot and a port (C{None} when absent), or C{None} when
    malformed.
    """
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_or_empty = authority.partition(":")
        port_text = port_text_or_empty if colon else None
    if not host or any(c in host for c in "/?#@ \t"):
        return None
    if port_text is None:
        return host.lower().rstrip("."), None
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        return None
    return host.lower().rstrip("."), int(port_text)


def is_same_origin(origin: str, host: str) -> bool:
    """
    Whether a page of C{origin} is served by the server the request names
    in C{Host}: the same host name, and the same port (the origin's port, or
    its scheme's default, against the C{Host}'s port; a C{Host} without a
    port matches an origin on its scheme's default port).

    The scheme is not compared: behind a TLS-terminating proxy an C{https}
    page reaches the server over plain HTTP with the same C{Host}. An
    opaque origin (C{"null"}: sandboxed frames, C{file:} pages) is never
    the same origin.
    """
    scheme, sep, authority = origin.strip().partition("://")
    default = _DEFAULT_PORTS.get(scheme.lower())
    if not sep or default is None:
        return False
    mine = _split_authority(authority)
    theirs = _split_authority(host.strip())
    if mine is None or theirs is None:
        return False
    origin_host, origin_port = mine
    host_name, host_port = theirs
    if origin_host != host_name:
        return False
    if host_port is None:
        return origin_port is None or origin_port == default
    return (origin_port if origin_port is not None else default) == host_port


# -- the client's side -------------------------------------------------------

#: The largest response head (status line + headers) a client accepts.
MAX_RESPONSE_HEAD = 64 * 1024
#: The most header lines a client accepts in a response.
MAX_RESPONSE_HEADERS = 128


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """
    A parsed HTTP response status line and headers.

    @ivar status: the status code.
    @ivar reason: the reason phrase.
    @ivar headers: the header pairs in order, names as received.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> list[str]:
        """
        Every value of header C{name} (case-insensitive).
        """
        return _values(self.headers, name)


def client_request(
    host: str,
    target: str,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """
    Serialize the client's upgrade request (RFC 6455 §4.1).

    @param host: the C{Host} header value (C{host} or C{host:port}).
    @param target: the request target (path and query).
    @param key: a fresh C{Sec-WebSocket-Key} (base64 of 16 random bytes).
    @param subprotocols: offered, in the client's order of preference.
    @param origin: an C{Origin} header, if any.
    @param headers: extra header pairs (e.g. C{Authorization}).
    @raise ValueError: for a header name or value containing CR, LF or NUL
        (header injection).
    """
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    if origin is not None:
        lines.append(f"Origin: {origin}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    for line in lines:
        if any(c in line for c in "\r\n\0"):
            raise ValueError(f"invalid character in request line or header: {line!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_response_head(data: bytes | bytearray) -> tuple[ResponseHead, int] | None:
    """
    Parse an HTTP/1.1 response head from the start of C{data}.

    @return: the head and the number of bytes it took, or C{None} if the
        head is not complete yet.
    @raise NegotiationError: for a malformed head, or one larger than
        L{MAX_RESPONSE_HEAD} bytes or L{MAX_RESPONSE_HEADERS} lines.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_RESPONSE_HEAD:
            raise NegotiationError("response head too large")
        return None
    if end > MAX_RESPONSE_HEAD:
        raise NegotiationError("response head too large")
    lines = bytes(data[:end]).decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise NegotiationError(f"malformed status line: {lines[0][:80]!r}")
    if len(lines) - 1 > MAX_RESPONSE_HEADERS:
        raise NegotiationError("too many response headers")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise NegotiationError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip()))
    reason = status_line[2] if len(status_line) > 2 else ""
    return ResponseHead(int(status_line[1]), reason, tuple(headers)), end + 4


def validate_response(
    head: ResponseHead, key: str, offered_subprotocols: Sequence[str], extensions_offered: bool = False
) -> str | None:
    """
    Check a C{101} answer to our upgrade (RFC 6455 §4.1, client steps 1-6).

    @return: the subprotocol the server chose, or C{None}.
    @raise NegotiationError: if the answer does not complete the handshake:
        wrong C{Upgrade}/C{Connection}, a wrong C{Sec-WebSocket-Accept}, a
        subprotocol we did not offer, or an extension we did not offer.
    """
    if head.status != 101:
        raise NegotiationError(f"expected 101, got {head.status}")
    if "websocket" not in [t.lower() for t in header_tokens(head.get("Upgrade"))]:
        raise NegotiationError("101 response without 'Upgrade: websocket'")
    if "upgrade" not in [t.lower() for t in header_tokens(head.get("Connection"))]:
        raise NegotiationError("101 response without 'Connection: Upgrade'")
    accepts = head.get("Sec-WebSocket-Accept")
    if len(accepts) != 1 or accepts[0] != accept_key(key):
        raise NegotiationError("wrong Sec-WebSocket-Accept")
    if not extensions_offered and header_tokens(head.get("Sec-WebSocket-Extensions")):
        # RFC 6455 §4.1 step 5: an extension the client did not offer (when
        # it offered some, the extension's own negotiation checks the answer).
        raise NegotiationError("the server chose an extension that was not offered")
    chosen = header_tokens(head.get("Sec-WebSocket-Protocol"))
    if not chosen:
        return None
    if len(chosen) != 1 or chosen[0] not in offered_subprotocols:
        # RFC 6455 §4.1 step 6.
        raise NegotiationError(f"the server chose subprotocol {', '.join(chosen)!r}, which was not offered")
    return chosen[0]


def extended_connect_headers(
    authority: str,
    path: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    origin: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> list[tuple[bytes, bytes]]:
    """
    The header block of a client's extended CONNECT (RFC 8441 §4-5): the
    pseudo-headers, then C{sec-websocket-version: 13} and the offers, all
    names lowercased (RFC 9113 §8.2.1).

    @param authority: the C{:authority} (C{host} or C{host:port}).
    @param path: the C{:path} (path and query).
    @param extensions: a C{sec-websocket-extensions} offer, if any.
    @param headers: extra header pairs (e.g. C{Authorization}).
    @raise ValueError: for a header name or value containing CR, LF or NUL,
        or a connection-specific header (RFC 9113 §8.2.2).
    """
    block = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", path),
        (":authority", authority),
        ("sec-websocket-version", SUPPORTED_VERSION),
    ]
    if subprotocols:
        block.append(("sec-websocket-protocol", ", ".join(subprotocols)))
    if extensions:
        block.append(("sec-websocket-extensions", extensions))
    if origin is not None:
        block.append(("origin", origin))
    for name, value in headers:
        lowered = name.lower()
        if lowered in ("connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "host"):
            raise ValueError(f"header {name!r} has no place in an HTTP/2 request")
        block.append((lowered, value))
    for name, value in block:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"invalid character in header: {name}: {value!r}")
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in block]


def validate_extended_connect_response(
    status: int, headers: Headers, offered_subprotocols: Sequence[str], extensions_offered: bool = False
) -> str | None:
    """
    Check a 2xx answer to our extended CONNECT (RFC 8441 §5: no
    C{Sec-WebSocket-Accept} in HTTP/2; RFC 6455 §4.1 steps 5-6 for the
    offers).

    @return: the subprotocol the server chose, or C{None}.
    @raise NegotiationError: for another status, or a subprotocol or an
        extension that was not offered.
    """
    if not 200 <= status < 300:
        raise NegotiationError(f"expected 2xx, got {status}")
    index = _index(headers)
    if not extensions_offered and header_tokens(index.get("sec-websocket-extensions", _NONE)):
        raise NegotiationError("the server chose an extension that was not offered")
    chosen = header_tokens(index.get("sec-websocket-protocol", _NONE))
    if not chosen:
        return None
    if len(chosen) != 1 or chosen[0] not in offered_subprotocols:
        raise NegotiationError(f"the server chose subprotocol {', '.join(chosen)!r}, which was not offered")
    return chosen[0]

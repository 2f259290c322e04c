"""
The sans-IO side of RFC 8441: L{validate_extended_connect}, the HTTP/2
counterpart of C{validate_request} (no Upgrade, Connection nor key; the
C{:protocol} pseudo-header instead).
"""

from __future__ import annotations

import pytest

from txpulse.core.exceptions import NegotiationError
from txpulse.core.handshake import validate_extended_connect

BASE = [("host", "example.com:8443"), ("sec-websocket-version", "13")]


def test_valid_extended_connect_gives_the_offers() -> None:
    """
    A CONNECT for C{websocket} with version 13 is valid; the offered
    subprotocols and extensions, the origin and the authority (as C{Host})
    come back, and the key is empty (there is none in HTTP/2).
    """
    upgrade = validate_extended_connect(
        "CONNECT",
        "websocket",
        BASE
        + [
            ("Sec-WebSocket-Protocol", "a, b"),
            ("sec-websocket-protocol", "c"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("origin", "https://example.com"),
        ],
    )
    assert upgrade.key == ""
    assert upgrade.subprotocols == ("a", "b", "c")
    assert upgrade.extensions == ("permessage-deflate",)
    assert (upgrade.origin, upgrade.host) == ("https://example.com", "example.com:8443")


def test_host_repeating_the_authority_is_one_host() -> None:
    """
    A C{Host} header equal to C{:authority} (h2 checks they agree) is not
    a second host.
    """
    assert validate_extended_connect("CONNECT", "websocket", BASE + [("host", "example.com:8443")]).host


@pytest.mark.parametrize(
    ("method", "protocol", "headers", "status", "needle"),
    [
        ("GET", "websocket", BASE, 405, "CONNECT"),
        ("CONNECT", None, BASE, 400, ":protocol"),
        ("CONNECT", "connect-udp", BASE, 400, "unsupported :protocol"),
        ("CONNECT", "websocket", BASE[1:], 400, ":authority"),
        ("CONNECT", "websocket", BASE[:1], 400, "Sec-WebSocket-Version"),
        ("CONNECT", "websocket", BASE[:1] + [("sec-websocket-version", "8")], 400, "Sec-WebSocket-Version"),
        ("CONNECT", "websocket", BASE + [("origin", "a"), ("origin", "b")], 400, "Origin"),
    ],
)
def test_invalid_requests_are_refused_with_their_status(
    method: str, protocol: str | None, headers: list[tuple[str, str]], status: int, needle: str
) -> None:
    """
    Each way an extended CONNECT can be wrong has its status; a wrong
    version's answer names version 13 (RFC 6455 §4.4).
    """
    with pytest.raises(NegotiationError) as caught:
        validate_extended_connect(method, protocol, headers)
    assert caught.value.statusCode == status
    assert needle in str(caught.value)
    if "Version" in needle:
        assert caught.value.headers == (("Sec-WebSocket-Version", "13"),)


def test_protocol_token_is_case_insensitive() -> None:
    """
    C{:protocol} is an upgrade token, compared without regard to case.
    """
    assert validate_extended_connect("CONNECT", "WebSocket", BASE).host == "example.com:8443"


def test_client_header_block() -> None:
    """
    The client's extended CONNECT: pseudo-headers first, version 13, the
    offers, extra headers lowercased; connection-specific headers and
    injected line breaks are refused.
    """
    from txpulse.core.handshake import extended_connect_headers

    block = extended_connect_headers(
        "example.com:8443",
        "/chat?room=1",
        subprotocols=["a", "b"],
        extensions="permessage-deflate",
        origin="https://example.com",
        headers=[("Authorization", "Bearer x")],
    )
    assert block == [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat?room=1"),
        (b":authority", b"example.com:8443"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-protocol", b"a, b"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
        (b"origin", b"https://example.com"),
        (b"authorization", b"Bearer x"),
    ]
    with pytest.raises(ValueError, match="no place"):
        extended_connect_headers("h", "/", headers=[("Connection", "close")])
    with pytest.raises(ValueError, match="invalid character"):
        extended_connect_headers("h", "/", headers=[("x", "a\r\nb: c")])


def test_client_checks_the_answer() -> None:
    """
    A 2xx answer is checked like a 101 (minus the accept key): the chosen
    subprotocol must have been offered, and so must an extension.
    """
    from txpulse.core.handshake import validate_extended_connect_response as check

    assert check(200, [("sec-websocket-protocol", "b")], ["a", "b"]) == "b"
    assert check(200, [], ["a"]) is None
    with pytest.raises(NegotiationError, match="2xx"):
        check(101, [], [])
    with pytest.raises(NegotiationError, match="not offered"):
        check(200, [("sec-websocket-protocol", "c")], ["a"])
    with pytest.raises(NegotiationError, match="extension"):
        check(200, [("sec-websocket-extensions", "permessage-deflate")], [], extensions_offered=False)

"""
Tests for the same-origin check of the handshake core (issue #12, item
12): L{is_same_origin}, and L{check_origin} with L{SAME_ORIGIN}.
"""

from __future__ import annotations

import pytest

from txpulse.core.exceptions import InvalidOrigin
from txpulse.core.handshake import SAME_ORIGIN, check_origin, is_same_origin, validate_request


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://app.example:8080", "app.example:8080", True),
        ("https://app.example", "app.example", True),
        ("https://app.example", "app.example:443", True),
        ("http://app.example", "app.example:80", True),
        ("HTTPS://App.Example.", "app.example", True),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://evil.example:8080", "app.example:8080", False),
        ("http://app.example.evil.example", "app.example", False),
        ("http://app.example:8081", "app.example:8080", False),
        ("http://app.example:81", "app.example", False),
        ("http://app.example", "app.example:443", False),
        ("null", "app.example", False),
        ("file://", "app.example", False),
        ("chrome-extension://abc", "abc", False),
        ("http://app.example/", "app.example", False),
        ("http://user@app.example", "app.example", False),
        ("http://app.example:99999", "app.example:99999", False),
        ("http://[::1", "[::1]", False),
    ],
)
def test_is_same_origin(origin: str, host: str, same: bool) -> None:
    """
    Same host (case and trailing dot aside) and same port, a missing port
    meaning the scheme's default; opaque and malformed origins never match.
    """
    assert is_same_origin(origin, host) is same


def test_check_origin_same_origin_entry() -> None:
    """
    L{SAME_ORIGIN} in the allow-list admits the request's own host, may be
    combined with exact origins, and leaves requests without C{Origin}
    alone; without a C{Host} it admits nothing.
    """
    allowed = [SAME_ORIGIN, "https://app.example"]
    check_origin("http://localhost:8080", allowed, "localhost:8080")
    check_origin("https://app.example", allowed, "localhost:8080")
    check_origin(None, allowed, "localhost:8080")
    with pytest.raises(InvalidOrigin) as refused:
        check_origin("https://evil.example", allowed, "localhost:8080")
    assert refused.value.statusCode == 403
    with pytest.raises(InvalidOrigin):
        check_origin("http://localhost:8080", [SAME_ORIGIN])


def test_validated_request_carries_its_host() -> None:
    """
    The validated upgrade carries the C{Host} the same-origin check needs.
    """
    upgrade = validate_request(
        "GET",
        "HTTP/1.1",
        [
            ("Host", " app.example:8080 "),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    assert upgrade.host == "app.example:8080"

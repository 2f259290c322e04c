"""
Tests for L{txpulse.core.handshake}: server-side request validation.
"""

from __future__ import annotations

import pytest

from txpulse.core.exceptions import HandshakeError, InvalidOrigin, InvalidUpgrade, NegotiationError
from txpulse.core.handshake import accept_key, check_origin, header_tokens, select_subprotocol, validate_request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def headers(**overrides: str | None) -> list[tuple[str, str]]:
    base = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return list(base.items())


def test_accept_key_matches_rfc_example() -> None:
    """
    RFC 6455 §1.3: the sample nonce gives C{s3pPLMBiTxaQ9kYGzzhZRbK+xOo=}.
    """
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request() -> None:
    """
    A minimal valid upgrade is accepted and its offers are collected.
    """
    request = validate_request(
        "GET",
        "HTTP/1.1",
        headers(Sec_WebSocket_Protocol="chat, superchat", Origin="https://a.example"),
    )
    assert request.key == KEY
    assert request.subprotocols == ("chat", "superchat")
    assert request.origin == "https://a.example"


def test_tokens_are_case_insensitive_comma_lists() -> None:
    """
    C{Upgrade}/C{Connection} match case-insensitively inside comma lists
    (e.g. Firefox's C{Connection: keep-alive, Upgrade}).
    """
    validate_request("GET", "HTTP/1.1", headers(Upgrade="WebSocket", Connection="keep-alive, UPGRADE"))
    validate_request(
        "get", "HTTP/1.1", [*headers(Connection=None), ("connection", "keep-alive"), ("CONNECTION", "upgrade")]
    )


def test_header_tokens_skip_empty_elements() -> None:
    """
    Empty list elements and surrounding spaces are ignored.
    """
    assert header_tokens(["a, ,b", " c "]) == ["a", "b", "c"]


def test_non_get_is_refused_with_405() -> None:
    """
    RFC 6455 §4.1: the handshake is a GET.
    """
    with pytest.raises(NegotiationError) as info:
        validate_request("POST", "HTTP/1.1", headers())
    assert info.value.statusCode == 405


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/0.9", "garbage"])
def test_old_http_is_refused_with_400(version: str) -> None:
    """
    RFC 6455 §4.1: HTTP/1.1 or later.
    """
    with pytest.raises(NegotiationError):
        validate_request("GET", version, headers())


@pytest.mark.parametrize(
    "overrides",
    [{"Upgrade": None}, {"Upgrade": "h2c"}, {"Connection": None}, {"Connection": "keep-alive"}],
)
def test_missing_upgrade_tokens_get_426(overrides: dict[str, str | None]) -> None:
    """
    A request that does not ask for a WebSocket upgrade gets 426.
    """
    with pytest.raises(InvalidUpgrade) as info:
        validate_request("GET", "HTTP/1.1", headers(**overrides))
    assert info.value.statusCode == 426


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8"])
def test_wrong_version_gets_426_with_supported_version(version: str | None) -> None:
    """
    RFC 6455 §4.4: answer 426 with C{Sec-WebSocket-Version: 13}.
    """
    with pytest.raises(InvalidUpgrade) as info:
        validate_request("GET", "HTTP/1.1", headers(Sec_WebSocket_Version=version))
    assert info.value.statusCode == 426
    assert ("Sec-WebSocket-Version", "13") in info.value.headers


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "short",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25jZXg=",
        "!!!!!!!!!!!!!!!!!!!!!!==",
    ],
)
def test_bad_key_is_refused_with_400(key: str | None) -> None:
    """
    RFC 6455 §4.2.1: the key must be base64 of exactly 16 bytes.
    """
    with pytest.raises(NegotiationError) as info:
        validate_request("GET", "HTTP/1.1", headers(Sec_WebSocket_Key=key))
    assert info.value.statusCode == 400


def test_duplicate_key_is_refused() -> None:
    """
    Two keys are ambiguous: 400.
    """
    with pytest.raises(NegotiationError):
        validate_request("GET", "HTTP/1.1", [*headers(), ("Sec-WebSocket-Key", KEY)])


def test_missing_host_is_refused() -> None:
    """
    RFC 6455 §4.2.1: a Host header is required.
    """
    with pytest.raises(HandshakeError):
        validate_request("GET", "HTTP/1.1", headers(Host=None))


def test_subprotocol_selection_follows_server_preference() -> None:
    """
    The server's order wins; no overlap means no subprotocol.
    """
    assert select_subprotocol(["a", "b"], ["b", "a"]) == "b"
    assert select_subprotocol(["a", "b"], ["c", "a"]) == "a"
    assert select_subprotocol(["a"], ["c"]) is None
    assert select_subprotocol([], ["c"]) is None


def test_origin_allow_list() -> None:
    """
    An allow-listed origin passes (case-insensitively), others get 403, and
    a missing Origin (a non-browser client) always passes.
    """
    check_origin("https://Good.example", ["https://good.example"])
    check_origin(None, ["https://good.example"])
    check_origin("https://any.example", ["*"])
    check_origin("https://any.example", None)
    with pytest.raises(InvalidOrigin) as info:
        check_origin("https://evil.example", ["https://good.example"])
    assert info.value.statusCode == 403


# -- the client's side ---------------------------------------------------------

from txpulse.core.handshake import client_request, parse_response_head, validate_response  # noqa: E402


def response(status: str = "101 Switching Protocols", **extra: str | None) -> bytes:
    fields: dict[str, str | None] = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(KEY),
    }
    fields.update({k.replace("_", "-"): v for k, v in extra.items()})
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in fields.items() if v is not None)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_client_request_has_the_required_headers() -> None:
    """
    RFC 6455 §4.1: GET, Host, Upgrade, Connection, key, version 13, plus
    offered subprotocols, Origin and extra headers.
    """
    request = client_request(
        "example.com:8080",
        "/chat?room=1",
        KEY,
        subprotocols=["v2", "v1"],
        origin="https://example.com",
        headers=[("Authorization", "Bearer t")],
    ).decode()
    head, _, rest = request.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "GET /chat?room=1 HTTP/1.1"
    parsed = validate_request("GET", "HTTP/1.1", [tuple(line.split(": ", 1)) for line in lines[1:]])  # type: ignore[misc]
    assert parsed.key == KEY and parsed.subprotocols == ("v2", "v1") and parsed.origin == "https://example.com"
    assert "Authorization: Bearer t" in lines
    assert rest == ""


def test_client_request_refuses_header_injection() -> None:
    """
    A header value with CR/LF is refused rather than sent.
    """
    with pytest.raises(ValueError):
        client_request("h", "/", KEY, headers=[("X", "a\r\nEvil: 1")])


def test_parse_response_head_incremental() -> None:
    """
    An incomplete head gives C{None}; a complete one gives the head and its
    length, leaving what follows (frames) alone.
    """
    data = response() + b"\x81\x02hi"
    assert parse_response_head(data[:20]) is None
    head, used = parse_response_head(data)  # type: ignore[misc]
    assert head.status == 101 and data[used:] == b"\x81\x02hi"
    assert head.get("upgrade") == ["websocket"]


@pytest.mark.parametrize(
    "data", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 101 OK\r\nno colon\r\n\r\n", b"x" * 70_000]
)
def test_parse_response_head_rejects_malformed_or_huge_heads(data: bytes) -> None:
    """
    A malformed or oversized response head is a L{NegotiationError}.
    """
    with pytest.raises(NegotiationError):
        parse_response_head(data)


def test_validate_response_accepts_a_correct_101() -> None:
    """
    A correct 101 passes and reports the chosen subprotocol.
    """
    head, _ = parse_response_head(response(Sec_WebSocket_Protocol="v1"))  # type: ignore[misc]
    assert validate_response(head, KEY, ["v2", "v1"]) == "v1"
    head, _ = parse_response_head(response())  # type: ignore[misc]
    assert validate_response(head, KEY, []) is None


@pytest.mark.parametrize(
    "extra",
    [
        {"Sec_WebSocket_Accept": "wrong"},
        {"Sec_WebSocket_Accept": None},
        {"Upgrade": None},
        {"Connection": "keep-alive"},
        {"Sec_WebSocket_Protocol": "v9"},
        {"Sec_WebSocket_Extensions": "permessage-deflate"},
    ],
)
def test_validate_response_rejects_broken_answers(extra: dict[str, str | None]) -> None:
    """
    RFC 6455 §4.1: a wrong accept key, missing upgrade tokens, or a
    subprotocol or extension that was not offered fail the handshake.
    """
    head, _ = parse_response_head(response(**extra))  # type: ignore[misc]
    with pytest.raises(NegotiationError):
        validate_response(head, KEY, ["v1"])

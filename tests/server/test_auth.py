"""
Tests for L{txpulse.server.auth} and the C{txpulse} command: API keys, browser
tokens (signed and encrypted JWTs), the accept hook, C{/@wstoken}, and the
plugin's C{--protect}.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from txpulse.plugin.command import main as command
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.tap import Options, buildRoot
from txpulse.server.auth import ApiKeys, Authenticator, InvalidToken, RequireKey, TokenIssuer, generateKeySet
from txpulse.server.ratelimit import FailureLimiter

from ..support.http import Client
from ..support.requests import upgrade_request
from ..support.tokens import pbes2_token


@pytest.fixture
def keySet() -> str:
    return generateKeySet()


@pytest.fixture
def files(tmp_path: Path, keySet: str) -> tuple[Path, Path]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-alice": "alice", "k-bob": "bob"}))
    jwkFile = tmp_path / "jwk.json"
    jwkFile.write_text(keySet)
    return keys, jwkFile


def test_key_set_has_a_signing_and_an_encryption_key(keySet: str) -> None:
    """
    C{generateKeySet} makes two 256-bit symmetric keys, C{sign} and C{enc}.
    """
    keys = {key["kid"]: key for key in json.loads(keySet)["keys"]}
    assert set(keys) == {"sign", "enc"}
    assert all(key["kty"] == "oct" for key in keys.values())


def test_token_round_trip_and_content_is_private(keySet: str) -> None:
    """
    A token verifies to its identity, and the identity is not readable in
    the token (it is encrypted).
    """
    issuer = TokenIssuer(keySet, lifetime=60, now=lambda: 1000.0)
    token, expires = issuer.issue("alice")
    assert expires == 1060.0
    assert issuer.verify(token) == "alice"
    assert "alice" not in token
    import base64

    for part in token.split("."):
        padded = part + "=" * (-len(part) % 4)
        assert b"alice" not in base64.urlsafe_b64decode(padded)


def test_expired_token_is_refused(keySet: str) -> None:
    """
    A token is refused from its expiry on.
    """
    clock = [1000.0]
    issuer = TokenIssuer(keySet, lifetime=60, now=lambda: clock[0])
    token, _ = issuer.issue("alice")
    clock[0] = 1059.9
    assert issuer.verify(token) == "alice"
    clock[0] = 1060.0
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token)


def test_tampered_or_foreign_tokens_are_refused(keySet: str) -> None:
    """
    Changing any part of a token, or presenting one made with another key
    set, or garbage, is refused.
    """
    issuer = TokenIssuer(keySet)
    token, _ = issuer.issue("alice")
    parts = token.split(".")
    for index in range(len(parts)):
        changed = list(parts)
        changed[index] = changed[index][:-2] + ("AA" if not changed[index].endswith("AA") else "BB")
        with pytest.raises(InvalidToken):
            issuer.verify(".".join(changed))
    foreign, _ = TokenIssuer(generateKeySet()).issue("alice")
    for bad in (foreign, "", "not.a.token", "a.b.c.d.e"):
        with pytest.raises(InvalidToken):
            issuer.verify(bad)


def test_key_set_without_both_keys_is_refused() -> None:
    """
    A key set lacking C{sign} or C{enc}, or not JSON, is a L{ValueError}.
    """
    only = json.loads(generateKeySet())
    only["keys"] = only["keys"][:1]
    for bad in (json.dumps(only), "{}", "nonsense"):
        with pytest.raises(ValueError):
            TokenIssuer(bad)


def test_api_keys_file(tmp_path: Path) -> None:
    """
    An API key file maps keys to identities; a malformed one is refused.
    """
    path = tmp_path / "keys.json"
    path.write_text('{"abc": "alice"}')
    keys = ApiKeys.fromFile(path)
    assert keys.identify("abc") == "alice" and keys.identify("nope") is None
    for bad in ("[1]", '{"k": 3}', "not json"):
        path.write_text(bad)
        with pytest.raises(ValueError):
            ApiKeys.fromFile(path)
    with pytest.raises(ValueError):
        ApiKeys.fromFile(tmp_path / "missing.json")


def protected(files: tuple[Path, Path], *extra: str) -> Site:
    keys, jwkFile = files
    options = Options()
    options.parseOptions(
        ["--auth-keys", str(keys), "--jwk", str(jwkFile), "--protect", "/pubsub", "--protect", "chat", *extra]
    )
    clock = Clock()
    return Site(buildRoot(options, ConnectionRegistry(clock=clock, logConnections=False), clock), reactor=clock)


def test_protected_mount_needs_a_valid_bearer_key(files: tuple[Path, Path]) -> None:
    """
    A protected mount answers 401 (with a Bearer challenge) before any 101
    without a key or with a wrong one, and 101 with a good one; unprotected
    mounts stay open.
    """
    site = protected(files)
    head, _ = Client(site).request(upgrade_request("/pubsub"))
    assert head.startswith(b"HTTP/1.1 401") and b"Bearer" in head
    head, _ = Client(site).request(upgrade_request("/pubsub", Authorization="Bearer wrong"))
    assert head.startswith(b"HTTP/1.1 401")
    head, _ = Client(site).request(upgrade_request("/pubsub", Authorization="Bearer k-alice"))
    assert head.startswith(b"HTTP/1.1 101")
    head, _ = Client(site).request(upgrade_request("/ws"))
    assert head.startswith(b"HTTP/1.1 101"), "the heartbeat demo stays open"


def test_identity_reaches_the_application(files: tuple[Path, Path]) -> None:
    """
    The key's identity becomes C{transport.identity}.
    """
    keys, _ = files
    authenticator = Authenticator(ApiKeys.fromFile(keys))

    class Request:
        args: dict[bytes, list[bytes]] = {}

        def getHeader(self, name: str) -> str | None:
            return "Bearer k-bob" if name == "authorization" else None

        def getClientAddress(self) -> IPv4Address:
            return IPv4Address("TCP", "127.0.0.1", 50000)

    assert authenticator(Request()) == "bob"  # type: ignore[arg-type]


def test_browser_token_flow(files: tuple[Path, Path]) -> None:
    """
    C{GET /@wstoken} with a Bearer key returns a token; C{?ws_token=} with
    it opens a protected mount; without a key the endpoint answers 401; a
    tampered token is refused with 401.
    """
    site = protected(files)
    head, body = Client(site).request(b"GET /@wstoken HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    head, body = Client(site).request(b"GET /@wstoken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-alice\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"no-store" in head.lower()
    token = json.loads(body)["token"]
    head, _ = Client(site).request(upgrade_request(f"/chat?ws_token={token}"))
    assert head.startswith(b"HTTP/1.1 101")
    head, _ = Client(site).request(upgrade_request(f"/chat?ws_token={token[:-3]}xyz"))
    assert head.startswith(b"HTTP/1.1 401")


class _Plain(Resource):
    """
    A leaf answering C{ok} as plain text, with its own caching header.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setHeader("Content-Type", "text/plain")
        request.setHeader("Cache-Control", "max-age=5")
        return b"ok"


def test_require_key_sets_headers_only_on_refusal() -> None:
    """
    L{RequireKey} answers 401 with the Bearer challenge, as uncached JSON,
    without a key or with a wrong one (saying which), and 429 with
    C{Retry-After} over the limit; with a good key the wrapped resource
    answers with its own headers and nothing of the refusal's.
    """
    clock = Clock()
    limiter = FailureLimiter(burst=2, period=20.0, clock=clock)
    site = Site(RequireKey(_Plain(), ApiKeys({"k-alice": "alice"}), limiter), reactor=clock)

    def get(key: str | None) -> tuple[list[bytes], bytes]:
        auth = b"" if key is None else b"Authorization: Bearer %s\r\n" % key.encode()
        head, body = Client(site).request(b"GET / HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n")
        return head.lower().split(b"\r\n"), body

    head, body = get("k-alice")
    assert head[0].startswith(b"http/1.1 200") and body == b"ok"
    assert b"content-type: text/plain" in head and b"cache-control: max-age=5" in head
    assert not [line for line in head if line.startswith((b"www-authenticate", b"retry-after"))]
    for key, error in ((None, "a valid API key is required"), ("wrong", "invalid API key")):
        head, body = get(key)
        assert head[0] == b"http/1.1 401 unauthorized" and error in json.loads(body)["error"]
        assert b'www-authenticate: bearer realm="txpulse"' in head and b"cache-control: no-store" in head
        assert b"content-type: application/json" in head
    get("wrong")
    head, body = get("k-alice")
    assert head[0] == b"http/1.1 429 too many requests", "the phrase, not Twisted's 'Unknown Status'"
    assert b"retry-after: 10" in head and b"too many" in body


def test_plugin_auth_usage_errors(files: tuple[Path, Path], tmp_path: Path) -> None:
    """
    --protect without --auth-keys, --jwk without --auth-keys and a protected
    path that is no mount are usage errors; a bad keys file or key set
    stops the plugin with one line naming the file (exit 1, no usage text).
    """
    keys, jwkFile = files
    bad = tmp_path / "bad.json"
    bad.write_text("nope")
    for argv in (
        ["--protect", "/pubsub"],
        ["--jwk", str(jwkFile)],
        ["--auth-keys", str(keys), "--protect", "/nowhere"],
    ):
        with pytest.raises(usage.UsageError):
            Options().parseOptions(argv)
    for argv in (["--auth-keys", str(bad)], ["--auth-keys", str(keys), "--jwk", str(bad)]):
        with pytest.raises(SystemExit) as exited:
            Options().parseOptions(argv)
        message = str(exited.value.code)
        assert message.startswith("txpulse: ") and str(bad) in message and "\n" not in message


def test_gen_key_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    C{txpulse gen-key} prints a usable key set, or writes it to a new file
    readable by its owner only (never overwriting one).
    """
    assert command(["gen-key"]) == 0
    printed = capsys.readouterr().out
    TokenIssuer(printed)
    target = tmp_path / "jwk.json"
    assert command(["gen-key", "-o", str(target)]) == 0
    TokenIssuer.fromFile(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert command(["gen-key", "-o", str(target)]) == 1
    assert "cannot create" in capsys.readouterr().err


def test_gen_api_key_command(capsys: pytest.CaptureFixture[str]) -> None:
    """
    C{txpulse gen-api-key NAME} prints a random key mapped to NAME.
    """
    assert command(["gen-api-key", "carol"]) == 0
    ((key, identity),) = json.loads(capsys.readouterr().out).items()
    assert identity == "carol" and len(key) >= 40


# -- issue #12 item 5: only the algorithms we issue, and bounded work ------------------


def mean_verify_seconds(issuer: TokenIssuer, token: str, rounds: int) -> float:
    import time

    started = time.perf_counter()
    for _ in range(rounds):
        with pytest.raises(InvalidToken):
            issuer.verify(token)
    return (time.perf_counter() - started) / rounds


def test_pbes2_token_is_refused_before_any_key_derivation(keySet: str) -> None:
    """
    A PBES2 token with the largest C{p2c} jwcrypto takes cost 6.4-6.9 ms per
    verify (36x a valid token); it is now refused from its header, in
    microseconds: far below what verifying a token of ours costs.
    """
    issuer = TokenIssuer(keySet)
    token = pbes2_token()
    with pytest.raises(InvalidToken, match="unexpected algorithm"):
        issuer.verify(token)
    good, _ = issuer.issue("alice")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    hostile = mean_verify_seconds(issuer, token, 200)
    ours = mean_verify_seconds(issuer, tampered, 200)
    assert hostile < 100e-6, f"{hostile * 1e6:.0f} us per PBES2 token"
    assert hostile < ours / 3, (hostile, ours)


def test_only_the_algorithms_we_issue_are_accepted(keySet: str) -> None:
    """
    Even made with the right keys, a token with another key-management,
    content-encryption or signature algorithm, another C{kid}, or an extra
    header parameter is refused: the headers must be exactly ours.
    """
    from jwcrypto import jwk, jwt

    keys = jwk.JWKSet.from_json(keySet)
    sign, enc = keys.get_key("sign"), keys.get_key("enc")
    issuer = TokenIssuer(keySet)

    def make(outer: dict[str, str], inner: dict[str, str]) -> str:
        signed = jwt.JWT(header=inner, claims={"sub": "mallory", "exp": 4e9})
        signed.make_signed_token(sign)
        encrypted = jwt.JWT(header=outer, claims=signed.serialize())
        encrypted.make_encrypted_token(enc)
        return str(encrypted.serialize())

    ours_outer = {"alg": "A256KW", "enc": "A256GCM", "kid": "enc", "cty": "JWT"}
    ours_inner = {"alg": "HS256", "kid": "sign"}
    assert issuer.verify(make(ours_outer, ours_inner)) == "mallory"
    for outer, inner in (
        ({**ours_outer, "alg": "A256GCMKW"}, ours_inner),
        ({**ours_outer, "alg": "dir"}, ours_inner),
        ({**ours_outer, "enc": "A128GCM"}, ours_inner),
        ({**ours_outer, "zip": "DEF"}, ours_inner),
        (ours_outer, {**ours_inner, "typ": "JWT"}),
        (ours_outer, {**ours_inner, "kid": "other"}),
    ):
        with pytest.raises(InvalidToken, match="unexpected algorithm"):
            issuer.verify(make(outer, inner))


def test_oversized_token_is_refused_unread(keySet: str) -> None:
    """
    A token longer than L{MAX_TOKEN_LENGTH} is refused before it is split
    or decoded; one of ours for a long identity stays well below it.
    """
    from txpulse.server.auth import MAX_TOKEN_LENGTH

    issuer = TokenIssuer(keySet)
    long, _ = issuer.issue("a" * 250)
    assert len(long) < MAX_TOKEN_LENGTH / 4 and issuer.verify(long) == "a" * 250
    with pytest.raises(InvalidToken, match="too long"):
        issuer.verify("A" * (MAX_TOKEN_LENGTH + 1))


# -- issue #12 item 12: protected mounts are same-origin by default --------------------


def test_protected_mounts_are_same_origin_by_default(files: tuple[Path, Path]) -> None:
    """
    Without C{--allowed-origin}, a protected mount refuses (403) a page from
    another site even with a valid key, the defence against cross-site
    WebSocket hijacking should the accept hook ever trust cookies; a page
    from the server itself and a client without C{Origin} are let in, and
    unprotected mounts still take any origin.
    """
    site = protected(files)
    key = {"Authorization": "Bearer k-alice"}
    head, _ = Client(site).request(upgrade_request("/chat", Origin="https://evil.example", **key))
    assert head.startswith(b"HTTP/1.1 403")
    for origin in ("http://localhost", "https://localhost", ""):
        head, _ = Client(site).request(upgrade_request("/chat", Origin=origin, **key))
        assert head.startswith(b"HTTP/1.1 101"), (origin, head)
    head, _ = Client(site).request(upgrade_request("/echo", Origin="https://evil.example"))
    assert head.startswith(b"HTTP/1.1 101")


def test_allowed_origin_overrides_the_same_origin_default(files: tuple[Path, Path]) -> None:
    """
    C{--allowed-origin} applies to every mount, protected ones included:
    C{*} reopens them to any page, a list allows exactly its origins, and
    C{same-origin} can be combined with a list.
    """
    key = {"Authorization": "Bearer k-alice"}
    site = protected(files, "--allowed-origin", "*")
    head, _ = Client(site).request(upgrade_request("/chat", Origin="https://evil.example", **key))
    assert head.startswith(b"HTTP/1.1 101")
    site = protected(files, "--allowed-origin", "https://app.example", "--allowed-origin", "same-origin")
    for origin, status in (
        ("https://app.example", b"101"),
        ("http://localhost", b"101"),
        ("https://x.example", b"403"),
    ):
        head, _ = Client(site).request(upgrade_request("/chat", Origin=origin, **key))
        assert head.startswith(b"HTTP/1.1 " + status), (origin, head)
    head, _ = Client(site).request(upgrade_request("/echo", Origin="https://x.example"))
    assert head.startswith(b"HTTP/1.1 403"), "an explicit list applies to every mount"

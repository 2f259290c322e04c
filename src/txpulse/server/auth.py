# -*- test-case-name: tests.server.test_auth -*-
"""
Authentication for WebSocket mounts.

Two ways in, both checked at the handshake (a refusal is HTTP 401 before
any C{101}):

  - Non-browser clients send C{Authorization: Bearer <key>}; keys and the
    identity each stands for come from a JSON file (L{ApiKeys}).
  - Browsers cannot set headers on a WebSocket, so they first fetch a
    short-lived token from C{GET /@wstoken} (authenticated with the same
    Bearer key; L{TokenResource}) and connect with C{?ws_token=...}.

A token is a JWT signed (HS256) and then encrypted (A256KW + A256GCM) with
the two keys of a JWK set (L{generateKeySet}, C{txpulse gen-key}): its
content (the identity) is private, and a token that was tampered with,
signed with another key set, or is past its expiry is refused (401).

Only what L{TokenIssuer} issues is ever verified: the protected headers must
be exactly the ones it writes (A256KW + A256GCM outside, HS256 inside, the
expected C{kid}s), checked by decoding a few hundred bytes of base64 and
JSON I{before} any key unwrapping or derivation, and a token longer than
L{MAX_TOKEN_LENGTH} is refused unread. Any other algorithm (above all
C{PBES2-*}, whose key derivation costs milliseconds per attempt) is refused
in microseconds.

Failed attempts are limited per client address (L{FailureLimiter}): past
the limit, requests get C{429} with C{Retry-After} without their
credentials being looked at, and the failures are logged in aggregate.

The identity becomes C{transport.identity} for the application protocol and
the hub's per-topic C{authorize} hook.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from .._extras import MissingExtra
from ..core.exceptions import HandshakeError
from .keyfile import checkKeys, parseKeys, readBounded
from .ratelimit import FailureLimiter, clientKey

try:
    # Browser tokens only (the [auth] extra): API keys need no jwcrypto.
    from jwcrypto import jwe, jwk, jws, jwt
    from jwcrypto.common import JWException
except ImportError as _missing:  # pragma: no cover - tested in a subprocess
    if (_missing.name or "").partition(".")[0] != "jwcrypto":
        raise
    _HAS_JWCRYPTO = False
else:
    _HAS_JWCRYPTO = True

__all__ = [
    "ApiKeys",
    "TokenIssuer",
    "Authenticator",
    "TokenResource",
    "InvalidToken",
    "AuthenticationRefused",
    "RequireKey",
    "generateKeySet",
    "MAX_TOKEN_LENGTH",
    "DEFAULT_TOKEN_LIFETIME",
]

_log = Logger()

#: Seconds a browser token stays valid: long enough to connect, short
#: enough that a leaked URL is soon useless.
DEFAULT_TOKEN_LIFETIME = 60.0

_CHALLENGE = (("WWW-Authenticate", 'Bearer realm="txpulse"'),)

#: The longest token verified (in characters); longer ones are refused
#: unread. A token for a 250-character identity is about 820 characters.
MAX_TOKEN_LENGTH = 4096

#: The protected headers L{TokenIssuer.issue} writes, the only ones
#: L{TokenIssuer.verify} accepts (outer JWE, inner JWS).
_OUTER_HEADER = {"alg": "A256KW", "enc": "A256GCM", "kid": "enc", "cty": "JWT"}
_INNER_HEADER = {"alg": "HS256", "kid": "sign"}

#: The largest encoded protected header worth decoding (ours take ~80).
_MAX_HEADER_LENGTH = 256


class InvalidToken(Exception):
    """
    A token that is malformed, tampered with, from another key set, or
    expired.
    """


class AuthenticationRefused(HandshakeError):
    """
    A handshake refused for bad credentials (401) or too many failed
    attempts (429). The L{FailureLimiter} has logged it (in aggregate), so
    the resource does not log it again.
    """

    logged = True


def _expectHeader(token: str, parts: int, expected: Mapping[str, str]) -> None:
    """
    Cheaply check a compact JOSE serialization before any cryptography: the
    number of parts, and a protected header equal to C{expected}.

    @raise InvalidToken: otherwise.
    """
    pieces = token.split(".")
    if len(pieces) != parts:
        raise InvalidToken("invalid token (not a compact serialization)")
    encoded = pieces[0]
    if len(encoded) > _MAX_HEADER_LENGTH:
        raise InvalidToken("invalid token (header too long)")
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken("invalid token (malformed header)") from None
    if header != expected:
        # Another algorithm (e.g. PBES2-*, or "none"), another key id, or an
        # extra parameter (zip, crit, jku...): never ours.
        raise InvalidToken("invalid token (unexpected algorithm or header)")


class ApiKeys:
    """
    API keys and the identity each stands for.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        """
        @param keys: C{{key: identity}}; every identity must be valid
            (L{txpulse.server.keyfile.identityProblem}: 1 to 32 characters,
            no control or formatting character, no space at either end).
        @raise ValueError: for an empty key or an invalid identity, naming
            the entry by its position and identity (never by its key).
        """
        self._keys = dict(keys)
        checkKeys(self._keys, "API keys")

    @classmethod
    def fromFile(cls, path: str | Path) -> ApiKeys:
        """
        Load C{{"<key>": "<identity>", ...}} from a JSON file, by the rules
        of L{txpulse.server.keyfile}: a regular file (symlinks followed) of
        at most 16 MiB, no key twice, valid identities.

        @raise ValueError: (one line naming the file and the bad entry) for
            anything else.
        """
        try:
            text = readBounded(path)
        except OSError as error:
            raise ValueError(f"cannot read API keys from {path}: {error.strerror}") from None
        except ValueError as error:
            raise ValueError(f"API keys file {error}") from None
        return cls(parseKeys(text, f"API keys file {path}"))

    def identify(self, key: str) -> str | None:
        """
        The identity of C{key}, or C{None} for an unknown key.
        """
        return self._keys.get(key)


def generateKeySet() -> str:
    """
    A new JWK set (JSON) with a signing key (kid C{sign}) and an encryption
    key (kid C{enc}), both random 256-bit symmetric keys.

    @raise MissingExtra: without C{jwcrypto} (C{pip install txpulse[auth]}).
    """
    if not _HAS_JWCRYPTO:
        raise MissingExtra("auth")
    keys = jwk.JWKSet()
    keys.add(jwk.JWK.generate(kty="oct", size=256, kid="sign", alg="HS256", use="sig"))
    keys.add(jwk.JWK.generate(kty="oct", size=256, kid="enc", alg="A256KW", use="enc"))
    return json.dumps(json.loads(keys.export(private_keys=True)), indent=2)


class TokenIssuer:
    """
    Issues and verifies browser tokens with a JWK set.
    """

    def __init__(
        self, keySet: str, lifetime: float = DEFAULT_TOKEN_LIFETIME, now: Callable[[], float] = time.time
    ) -> None:
        """
        @param keySet: the JWK set JSON (from L{generateKeySet}).
        @param lifetime: seconds a token is valid.
        @param now: the time source (injectable for tests).
        @raise ValueError: for a key set without the C{sign} and C{enc} keys.
        @raise MissingExtra: without C{jwcrypto} (C{pip install txpulse[auth]}).
        """
        if not _HAS_JWCRYPTO:
            raise MissingExtra("auth")
        try:
            keys = jwk.JWKSet.from_json(keySet)
        except (JWException, ValueError, TypeError) as error:
            raise ValueError(f"not a JWK set: {error}") from None
        sign, enc = keys.get_key("sign"), keys.get_key("enc")
        if sign is None or enc is None:
            raise ValueError("the JWK set needs a 'sign' and an 'enc' key (see 'txpulse gen-key')")
        self._sign = sign
        self._enc = enc
        self.lifetime = lifetime
        self._now = now

    @classmethod
    def fromFile(cls, path: str | Path, **kwargs: Any) -> TokenIssuer:
        """
        Load the JWK set from a file (a regular file, symlinks followed, of
        at most 16 MiB, like the API keys).

        @raise ValueError: for an unreadable file or a bad key set.
        """
        try:
            text = readBounded(path)
        except OSError as error:
            raise ValueError(f"cannot read the JWK set {path}: {error.strerror}") from None
        except ValueError as error:
            raise ValueError(f"JWK set file {error}") from None
        try:
            return cls(text, **kwargs)
        except ValueError as error:
            raise ValueError(f"JWK set file {path}: {error}") from None

    def issue(self, identity: str) -> tuple[str, float]:
        """
        A token for C{identity}, and its expiry (epoch seconds).
        """
        now = self._now()
        expires = now + self.lifetime
        inner = jwt.JWT(
            header={"alg": "HS256", "kid": "sign"}, claims={"sub": identity, "iat": int(now), "exp": expires}
        )
        inner.make_signed_token(self._sign)
        outer = jwt.JWT(
            header={"alg": "A256KW", "enc": "A256GCM", "kid": "enc", "cty": "JWT"}, claims=inner.serialize()
        )
        outer.make_encrypted_token(self._enc)
        return outer.serialize(), expires

    def verify(self, token: str) -> str:
        """
        The identity in a valid token.

        @raise InvalidToken: for a malformed, tampered, foreign or expired
            token.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("invalid token (too long)")
        _expectHeader(token, 5, _OUTER_HEADER)
        try:
            outer = jwt.JWT(
                jwt=token, key=self._enc, algs=["A256KW", "A256GCM"], expected_type="JWE", check_claims=False
            )
            _expectHeader(outer.claims, 3, _INNER_HEADER)
            inner = jwt.JWT(jwt=outer.claims, key=self._sign, algs=["HS256"], expected_type="JWS", check_claims=False)
            claims = json.loads(inner.claims)
        except (
            JWException,
            jwe.InvalidJWEData,
            jws.InvalidJWSSignature,
            jws.InvalidJWSObject,
            ValueError,
            TypeError,
        ) as error:
            raise InvalidToken(f"invalid token ({error.__class__.__name__})") from None
        identity, expires = claims.get("sub"), claims.get("exp")
        if not isinstance(identity, str) or not isinstance(expires, (int, float)):
            raise InvalidToken("token without subject or expiry")
        if self._now() >= expires:
            raise InvalidToken("token expired")
        return identity


def _bearer(request: Request) -> str | None:
    header = request.getHeader("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _tooMany(retryAfter: int) -> AuthenticationRefused:
    return AuthenticationRefused(
        "too many failed authentication attempts; retry later", 429, (("Retry-After", str(retryAfter)),)
    )


class Authenticator:
    """
    The accept hook of a protected mount: C{WebSocketResource(...,
    accept=Authenticator(keys, issuer))}. Returns the identity (which
    becomes C{transport.identity}) or refuses with 401; refuses with 429
    (and C{Retry-After}), without checking the credentials, an address over
    its limit of failed attempts.
    """

    def __init__(
        self, keys: ApiKeys | None, issuer: TokenIssuer | None = None, limiter: FailureLimiter | None = None
    ) -> None:
        """
        @param keys: the API keys (C{Authorization: Bearer <key>}), if any.
        @param issuer: verifies browser tokens (C{?ws_token=}), if any.
        @param limiter: limits failed attempts per address (default: a
            L{FailureLimiter} with its defaults; share one between the
            mounts and L{TokenResource} of a server).
        """
        self._keys = keys
        self._issuer = issuer
        self.limiter = limiter if limiter is not None else FailureLimiter()

    def __call__(self, request: Request) -> str:
        identity = _checkKey(request, self._keys, self.limiter)
        if identity is not None:
            return identity
        tokens = request.args.get(b"ws_token") if request.args else None
        if tokens and self._issuer is not None:
            try:
                return self._issuer.verify(tokens[0].decode("ascii", "replace"))
            except InvalidToken as error:
                self.limiter.failed(clientKey(request.getClientAddress()), str(error))
                raise AuthenticationRefused(str(error), 401, _CHALLENGE) from None
        raise HandshakeError("authentication required: 'Authorization: Bearer <key>' or ?ws_token=", 401, _CHALLENGE)


def _checkKey(request: Request, keys: ApiKeys | None, limiter: FailureLimiter) -> str | None:
    """
    Check the request's address against C{limiter}, then its Bearer key
    against C{keys}: the one place both the accept hook and the HTTP
    resources do it.

    @return: the key's identity; C{None} for a request without a Bearer key
        (or when there are no C{keys}).
    @raise AuthenticationRefused: 429 (with C{Retry-After}), without the
        key being looked at, for an address over its limit of failed
        attempts; 401 (with the Bearer challenge) for an unknown key, which
        counts as a failed attempt.
    """
    address = clientKey(request.getClientAddress())
    retryAfter = limiter.retryAfter(address)
    if retryAfter is not None:
        raise _tooMany(retryAfter)
    key = _bearer(request)
    if key is None or keys is None:
        return None
    identity = keys.identify(key)
    if identity is None:
        limiter.failed(address, "unknown API key")
        raise AuthenticationRefused("invalid API key", 401, _CHALLENGE)
    return identity


def _requireKey(request: Request, keys: ApiKeys, limiter: FailureLimiter) -> str | bytes:
    """
    L{_checkKey} for an HTTP resource that needs a key: the identity; or,
    having set the status and headers of the refusal (401 or 429, JSON,
    not cached), the body to answer with. Nothing is set on success.
    """
    try:
        identity = _checkKey(request, keys, limiter)
        if identity is None:
            raise AuthenticationRefused("a valid API key is required (Authorization: Bearer <key>)", 401, _CHALLENGE)
    except AuthenticationRefused as refused:
        # The phrase explicitly: Twisted's RESPONSES has no 429, and would
        # send "429 Unknown Status".
        request.setResponseCode(refused.statusCode, HTTPStatus(refused.statusCode).phrase.encode("ascii"))
        for name, value in refused.headers:
            request.setHeader(name, value)
        request.setHeader("Content-Type", "application/json")
        request.setHeader("Cache-Control", "no-store")
        return json.dumps({"error": str(refused)}).encode() + b"\n"
    return identity


class TokenResource(Resource):
    """
    C{GET /@wstoken}: exchanges a Bearer API key for a short-lived browser
    token: C{{"token": "...", "expires": EPOCH_SECONDS}}; 401 without a
    valid key, 429 (with C{Retry-After}) for an address over its limit of
    failed attempts.
    """

    isLeaf = True

    def __init__(self, keys: ApiKeys, issuer: TokenIssuer, limiter: FailureLimiter | None = None) -> None:
        """
        @param limiter: limits failed attempts per address (default: a
            L{FailureLimiter} with its defaults).
        """
        super().__init__()
        self._keys = keys
        self._issuer = issuer
        self.limiter = limiter if limiter is not None else FailureLimiter()

    def render_GET(self, request: Request) -> bytes:
        identity = _requireKey(request, self._keys, self.limiter)
        if isinstance(identity, bytes):
            return identity
        request.setHeader("Content-Type", "application/json")
        request.setHeader("Cache-Control", "no-store")
        token, expires = self._issuer.issue(identity)
        return json.dumps({"token": token, "expires": expires}).encode() + b"\n"


class RequireKey(Resource):
    """
    Puts a leaf resource (e.g. C{/metrics}) behind the API keys: its C{GET}
    needs C{Authorization: Bearer <key>} (401 without a valid one, 429 for
    an address over its limit of failed attempts).
    """

    isLeaf = True

    def __init__(self, wrapped: Resource, keys: ApiKeys, limiter: FailureLimiter | None = None) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._keys = keys
        self.limiter = limiter if limiter is not None else FailureLimiter()

    def render(self, request: Request) -> bytes | int:
        identity = _requireKey(request, self._keys, self.limiter)
        if isinstance(identity, bytes):
            return identity
        result: bytes | int = self._wrapped.render(request)
        return result

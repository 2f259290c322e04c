# -*- test-case-name: tests.test_auth -*-
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

The identity becomes C{transport.identity} for the application protocol and
the hub's per-topic C{authorize} hook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jwcrypto import jwe, jwk, jws, jwt
from jwcrypto.common import JWException
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from .exceptions import HandshakeError

__all__ = [
    "ApiKeys",
    "TokenIssuer",
    "Authenticator",
    "TokenResource",
    "InvalidToken",
    "generateKeySet",
    "DEFAULT_TOKEN_LIFETIME",
]

_log = Logger()

#: Seconds a browser token stays valid: long enough to connect, short
#: enough that a leaked URL is soon useless.
DEFAULT_TOKEN_LIFETIME = 60.0

_CHALLENGE = (("WWW-Authenticate", 'Bearer realm="txpulse"'),)


class InvalidToken(Exception):
    """
    A token that is malformed, tampered with, from another key set, or
    expired.
    """


class ApiKeys:
    """
    API keys and the identity each stands for.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    @classmethod
    def fromFile(cls, path: str | Path) -> ApiKeys:
        """
        Load C{{"<key>": "<identity>", ...}} from a JSON file.

        @raise ValueError: for a file that is not such an object.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read API keys from {path}: {error}") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k for k, v in data.items()
        ):
            raise ValueError(f'{path}: expected a JSON object {{"<key>": "<identity>", ...}}')
        return cls(data)

    def identify(self, key: str) -> str | None:
        """
        The identity of C{key}, or C{None} for an unknown key.
        """
        return self._keys.get(key)


def generateKeySet() -> str:
    """
    A new JWK set (JSON) with a signing key (kid C{sign}) and an encryption
    key (kid C{enc}), both random 256-bit symmetric keys.
    """
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
        """
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
        Load the JWK set from a file.

        @raise ValueError: for an unreadable file or a bad key set.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"cannot read the JWK set {path}: {error}") from None
        return cls(text, **kwargs)

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
        try:
            outer = jwt.JWT(jwt=token, key=self._enc, expected_type="JWE", check_claims=False)
            inner = jwt.JWT(jwt=outer.claims, key=self._sign, expected_type="JWS", check_claims=False)
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


class Authenticator:
    """
    The accept hook of a protected mount: C{WebSocketResource(...,
    accept=Authenticator(keys, issuer))}. Returns the identity (which
    becomes C{transport.identity}) or refuses with 401.
    """

    def __init__(self, keys: ApiKeys | None, issuer: TokenIssuer | None = None) -> None:
        self._keys = keys
        self._issuer = issuer

    def __call__(self, request: Request) -> str:
        key = _bearer(request)
        if key is not None and self._keys is not None:
            identity = self._keys.identify(key)
            if identity is not None:
                return identity
            _log.info("WebSocket refused: unknown API key")
            raise HandshakeError("invalid API key", 401, _CHALLENGE)
        tokens = request.args.get(b"ws_token") if request.args else None
        if tokens and self._issuer is not None:
            try:
                return self._issuer.verify(tokens[0].decode("ascii", "replace"))
            except InvalidToken as error:
                _log.info("WebSocket refused: {error}", error=str(error))
                raise HandshakeError(str(error), 401, _CHALLENGE) from None
        raise HandshakeError("authentication required: 'Authorization: Bearer <key>' or ?ws_token=", 401, _CHALLENGE)


class TokenResource(Resource):
    """
    C{GET /@wstoken}: exchanges a Bearer API key for a short-lived browser
    token: C{{"token": "...", "expires": EPOCH_SECONDS}}; 401 without a
    valid key.
    """

    isLeaf = True

    def __init__(self, keys: ApiKeys, issuer: TokenIssuer) -> None:
        super().__init__()
        self._keys = keys
        self._issuer = issuer

    def render_GET(self, request: Request) -> bytes:
        key = _bearer(request)
        identity = self._keys.identify(key) if key is not None else None
        request.setHeader("Content-Type", "application/json")
        request.setHeader("Cache-Control", "no-store")
        if identity is None:
            request.setResponseCode(401)
            request.setHeader("WWW-Authenticate", _CHALLENGE[0][1])
            return b'{"error": "a valid API key is required (Authorization: Bearer <key>)"}\n'
        token, expires = self._issuer.issue(identity)
        return json.dumps({"token": token, "expires": expires}).encode() + b"\n"

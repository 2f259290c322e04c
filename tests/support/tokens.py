"""
Hostile browser tokens, built by hand (no jwcrypto).
"""

from __future__ import annotations

import base64
import json
import os


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pbes2_token(p2c: int = 16384) -> str:
    """
    A compact JWE claiming C{PBES2-HS512+A256KW} with C{p2c} iterations and
    the issuer's C{kid}: before any check, jwcrypto derives a key with that
    many PBKDF2-HMAC-SHA512 rounds (it caps C{p2c} at 16,384).
    """
    header = {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2s": b64url(os.urandom(16)), "p2c": p2c, "kid": "enc"}
    parts = [json.dumps(header).encode(), os.urandom(40), os.urandom(12), os.urandom(64), os.urandom(16)]
    return ".".join(b64url(part) for part in parts)

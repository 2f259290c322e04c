"""
Moved to L{txpulse.server.auth}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["ApiKeys", "TokenIssuer", "Authenticator", "TokenResource", "InvalidToken", "AuthenticationRefused", "RequireKey", "generateKeySet", "MAX_TOKEN_LENGTH", "DEFAULT_TOKEN_LIFETIME"]  # noqa: F822

_MOVED = {
    "DEFAULT_TOKEN_LIFETIME": "txpulse.server.auth",
    "MAX_TOKEN_LENGTH": "txpulse.server.auth",
    "InvalidToken": "txpulse.server.auth",
    "AuthenticationRefused": "txpulse.server.auth",
    "ApiKeys": "txpulse.server.auth",
    "generateKeySet": "txpulse.server.auth",
    "TokenIssuer": "txpulse.server.auth",
    "Authenticator": "txpulse.server.auth",
    "TokenResource": "txpulse.server.auth",
    "RequireKey": "txpulse.server.auth",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.server.site}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["WebSocketSite", "WebSocketChannel", "AllowedHosts", "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_KEEPALIVE_TIMEOUT", "DEFAULT_SEND_TIMEOUT", "DEFAULT_MAX_REQUESTS_PER_CONNECTION", "DEFAULT_MAX_CONNECTIONS_PER_ADDRESS", "DEFAULT_MAX_REQUEST_BODY", "REFUSAL_LOG_INTERVAL", "defaultMaxConnections", "raiseOpenFilesLimit"]  # noqa: F822

_MOVED = {
    "DEFAULT_REQUEST_TIMEOUT": "txpulse.server.site",
    "DEFAULT_KEEPALIVE_TIMEOUT": "txpulse.server.site",
    "DEFAULT_SEND_TIMEOUT": "txpulse.server.site",
    "DEFAULT_MAX_REQUESTS_PER_CONNECTION": "txpulse.server.site",
    "DEFAULT_MAX_CONNECTIONS_PER_ADDRESS": "txpulse.server.site",
    "DEFAULT_MAX_REQUEST_BODY": "txpulse.server.site",
    "REFUSAL_LOG_INTERVAL": "txpulse.server.site",
    "defaultMaxConnections": "txpulse.server.site",
    "raiseOpenFilesLimit": "txpulse.server.site",
    "WebSocketChannel": "txpulse.server.site",
    "WebSocketSite": "txpulse.server.site",
    "redactingLogFormatter": "txpulse.server.site",
    "AllowedHosts": "txpulse.server.site",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

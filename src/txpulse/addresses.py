"""
Moved to L{txpulse.logs.peers}. Importing a name from here still works, with a
L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["formatPeer", "peerOf", "clientKey"]  # noqa: F822

_MOVED = {
    "formatPeer": "txpulse.logs.peers",
    "peerOf": "txpulse.logs.peers",
    "clientKey": "txpulse.logs.peers",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.server.resource}. Importing a name from here still works,
with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["WebSocketResource", "WebSocketServerFactory", "AcceptHook"]  # noqa: F822

_MOVED = {
    "WebSocketServerFactory": "txpulse.server.resource",
    "AcceptHook": "txpulse.server.resource",
    "WebSocketResource": "txpulse.server.resource",
    "takeOver": "txpulse.server.resource",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

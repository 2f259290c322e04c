"""
Moved to L{txpulse.wire.interfaces}. Importing a name from here still works,
with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["WebSocketProtocol", "ConnectionObserver"]  # noqa: F822

_MOVED = {
    "WebSocketProtocol": "txpulse.wire.interfaces",
    "ConnectionObserver": "txpulse.wire.interfaces",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

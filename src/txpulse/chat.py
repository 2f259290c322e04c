"""
Moved to L{txpulse.demos.chat}. Importing a name from here still works, with a
L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["ChatFactory", "ChatProtocol"]  # noqa: F822

_MOVED = {
    "MAX_NAME": "txpulse.demos.chat",
    "MAX_ROOM": "txpulse.demos.chat",
    "MAX_TEXT": "txpulse.demos.chat",
    "ChatProtocol": "txpulse.demos.chat",
    "ChatFactory": "txpulse.demos.chat",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.pubsub.broker.memory}. Importing a name from here still
works, with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from .._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["MemoryBroker"]  # noqa: F822

_MOVED = {
    "MemoryBroker": "txpulse.pubsub.broker.memory",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

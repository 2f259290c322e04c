"""
Moved to L{txpulse.wire.tcp}. Importing a name from here still works, with a
L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["FULL_READ", "LARGE_READ_SIZE", "SMALL_READ_SIZE", "directSocket", "writeChunks", "queuedBytes", "heldBytes"]  # noqa: F822

_MOVED = {
    "FULL_READ": "txpulse.wire.tcp",
    "LARGE_READ_SIZE": "txpulse.wire.tcp",
    "SMALL_READ_SIZE": "txpulse.wire.tcp",
    "CHUNK_OVERHEAD": "txpulse.wire.tcp",
    "directSocket": "txpulse.wire.tcp",
    "writeChunks": "txpulse.wire.tcp",
    "queuedBytes": "txpulse.wire.tcp",
    "heldBytes": "txpulse.wire.tcp",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.server.hosts}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["AllowedHosts"]  # noqa: F822

_MOVED = {
    "AllowedHosts": "txpulse.server.hosts",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.demos.apps}. Importing a name from here still works, with a
L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["HeartbeatFactory", "Heartbeat", "EchoFactory", "Echo"]  # noqa: F822

_MOVED = {
    "Heartbeat": "txpulse.demos.apps",
    "HeartbeatFactory": "txpulse.demos.apps",
    "Echo": "txpulse.demos.apps",
    "EchoFactory": "txpulse.demos.apps",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

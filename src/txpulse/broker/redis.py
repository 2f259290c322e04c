"""
Moved to L{txpulse.pubsub.broker.redis}. Importing a name from here still
works, with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from .._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["RedisBroker", "DEFAULT_PREFIX"]  # noqa: F822

_MOVED = {
    "DEFAULT_PREFIX": "txpulse.pubsub.broker.redis",
    "DEFAULT_PORT": "txpulse.pubsub.broker.redis",
    "DROP_LOG_INTERVAL": "txpulse.pubsub.broker.redis",
    "RedisBroker": "txpulse.pubsub.broker.redis",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

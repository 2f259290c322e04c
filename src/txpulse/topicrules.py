"""
Moved to L{txpulse.pubsub.topicrules}. Importing a name from here still works,
with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["TopicRule", "TopicRules", "ANY_AUTHENTICATED", "ANONYMOUS", "IDENTITY"]  # noqa: F822

_MOVED = {
    "ANY_AUTHENTICATED": "txpulse.pubsub.topicrules",
    "ANONYMOUS": "txpulse.pubsub.topicrules",
    "IDENTITY": "txpulse.pubsub.topicrules",
    "TopicRule": "txpulse.pubsub.topicrules",
    "TopicRules": "txpulse.pubsub.topicrules",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

"""
Moved to L{txpulse.pubsub.hub} and L{txpulse.pubsub.protocol}. Importing a
name from here still works, with a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["Hub", "HubError", "Namespace", "Subscriber", "Broker", "PubSubFactory", "PubSubProtocol", "Authorize", "channelFor", "topicOfChannel", "loadJSON", "dumpJSON", "checkEnvelope"]  # noqa: F822

_MOVED = {
    "TOO_SLOW": "txpulse.pubsub.hub",
    "SEPARATOR": "txpulse.pubsub.hub",
    "channelFor": "txpulse.pubsub.hub",
    "topicOfChannel": "txpulse.pubsub.hub",
    "loadJSON": "txpulse.pubsub.hub",
    "dumpJSON": "txpulse.pubsub.hub",
    "checkEnvelope": "txpulse.pubsub.hub",
    "HubError": "txpulse.pubsub.hub",
    "Subscriber": "txpulse.pubsub.hub",
    "Broker": "txpulse.pubsub.hub",
    "Authorize": "txpulse.pubsub.hub",
    "Hub": "txpulse.pubsub.hub",
    "Namespace": "txpulse.pubsub.hub",
    "PubSubProtocol": "txpulse.pubsub.protocol",
    "MAX_REFUSALS_LOGGED": "txpulse.pubsub.protocol",
    "refuse": "txpulse.pubsub.protocol",
    "PubSubFactory": "txpulse.pubsub.protocol",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)

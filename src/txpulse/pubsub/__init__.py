"""
Publish/subscribe over WebSockets: the L{Hub} (topics, namespaces, fan-out;
L{txpulse.pubsub.hub}), positions and history (L{txpulse.pubsub.history}),
the JSON protocol mounted at C{/pubsub} (L{PubSubFactory};
L{txpulse.pubsub.protocol}), per-topic rules
(L{txpulse.pubsub.topicrules}) and the brokers that carry messages between
processes (L{txpulse.pubsub.broker}).
"""

from .client import NotConnected, PubSubClient
from .history import History, Position
from .hub import Authorize, Broker, Hub, HubError, Namespace, PositionedBroker, Subscriber
from .protocol import PubSubFactory, PubSubProtocol

__all__ = [
    "Authorize",
    "Broker",
    "History",
    "Hub",
    "HubError",
    "Namespace",
    "NotConnected",
    "Position",
    "PositionedBroker",
    "PubSubClient",
    "PubSubFactory",
    "PubSubProtocol",
    "Subscriber",
]

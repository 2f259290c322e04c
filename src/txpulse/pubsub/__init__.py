"""
Publish/subscribe over WebSockets: the L{Hub} (topics, namespaces, fan-out;
L{txpulse.pubsub.hub}), the JSON protocol mounted at C{/pubsub}
(L{PubSubFactory}; L{txpulse.pubsub.protocol}), per-topic rules
(L{txpulse.pubsub.topicrules}) and the brokers that carry messages between
processes (L{txpulse.pubsub.broker}).
"""

from .hub import Authorize, Broker, Hub, HubError, Namespace, Subscriber
from .protocol import PubSubFactory, PubSubProtocol

__all__ = ["Authorize", "Broker", "Hub", "HubError", "Namespace", "PubSubFactory", "PubSubProtocol", "Subscriber"]

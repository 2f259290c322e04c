"""
The client side: L{WebSocketClientEndpoint} (connect once) and
L{ReconnectingWebSocketService} (stay connected). C{python -m txpulse.client
URL} runs the C{txpulse-client} command line (L{txpulse.client.cli}).
"""

from .endpoint import HandshakeTimeout, InvalidURL, WebSocketClientEndpoint, WebSocketClientFactory, parseURL
from .service import ReconnectingWebSocketService

__all__ = [
    "HandshakeTimeout",
    "InvalidURL",
    "ReconnectingWebSocketService",
    "WebSocketClientEndpoint",
    "WebSocketClientFactory",
    "parseURL",
]

"""
Moved to L{txpulse.core.exceptions} and L{txpulse.client.endpoint}; this path
keeps working (documented in the README).
"""

from __future__ import annotations

from .client.endpoint import (
    ConnectionRejected,
)
from .core.exceptions import (
    ConnectionClosed,
    HandshakeError,
    InvalidOrigin,
    InvalidPayload,
    InvalidState,
    InvalidUpgrade,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)

__all__ = ["WebSocketError", "ProtocolError", "PayloadTooBig", "InvalidPayload", "InvalidState", "HandshakeError", "InvalidUpgrade", "InvalidOrigin", "NegotiationError", "ConnectionRejected", "ConnectionClosed"]

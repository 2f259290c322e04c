"""
txpulse: a WebSocket toolkit for Twisted.

A sans-IO RFC 6455 core (L{txpulse.core}) under thin Twisted adapters:
L{WebSocketResource} for C{twisted.web} servers (a drop-in for
C{twisted.web.websocket.WebSocketResource}), L{WebSocketClientEndpoint} and
L{ReconnectingWebSocketService} for clients.
"""

from __future__ import annotations

from .client import ReconnectingWebSocketService, WebSocketClientEndpoint
from .core.assembly import AssemblyBudget
from .core.frames import CloseCode, Opcode, encode_frame
from .exceptions import (
    ConnectionClosed,
    ConnectionRejected,
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
from .resource import WebSocketResource
from .site import WebSocketSite
from .wire import WebSocketWire, WireOptions

__all__ = [
    "AssemblyBudget",
    "CloseCode",
    "ConnectionClosed",
    "ConnectionRejected",
    "HandshakeError",
    "InvalidOrigin",
    "InvalidPayload",
    "InvalidState",
    "InvalidUpgrade",
    "NegotiationError",
    "Opcode",
    "PayloadTooBig",
    "ReconnectingWebSocketService",
    "ProtocolError",
    "WebSocketClientEndpoint",
    "WebSocketError",
    "WebSocketResource",
    "WebSocketSite",
    "WebSocketWire",
    "WireOptions",
    "encode_frame",
]

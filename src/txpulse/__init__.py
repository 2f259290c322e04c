# -*- test-case-name: tests.test_exports,tests.core.test_layering -*-
"""
txpulse: a WebSocket toolkit for Twisted.

A sans-IO RFC 6455 core (L{txpulse.core}) under thin Twisted adapters:
L{WebSocketResource} for C{twisted.web} servers (a drop-in for
C{twisted.web.websocket.WebSocketResource}), L{WebSocketClientEndpoint} and
L{ReconnectingWebSocketService} for clients.

The core's names are imported here directly; the Twisted-backed ones are
loaded on first use (PEP 562, the table in L{_LAZY}), so that
C{import txpulse.core} never loads Twisted.

C{__version__} is the one place the version is written: C{pyproject.toml}
reads it from here (statically, without importing the package).
"""

from __future__ import annotations

__version__ = "0.2.0.dev0"

import importlib
from typing import TYPE_CHECKING, Any

from .core.assembly import AssemblyBudget
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
from .core.frames import CloseCode, Opcode, encode_frame
from .settings import ConnectionSettings

if TYPE_CHECKING:  # pragma: no cover
    from .client.endpoint import WebSocketClientEndpoint
    from .client.rejection import ConnectionRejected
    from .client.service import ReconnectingWebSocketService
    from .server.resource import WebSocketResource
    from .server.site import WebSocketSite
    from .wire.protocol import WebSocketWire, WireOptions

__all__ = [
    "AssemblyBudget",
    "CloseCode",
    "ConnectionClosed",
    "ConnectionRejected",
    "ConnectionSettings",
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

#: The Twisted-backed names, and the module each is loaded from on first use.
_LAZY = {
    "ConnectionRejected": "txpulse.client.endpoint",
    "ReconnectingWebSocketService": "txpulse.client.service",
    "WebSocketClientEndpoint": "txpulse.client.endpoint",
    "WebSocketResource": "txpulse.server.resource",
    "WebSocketSite": "txpulse.server.site",
    "WebSocketWire": "txpulse.wire.protocol",
    "WireOptions": "txpulse.wire.protocol",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'txpulse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

"""
The Twisted adapter: L{WebSocketWire} drives a L{txpulse.core} connection on
a transport (L{txpulse.wire.protocol}, written in parts: L{txpulse.wire.keepalive},
L{txpulse.wire.backpressure}, L{txpulse.wire.closing}, L{txpulse.wire.delivery},
L{txpulse.wire.extras}; its fields in L{txpulse.wire.state}, its settings in
L{txpulse.wire.options}), L{txpulse.wire.tcp} gets its bytes to
the kernel, L{txpulse.wire.turns} batches sends made outside a read per
reactor turn, and L{txpulse.wire.interfaces} says what it talks to.

The names re-exported here are those of the old C{txpulse.wire} module.
"""

from .interfaces import ConnectionObserver, WebSocketProtocol
from .protocol import DEFAULT_MAX_WRITE_BUFFER, WebSocketWire, WireOptions

__all__ = ["WireOptions", "WebSocketWire", "WebSocketProtocol", "ConnectionObserver", "DEFAULT_MAX_WRITE_BUFFER"]

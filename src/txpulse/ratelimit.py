"""
Moved to L{txpulse.server.ratelimit}; this path keeps working (documented in
the README).
"""

from __future__ import annotations

from .server.ratelimit import (
    DEFAULT_BURST,
    DEFAULT_LOG_INTERVAL,
    DEFAULT_MAX_ADDRESSES,
    DEFAULT_PERIOD,
    FailureLimiter,
    clientKey,
)

__all__ = ["FailureLimiter", "clientKey", "DEFAULT_BURST", "DEFAULT_PERIOD", "DEFAULT_MAX_ADDRESSES", "DEFAULT_LOG_INTERVAL"]

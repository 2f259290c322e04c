"""
Moved to L{txpulse.plugin.metrics}; this path keeps working (documented in the
README).
"""

from __future__ import annotations

from .plugin.metrics import (
    ConnectionRegistry,
    MetricsResource,
    closeCodeLabel,
)

__all__ = ["ConnectionRegistry", "MetricsResource", "closeCodeLabel"]

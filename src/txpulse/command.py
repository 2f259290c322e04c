"""
Moved to L{txpulse.plugin.command}; this path keeps working (the entry point
of installed txpulse scripts).
"""

from __future__ import annotations

from .plugin.command import (
    main,
)

__all__ = ["main"]
